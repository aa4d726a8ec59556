"""The refiner's truncated-σ objective: σ_t range and law, reduction to the base objective when x_l = x_h, oracle
and sink handling, degradation, and one loss + backward through a tiny WorldDiT with the sink plan."""

import pytest
import torch

from camworld.config import ModelConfig, RefinerConfig
from camworld.errors import UserError
from camworld.flow.refiner_objective import (
    check_sink_plan,
    degrade_frames,
    draw_refiner_inputs,
    refiner_flow_loss,
    refiner_loss,
    refiner_model_config,
    truncated_sigma,
    with_chunk_plan,
)
from camworld.flow.schedule import add_noise, shift_sigma
from camworld.models.dit import WorldDiT

B, T, H, W, C, L, D = 3, 5, 2, 3, 4, 4, 8
S0 = RefinerConfig().sigmas[0]


def _batch(seed=0, same=False):
    gen = torch.Generator().manual_seed(seed)
    x_h = torch.randn(B, T, H, W, C, generator=gen)
    x_l = x_h.clone() if same else torch.randn(B, T, H, W, C, generator=gen)
    inputs = draw_refiner_inputs((T, H, W, C), [torch.Generator().manual_seed(10 + i) for i in range(B)],
                                 sigma_start=S0, shift=3.0)
    return x_h, x_l, inputs, torch.randn(B, L, D, generator=gen), torch.ones(B, L, dtype=torch.bool)


def test_truncated_sigma_is_the_conditioned_shifted_logit_normal():
    gen = torch.Generator().manual_seed(0)
    got = truncated_sigma(20000, S0, 3.0, gen)
    assert float(got.min()) > 0.0 and float(got.max()) <= S0
    plain = shift_sigma(torch.sigmoid(torch.randn(60000, generator=gen, dtype=torch.float64)), 3.0)
    kept = plain[plain <= S0].float()
    q = torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(torch.quantile(got, q), torch.quantile(kept, q), atol=0.015, rtol=0)
    with pytest.raises(UserError):
        truncated_sigma(3, 0.0, 3.0)


def test_equal_pairs_reduce_to_the_base_flow_objective():
    x_h, x_l, inputs, text, mask = _batch(same=True)
    seen = {}

    def velocity(x, sigma, txt, m):
        seen.update(x=x, sigma=sigma)
        return inputs.noise - x_h

    loss, logs = refiner_flow_loss(velocity, x_h, x_l, inputs, text, mask, sigma_start=S0)
    assert float(loss) < 1e-10
    base = add_noise(x_h, inputs.noise, inputs.sigma[:, None].expand(B, T))
    torch.testing.assert_close(seen["x"][:, 1:], base[:, 1:])
    assert torch.equal(seen["x"][:, 0], x_h[:, 0]) and float(seen["sigma"][:, 0].abs().max()) == 0.0
    assert torch.equal(seen["sigma"][:, 1:], inputs.sigma[:, None].expand(B, T - 1))
    assert 0 < logs["sigma_mean"] <= S0


def test_oracle_is_zero_the_sink_is_out_of_the_loss_and_the_path_starts_at_x1():
    x_h, x_l, inputs, text, mask = _batch()
    x_1 = (1 - S0) * x_l + S0 * inputs.noise
    target = (x_1 - x_h) / S0

    def oracle(x, sigma, txt, m):
        v = target.clone()
        v[:, 0] = 1e3  # the sink's prediction must not count
        return v

    loss, _ = refiner_flow_loss(oracle, x_h, x_l, inputs, text, mask, sigma_start=S0)
    assert float(loss) < 1e-10
    zero, _ = refiner_flow_loss(lambda x, s, t, m: torch.zeros_like(x), x_h, x_l, inputs, text, mask, sigma_start=S0)
    torch.testing.assert_close(zero, target[:, 1:].pow(2).mean())
    start = {}
    at_start = draw_refiner_inputs((T, H, W, C), [torch.Generator().manual_seed(i) for i in range(B)],
                                   sigma_start=S0, shift=3.0)
    at_start.sigma = torch.full((B,), S0)
    refiner_flow_loss(lambda x, s, t, m: start.setdefault("x", x), x_h, x_l, at_start, text, mask, sigma_start=S0)
    torch.testing.assert_close(start["x"][:, 1:], ((1 - S0) * x_l + S0 * at_start.noise)[:, 1:])


def test_latent_noise_perturbs_the_coarse_latents():
    x_h, x_l, inputs, text, mask = _batch()
    fn = lambda x, s, t, m: torch.zeros_like(x)  # noqa: E731
    a, _ = refiner_flow_loss(fn, x_h, x_l, inputs, text, mask, sigma_start=S0, latent_noise=0.0)
    b, _ = refiner_flow_loss(fn, x_h, x_l + 0.5 * inputs.perturb, inputs, text, mask, sigma_start=S0)
    c, _ = refiner_flow_loss(fn, x_h, x_l, inputs, text, mask, sigma_start=S0, latent_noise=0.5)
    assert float(a) != float(c) and torch.allclose(b, c)


def test_degrade_frames_blurs_detail_and_keeps_flat_video():
    flat = torch.full((1, 2, 16, 16, 3), 77, dtype=torch.uint8)
    assert torch.equal(degrade_frames(flat, 4), flat)
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2 * 255).to(torch.uint8)
    video = checker[None, None, :, :, None].expand(1, 2, 16, 16, 3).contiguous()
    out = degrade_frames(video, 4)
    assert out.dtype == torch.uint8 and out.shape == video.shape
    assert float(out.float().std()) < 0.1 * float(video.float().std())


def test_sink_plan_config_and_view():
    cfg = refiner_model_config(ModelConfig(), RefinerConfig(window_chunks=5))
    assert (cfg.chunk_first, cfg.kv_sink_chunks, cfg.kv_window_chunks) == (1, 1, 5)
    check_sink_plan(cfg, 121)
    with pytest.raises(UserError):
        check_sink_plan(ModelConfig(), 5)
    model = WorldDiT(ModelConfig(dim=32, depth=1, heads=2, text_dim=8, in_channels=4))
    view = with_chunk_plan(model, 1, 3)
    assert (view.cfg.chunk_first, view.cfg.chunk_size) == (1, 3) and model.cfg.chunk_first == 4
    assert view.x_embedder.weight is model.x_embedder.weight


def test_refiner_loss_trains_a_sink_plan_world_dit():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = ModelConfig(in_channels=C, dim=32, depth=2, heads=2, ffn_ratio=2, softmax_every=2, text_dim=D,
                           ucpe=False, plucker=False)
        model = WorldDiT(refiner_model_config(base, RefinerConfig()))
        x_h, x_l, _, text, mask = _batch()
        gens = [torch.Generator().manual_seed(i) for i in range(B)]
        loss, logs = refiner_loss(model, x_h, x_l, text, mask, None, gens, shift=3.0, latent_noise=0.1)
        loss.backward()
        assert torch.isfinite(loss) and 0 < logs["sigma_mean"] <= S0
        assert model.x_embedder.weight.grad.abs().sum() > 0
        with pytest.raises(UserError):
            refiner_loss(WorldDiT(base), x_h, x_l, text, mask, None, gens)
    finally:
        torch.set_num_threads(threads)
