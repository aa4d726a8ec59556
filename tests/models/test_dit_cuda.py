"""WorldDiT on a CUDA device: forward and parameter gradients equal the CPU's, streaming equals the chunk-causal
forward there too, and bf16 autocast stays close to fp32. Marked `gpu`; skipped without CUDA."""

import pytest
import torch
from world_dit_inputs import random_inputs, tiny_model

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("exact_cuda_float32")]


def _to(inputs, device):
    x, sigma, text, mask, camera = inputs
    return x.to(device), sigma.to(device), text.to(device), mask.to(device), camera.to(device)


def _output_and_grads(model, inputs, causal):
    model.zero_grad(set_to_none=True)
    out = model(*inputs, causal=causal)
    weights = torch.linspace(-1, 1, out.numel(), device=out.device).view_as(out)
    (out * weights).sum().backward()
    return out.detach().cpu(), {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("causal", [False, True])
def test_cuda_forward_and_backward_equal_cpu(causal):
    model = tiny_model()
    inputs = random_inputs(model.cfg)
    out_cpu, grads_cpu = _output_and_grads(model, inputs, causal)
    out_gpu, grads_gpu = _output_and_grads(model.to("cuda"), _to(inputs, "cuda"), causal)
    torch.testing.assert_close(out_gpu, out_cpu, atol=1e-4, rtol=1e-4)
    assert grads_gpu.keys() == grads_cpu.keys()
    for name in grads_cpu:
        torch.testing.assert_close(grads_gpu[name], grads_cpu[name], atol=2e-4, rtol=2e-4,
                                   msg=lambda m, name=name: f"grad of {name}: {m}")


def test_streaming_equals_chunk_causal_forward_on_cuda():
    model = tiny_model().to("cuda")
    x, sigma, text, mask, camera = _to(random_inputs(model.cfg), "cuda")
    with torch.no_grad():
        full = model(x, sigma, text, mask, camera, causal=True)
        state, pieces = model.init_state(x.shape[0]), []
        for s, e in [(0, 3), (3, 5), (5, 7), (7, 8)]:
            v, state = model.step(x[:, s:e], sigma[:, s:e], text, mask, camera.frames(s, e), state)
            pieces.append(v)
    assert (torch.cat(pieces, 1) - full).abs().max() <= 1e-5


def test_bf16_autocast_stays_close_to_fp32_on_cuda():
    model = tiny_model().to("cuda")
    inputs = _to(random_inputs(model.cfg), "cuda")
    with torch.no_grad():
        exact = model(*inputs, causal=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(*inputs, causal=True).float()
    assert torch.isfinite(low).all()
    assert (low - exact).norm() / exact.norm() < 0.05
