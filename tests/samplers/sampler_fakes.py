"""Stand-in models for the sampler tests: a recording model with a simple deterministic velocity, an oracle that
knows the clean latents, and a tiny perturbed WorldDiT with random cameras.

Imported by name (pytest puts this folder on sys.path; tests/ has no packages)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camworld.config import ModelConfig
from camworld.models.dit import CameraInputs, WorldDiT


@dataclass(frozen=True)
class FakeState:
    """batch, the next frame, and (offset, frames, σ of batch row 0) of every chunk fed into this state."""

    batch: int
    offset: int = 0
    history: tuple = ()


class RecordingModel:
    """v = tanh(x/2 + σ + masked mean(text) + camera translation x) per frame; every call is appended to `calls`.
    nan_frame0: the velocity of global frame 0 is NaN (a sampler must never use it)."""

    def __init__(self, nan_frame0: bool = False):
        self.cfg = ModelConfig()
        self.calls: list[dict] = []
        self.nan_frame0 = nan_frame0

    def velocity(self, x, sigma, text, text_mask, camera, offset=0):
        text_mean = (text * text_mask[..., None]).sum(dim=(1, 2)) / (text_mask.sum(1) * text.shape[-1])
        shift = sigma + text_mean[:, None]
        if camera is not None:
            shift = shift + camera.c2w[:, :, 0, 3]
        v = torch.tanh(0.5 * x + shift[:, :, None, None, None])
        if self.nan_frame0 and offset == 0:
            v[:, 0] = float("nan")
        return v

    def _record(self, kind, offset, x, sigma, text, text_mask, camera, history=()):
        self.calls.append({
            "kind": kind, "offset": offset, "frames": x.shape[1], "batch": x.shape[0], "sigma": sigma.clone(),
            "text": text.clone(), "text_mask": text_mask.clone(), "history": history,
            "c2w": None if camera is None else camera.c2w.clone(),
        })

    def __call__(self, x, sigma, text, text_mask, camera=None, *, causal=False, windowed=False):
        self._record("forward", 0, x, sigma, text, text_mask, camera)
        return self.velocity(x, sigma, text, text_mask, camera)

    def init_state(self, batch):
        return FakeState(batch)

    def step(self, x, sigma, text, text_mask, camera, state):
        assert x.shape[0] == state.batch
        self._record("step", state.offset, x, sigma, text, text_mask, camera, state.history)
        entry = (state.offset, x.shape[1], tuple(round(float(s), 6) for s in sigma[0]))
        return self.velocity(x, sigma, text, text_mask, camera, state.offset), FakeState(
            state.batch, state.offset + x.shape[1], state.history + (entry,)
        )


class OracleModel(RecordingModel):
    """The exact flow velocity towards known clean latents x0 [B, T, h, w, C]: v = (x − x0) / σ (0 where σ = 0)."""

    def __init__(self, x0):
        super().__init__()
        self.x0 = x0

    def _oracle(self, x, sigma, offset):
        target = self.x0[:, offset : offset + x.shape[1]]
        s = sigma[:, :, None, None, None]
        return torch.where(s > 0, (x - target) / s.clamp_min(1e-12), torch.zeros_like(x))

    def __call__(self, x, sigma, text, text_mask, camera=None, *, causal=False, windowed=False):
        return self._oracle(x, sigma, 0)

    def step(self, x, sigma, text, text_mask, camera, state):
        return self._oracle(x, sigma, state.offset), FakeState(state.batch, state.offset + x.shape[1])


def tiny_world_config(**overrides) -> ModelConfig:
    """dim 64, 2 heads, depth 4 with one softmax block, chunk plan (3, 2), a one-chunk KV window."""
    base = {"in_channels": 4, "dim": 64, "depth": 4, "heads": 2, "ffn_ratio": 2, "softmax_every": 4,
            "text_dim": 16, "temporal_stride": 2, "chunk_first": 3, "chunk_size": 2, "kv_window_chunks": 1}
    return ModelConfig(**{**base, **overrides})


def tiny_world_model(cfg: ModelConfig, seed: int = 0) -> WorldDiT:
    """WorldDiT with every parameter perturbed (so the zero-init camera layers take part), in eval mode."""
    torch.manual_seed(seed)
    model = WorldDiT(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


def random_cameras(batch, frames, height, width, stride, seed=0) -> CameraInputs:
    gen = torch.Generator().manual_seed(seed)
    rot = torch.linalg.qr(torch.randn(batch, frames, 3, 3, generator=gen)).Q
    c2w = torch.eye(4).repeat(batch, frames, 1, 1)
    c2w[..., :3, :3] = rot * torch.linalg.det(rot).sign()[..., None, None]
    c2w[..., :3, 3] = torch.randn(batch, frames, 3, generator=gen)
    K = torch.tensor([[width * 0.9, 0, (width - 1) / 2], [0, width * 0.9, (height - 1) / 2], [0, 0, 1]])
    plucker = torch.randn(batch, frames, height, width, 6 * stride, generator=gen)
    return CameraInputs(c2w, K.repeat(batch, frames, 1, 1), plucker)


def text_inputs(batch, length, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[-1, -1] = False
    return torch.randn(batch, length, dim, generator=gen), mask
