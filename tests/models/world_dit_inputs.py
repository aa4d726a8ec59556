"""Shared builders for the WorldDiT tests: a tiny config, random inputs with cameras, weight perturbation.

Imported by name (pytest puts this folder on sys.path; tests/ has no packages)."""

from __future__ import annotations

import torch

from camworld.config import ModelConfig
from camworld.models.dit import CameraInputs, WorldDiT

# zero-init at construction: perturbing them makes the equivalence tests exercise every path
CAMERA_ZERO_INIT = ("out_proj_cam", "plucker_proj")


def tiny_config(**overrides) -> ModelConfig:
    """dim 64, 2 heads of 32, depth 4 with one softmax block (index 3), chunks [0, 3), [3, 5), [5, 7), [7, 8)."""
    base = {"in_channels": 4, "dim": 64, "depth": 4, "heads": 2, "ffn_ratio": 2, "softmax_every": 4}
    base.update(text_dim=16, temporal_stride=2, chunk_first=3, chunk_size=2, kv_sink_chunks=1, kv_window_chunks=8)
    return ModelConfig(**{**base, **overrides})


def perturb(model: torch.nn.Module, seed: int, scale: float = 0.05, skip: tuple[str, ...] = ()) -> torch.nn.Module:
    """Add N(0, scale²) noise to every parameter whose name contains none of `skip`."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not any(s in name for s in skip):
                p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def random_cameras(gen, batch, frames, height, width, stride):
    """Rigid c2w (rotation = exp of a random skew matrix), a pinhole K on the latent grid, random Plücker maps."""
    w = torch.randn(batch, frames, 3, generator=gen)
    skew = torch.zeros(batch, frames, 3, 3)
    skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -w[..., 2], w[..., 1], -w[..., 0]
    c2w = torch.eye(4).repeat(batch, frames, 1, 1)
    c2w[..., :3, :3] = torch.linalg.matrix_exp(skew - skew.transpose(-1, -2))
    c2w[..., :3, 3] = torch.randn(batch, frames, 3, generator=gen)
    K = torch.tensor([[width * 0.9, 0, (width - 1) / 2], [0, width * 0.9, (height - 1) / 2], [0, 0, 1]])
    plucker = torch.randn(batch, frames, height, width, 6 * stride, generator=gen)
    return CameraInputs(c2w, K.repeat(batch, frames, 1, 1), plucker)


def random_inputs(cfg: ModelConfig, batch=2, frames=8, height=3, width=5, text_len=6, seed=0):
    """(x, sigma, text, text_mask, camera) with one padded caption token in the second batch row."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames, height, width, cfg.in_channels, generator=gen)
    sigma = torch.rand(batch, frames, generator=gen)
    text = torch.randn(batch, text_len, cfg.text_dim, generator=gen)
    mask = torch.ones(batch, text_len, dtype=torch.bool)
    mask[-1, -1] = False
    return x, sigma, text, mask, random_cameras(gen, batch, frames, height, width, cfg.temporal_stride)


def tiny_model(seed=0, perturb_seed=1, **overrides) -> WorldDiT:
    """The tiny model with every parameter perturbed (zero-init layers included), in eval mode."""
    torch.manual_seed(seed)
    return perturb(WorldDiT(tiny_config(**overrides)), perturb_seed).eval()
