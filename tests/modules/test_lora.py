"""LoRA on nn.Linear: identity at init, unmerged == merged (forward and backward, one layer and a whole WorldDiT),
the state-dict merge == the module merge, which layers of WorldDiT get adapters, and bad adapters."""

import copy

import pytest
import torch
from torch import nn

from camworld.config import ModelConfig
from camworld.errors import UserError
from camworld.models.dit import CameraInputs, WorldDiT
from camworld.modules.lora import (
    LoRALinear,
    attach_lora,
    freeze_all_but_lora,
    lora_state_dict,
    merge_lora,
    merge_lora_state,
    split_lora_state,
)

RANK, ALPHA = 3, 6.0


@pytest.fixture(autouse=True, scope="module")
def _single_thread():  # tiny ops: a 2-thread pool only waits for busy cores on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg():
    return ModelConfig(in_channels=4, dim=32, depth=2, heads=2, ffn_ratio=2, softmax_every=2, text_dim=8,
                       temporal_stride=2, chunk_first=1, chunk_size=8, gdn_backend="chunked")


def _inputs(cfg, seed=0, frames=3, h=2, w=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, frames, h, w, cfg.in_channels, generator=g, dtype=torch.float64)
    sigma = torch.rand(2, frames, generator=g, dtype=torch.float64)
    text = torch.randn(2, 4, cfg.text_dim, generator=g, dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, frames, 1, 1)
    c2w[..., :3, 3] = 0.3 * torch.randn(2, frames, 3, generator=g, dtype=torch.float64)
    K = torch.tensor([[3.0, 0, 1], [0, 3.0, 0.5], [0, 0, 1]], dtype=torch.float64).repeat(2, frames, 1, 1)
    plucker = torch.randn(2, frames, h, w, 6 * cfg.temporal_stride, generator=g, dtype=torch.float64)
    return x, sigma, text, torch.ones(2, 4, dtype=torch.bool), CameraInputs(c2w, K, plucker)


def _nudge_lora(model, seed=1, scale=0.1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_B") or "proj_cam" in name or "plucker" in name:  # zero-init tensors
                p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _dit(seed=0):
    torch.manual_seed(seed)
    model = WorldDiT(_cfg()).double()
    _nudge_lora(model, seed + 10)  # the zero-init camera projections, so the camera LoRA matters
    return model


def test_layer_starts_as_the_base_and_merges_exactly_forward_and_backward():
    torch.manual_seed(0)
    base = nn.Linear(5, 7).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    layer = LoRALinear(base, RANK, ALPHA)
    assert layer.weight is base.weight and layer.bias is base.bias
    assert torch.equal(layer(x), base(x))
    with torch.no_grad():
        layer.lora_B.normal_()
    merged = merge_lora(nn.Sequential(copy.deepcopy(layer)))[0]
    assert type(merged) is nn.Linear
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = layer(xa), merged(xb)
    torch.testing.assert_close(out_a, out_b, rtol=1e-12, atol=1e-12)
    weights = torch.randn(out_a.shape, dtype=torch.float64)
    (out_a * weights).sum().backward()
    (out_b * weights).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-12, atol=1e-12)
    g = merged.weight.grad  # dL/dW' of the merged layer: the base gets it unchanged, A and B through W' = W + sBA
    torch.testing.assert_close(layer.weight.grad, g)
    torch.testing.assert_close(layer.bias.grad, merged.bias.grad)
    torch.testing.assert_close(layer.lora_B.grad, layer.scale * g @ layer.lora_A.T)
    torch.testing.assert_close(layer.lora_A.grad, layer.scale * layer.lora_B.T @ g)


def test_dit_with_lora_equals_the_base_at_init_and_the_merged_dit_after():
    base = _dit()
    x, sigma, text, mask, cam = _inputs(base.cfg)
    model = copy.deepcopy(base)
    names = attach_lora(model, RANK, ALPHA)
    assert torch.equal(model(x, sigma, text, mask, cam, causal=True), base(x, sigma, text, mask, cam, causal=True))
    _nudge_lora(model)
    merged = merge_lora(copy.deepcopy(model))
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert set(merged.state_dict()) == set(base.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a = model(xa, sigma, text, mask, cam, causal=True)
    out_b = merged(xb, sigma, text, mask, cam, causal=True)
    assert not torch.allclose(out_a, base(x, sigma, text, mask, cam, causal=True))
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-6)
    weights = torch.randn(out_a.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    (out_a * weights).sum().backward()
    (out_b * weights).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-6)
    grads_b = dict(merged.named_parameters())
    for name, p in model.named_parameters():
        if not name.endswith(("lora_A", "lora_B")):
            torch.testing.assert_close(p.grad, grads_b[name].grad, rtol=1e-5, atol=1e-6, msg=name)
    # (tolerances: rotary and ray tables are float32 even in a float64 model)
    # the adapted layers: self- and cross-attention Q/K/V/O, FFN in/out, the camera branch; 12 per block
    assert len(names) == 2 * 12 and "blocks.1.attn.camera.out_proj_cam" in names
    assert not any("gate" in n or "embedder" in n or "final" in n or "t_block" in n for n in names)


def test_state_merge_equals_module_merge_and_freezing():
    model = _dit()
    attach_lora(model, RANK, ALPHA)
    _nudge_lora(model)
    trainable = freeze_all_but_lora(model)
    lora = lora_state_dict(model)
    assert trainable == sum(v.numel() for v in lora.values()) > 0
    assert all(p.requires_grad == n.endswith(("lora_A", "lora_B")) for n, p in model.named_parameters())
    base, lora2 = split_lora_state(model.state_dict())
    assert set(lora2) == set(lora)
    from_state = merge_lora_state(base, lora, ALPHA / RANK)
    from_modules = merge_lora(copy.deepcopy(model)).state_dict()
    assert set(from_state) == set(from_modules)
    for k, v in from_modules.items():
        torch.testing.assert_close(from_state[k], v, rtol=0, atol=0, msg=k)


def test_bad_adapters_are_user_errors():
    model = _dit()
    base = model.state_dict()
    a = torch.zeros(RANK, 32, dtype=torch.float64)
    with pytest.raises(UserError, match="lacks"):
        merge_lora_state(base, {"blocks.0.attn.proj.lora_A": a}, 1.0)
    with pytest.raises(UserError, match="do not fit"):
        merge_lora_state(base, {"blocks.0.attn.proj.lora_A": a,
                                "blocks.0.attn.proj.lora_B": torch.zeros(31, RANK, dtype=torch.float64)}, 1.0)
    with pytest.raises(UserError, match="no base weight"):
        merge_lora_state(base, {"nowhere.lora_A": a, "nowhere.lora_B": a.T}, 1.0)
    with pytest.raises(UserError, match="rank"):
        attach_lora(model, 0, 1.0)
    with pytest.raises(UserError, match="matches"):
        attach_lora(model, RANK, ALPHA, layers=("no_such_layer",))
    attach_lora(model, RANK, ALPHA)
    with pytest.raises(UserError, match="already"):
        attach_lora(model, RANK, ALPHA)
