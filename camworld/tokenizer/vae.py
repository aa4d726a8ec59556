"""Causal video VAE: the tokenizer between RGB clips [B, F, H, W, 3] and latents [B, T, h, w, C].

SANA-WM §2.1 uses the LTX-2 VAE (stride (8, 32, 32), 128 channels, causal in time: latent 0 = raw frame 0, latent
k covers raw frames 8k-7 .. 8k; F = 8k + 1). This is our own, much smaller VAE with the same interface contract
(stride and channels come from `TokenizerConfig`):

- Causality by construction, not by causal-conv caches: latent k is computed from a window of stride_t + 1 raw
  frames, stride_t*k - stride_t .. stride_t*k (indices clipped at 0), i.e. its own frames plus the last frame of
  the previous group as causal context. Latent 0's window is frame 0 repeated, so encoding frame 0 alone gives
  exactly the first latent of any longer clip. Temporal downsampling is the stacking of the window's frames into
  channels, followed by a 2D conv encoder.
- The decoder maps latent k plus latent k-1 (bounded causal context; latent 0 uses itself) to the stride_t raw
  frames of group k; for latent 0 only the last of them (frame 0) is kept.
- Because every latent depends on a fixed, bounded window, chunked encode and chunk-by-chunk streaming decode
  equal the whole-clip computation, and a 961-frame clip runs in memory bounded by the chunk size.
- KL-regularised with a small weight; `encode` returns the posterior mean (as SANA-WM's `posterior.mode()`), then
  the per-channel normalisation z = (mu - mean) / std whose statistics are buffers saved with the weights.
  Deliberate difference: LTX-2 uses 3D causal convolutions with caches and a scaling factor; we fold the
  scaling into std.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from camworld.config import RunConfig, TokenizerConfig, load_config, save_config
from camworld.errors import UserError
from camworld.fileio import atomic_dir


def _groups(channels: int) -> int:
    return 8 if channels % 8 == 0 else 1


class ResBlock(nn.Module):
    """Pre-norm residual block: GroupNorm, SiLU, 3x3 conv, twice. Works on [N, C, H, W]."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(channels), channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(channels), channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class WindowEncoder(nn.Module):
    """One window of stride_t + 1 frames [N, (stride_t+1)*3, H, W] -> posterior moments [N, 2*C, H/s, W/s].

    A 2x pixel-unshuffle replaces the full-resolution stem; each further level halves the resolution.
    """

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        self.stem = nn.Conv2d((cfg.temporal_stride + 1) * 3 * 4, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(nn.Conv2d(widths[i - 1], width, 3, stride=2, padding=1))
            layers.extend(ResBlock(width) for _ in range(cfg.res_blocks))
        layers.append(ResBlock(widths[-1]))
        self.body = nn.Sequential(*layers)
        self.norm_out = nn.GroupNorm(_groups(widths[-1]), widths[-1])
        self.head = nn.Conv2d(widths[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(self.stem(F.pixel_unshuffle(x, 2)))
        return self.head(F.silu(self.norm_out(h)))


class GroupDecoder(nn.Module):
    """Latent k and latent k-1 [N, 2*C, h, w] -> the stride_t frames of group k [N, stride_t*3, h*s, w*s]."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        self.stem = nn.Conv2d(2 * cfg.latent_channels, widths[-1], 3, padding=1)
        layers: list[nn.Module] = [ResBlock(widths[-1])]
        for i in reversed(range(len(widths))):
            layers.extend(ResBlock(widths[i]) for _ in range(cfg.res_blocks + 1))
            if i > 0:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                layers.append(nn.Conv2d(widths[i], widths[i - 1], 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.norm_out = nn.GroupNorm(_groups(widths[0]), widths[0])
        self.head = nn.Conv2d(widths[0], cfg.temporal_stride * 3 * 4, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.body(self.stem(z))
        return F.pixel_shuffle(self.head(F.silu(self.norm_out(h))), 2)


def check_tokenizer_config(cfg: TokenizerConfig) -> None:
    s = cfg.spatial_stride
    if s < 2 or s & (s - 1):
        raise UserError(f"tokenizer.spatial_stride must be a power of two >= 2, got {s}")
    if len(cfg.channel_mults) != int(math.log2(s)):
        raise UserError(
            f"tokenizer.channel_mults needs log2(spatial_stride) = {int(math.log2(s))} entries, got {cfg.channel_mults}"
        )
    if cfg.temporal_stride < 1 or cfg.latent_channels < 1 or cfg.base_channels < 1:
        raise UserError("tokenizer.temporal_stride, latent_channels and base_channels must be positive")
    if cfg.height % s or cfg.width % s:
        raise UserError(f"tokenizer image size {cfg.height}x{cfg.width} must be divisible by spatial_stride {s}")


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3] in 0..255 -> float32 in [-1, 1]; float input is returned as float32 unchanged."""
    if frames.dtype == torch.uint8:
        return frames.float() / 127.5 - 1.0
    return frames.float()


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 0..255 (clamped, rounded)."""
    return ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class CausalVideoVAE(nn.Module):
    """Video [B, F, H, W, 3] (uint8, or float in [-1, 1]) <-> normalised latents [B, T, h, w, C], T = (F-1)/st + 1."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        check_tokenizer_config(cfg)
        self.cfg = cfg
        self.encoder = WindowEncoder(cfg)
        self.decoder = GroupDecoder(cfg)
        self.register_buffer("latents_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latents_std", torch.ones(cfg.latent_channels))

    @property
    def temporal_stride(self) -> int:
        return self.cfg.temporal_stride

    def num_latents(self, num_frames: int) -> int:
        st = self.cfg.temporal_stride
        if num_frames < 1 or (num_frames - 1) % st:
            raise UserError(f"a clip needs {st}*k + 1 frames for temporal stride {st}, got {num_frames}")
        return (num_frames - 1) // st + 1

    def num_frames(self, num_latents: int) -> int:
        return (num_latents - 1) * self.cfg.temporal_stride + 1

    def _check_video(self, video: torch.Tensor) -> int:
        s = self.cfg.spatial_stride
        if video.ndim != 5 or video.shape[-1] != 3:
            raise UserError(f"expected video [B, F, H, W, 3], got shape {tuple(video.shape)}")
        if video.shape[2] % s or video.shape[3] % s:
            raise UserError(f"frame size {video.shape[2]}x{video.shape[3]} is not divisible by {s}")
        return self.num_latents(video.shape[1])

    def moments(self, video: torch.Tensor, start: int = 0, stop: int | None = None):
        """Posterior mean and log-variance of latents start..stop-1, un-normalised: two [B, n, h, w, C]."""
        st = self.cfg.temporal_stride
        stop = self._check_video(video) if stop is None else stop
        k = torch.arange(start, stop, device=video.device)
        idx = (st * k[:, None] - st + torch.arange(st + 1, device=video.device)).clamp(min=0)
        windows = to_unit(video[:, idx.flatten()])  # [B, n*(st+1), H, W, 3]
        b, n = video.shape[0], stop - start
        windows = windows.reshape(b * n, st + 1, *windows.shape[2:]).permute(0, 1, 4, 2, 3).flatten(1, 2)
        out = self.encoder(windows).float()
        out = out.reshape(b, n, *out.shape[1:]).permute(0, 1, 3, 4, 2)
        mean, logvar = out.chunk(2, dim=-1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode_groups(self, raw: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """Un-normalised latents [B, n, h, w, C] and their predecessors (same shape) -> frames [B, n, st, H, W, 3]."""
        b, n = raw.shape[:2]
        z = torch.cat([raw, prev], dim=-1).flatten(0, 1).permute(0, 3, 1, 2)
        out = self.decoder(z).float()  # [b*n, st*3, H, W]
        st = self.cfg.temporal_stride
        return out.reshape(b, n, st, 3, *out.shape[2:]).permute(0, 1, 2, 4, 5, 3)

    def decode_raw(self, raw: torch.Tensor) -> torch.Tensor:
        """Whole-clip decode of un-normalised latents [B, T, h, w, C] -> video [B, F, H, W, 3] (for training)."""
        prev = torch.cat([raw[:, :1], raw[:, :-1]], dim=1)
        return _flatten_groups(self.decode_groups(raw, prev), first=True)

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.latents_mean) / self.latents_std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latents_std + self.latents_mean

    def encode(self, video: torch.Tensor, *, chunk: int | None = None) -> torch.Tensor:
        """Video [B, F, H, W, 3] -> normalised posterior-mean latents [B, T, h, w, C].

        chunk = latent frames per pass (None: `cfg.chunk_latents`; 0: the whole clip at once). Uint8 input is
        converted chunk by chunk, so a long clip never exists as float in full.
        """
        total = self._check_video(video)
        step = _chunk_size(chunk, self.cfg.chunk_latents, total)
        parts = [self.moments(video, k0, min(k0 + step, total))[0] for k0 in range(0, total, step)]
        return self.normalize(torch.cat(parts, dim=1))

    def decode(self, z: torch.Tensor, *, chunk: int | None = None) -> torch.Tensor:
        """Normalised latents [B, T, h, w, C] -> video [B, F, H, W, 3] float in about [-1, 1] (chunk as `encode`)."""
        total = z.shape[1]
        step = _chunk_size(chunk, self.cfg.chunk_latents, total)
        stream = StreamingDecoder(self)
        return torch.cat([stream.step(z[:, k0 : k0 + step]) for k0 in range(0, total, step)], dim=1)

    def stream_decoder(self) -> StreamingDecoder:
        return StreamingDecoder(self)


def _chunk_size(chunk: int | None, default: int, total: int) -> int:
    chunk = default if chunk is None else chunk
    if chunk < 0:
        raise UserError(f"chunk must be >= 0 latent frames, got {chunk}")
    return total if chunk == 0 else chunk


def _flatten_groups(groups: torch.Tensor, *, first: bool) -> torch.Tensor:
    """[B, n, st, H, W, 3] -> [B, F, H, W, 3]; when `first`, latent 0 contributes only its last frame (frame 0)."""
    frames = groups.flatten(1, 2)
    return frames[:, groups.shape[2] - 1 :] if first else frames


class StreamingDecoder:
    """Chunk-by-chunk decoder carrying the previous latent; concatenated outputs equal `CausalVideoVAE.decode`.

    `step(z [B, n, h, w, C])` (normalised latents) returns the raw frames they cover: 1 + st*(n-1) frames for the
    first chunk (latent 0 is frame 0 alone), st*n afterwards. The object is mutated by `step`.
    """

    def __init__(self, vae: CausalVideoVAE):
        self.vae = vae
        self.prev: torch.Tensor | None = None

    def step(self, z: torch.Tensor) -> torch.Tensor:
        raw = self.vae.denormalize(z)
        first = self.prev is None
        prev = torch.cat([raw[:, :1] if first else self.prev, raw[:, :-1]], dim=1)
        self.prev = raw[:, -1:]
        return _flatten_groups(self.vae.decode_groups(raw, prev), first=first)


def write_vae_files(vae: CausalVideoVAE, folder: str | os.PathLike, run_cfg: RunConfig | None = None,
                    metadata: dict[str, str] | None = None) -> None:
    """Write config.json (a RunConfig) and model.safetensors (weights + latent statistics) into `folder`."""
    folder = Path(folder)
    run_cfg = run_cfg if run_cfg is not None else RunConfig(tokenizer=vae.cfg)
    save_config(run_cfg, folder / "config.json")
    state = {k: v.detach().contiguous().cpu() for k, v in vae.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata=metadata)


def save_vae(vae: CausalVideoVAE, path: str | os.PathLike, run_cfg: RunConfig | None = None) -> None:
    """Save a checkpoint folder atomically (config.json + model.safetensors)."""
    with atomic_dir(path) as tmp:
        write_vae_files(vae, tmp, run_cfg)


def load_vae_weights(vae: CausalVideoVAE, path: str | os.PathLike, map_location: str = "cpu") -> None:
    """Load model.safetensors from checkpoint folder `path` into `vae` (strict: every key, every shape)."""
    file = Path(path) / "model.safetensors"
    if not file.is_file():
        raise UserError(f"{path} is not a VAE checkpoint folder (no model.safetensors)")
    try:
        vae.load_state_dict(load_file(str(file), device=map_location))
    except RuntimeError as exc:
        raise UserError(f"{file} does not match the tokenizer config: {str(exc).splitlines()[0]}") from None


def load_vae(path: str | os.PathLike, map_location: str = "cpu") -> CausalVideoVAE:
    """Load a checkpoint folder written by `save_vae` (no pickle: JSON config + safetensors), in eval mode."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path} is not a VAE checkpoint folder (no config.json)")
    cfg = load_config(path / "config.json").tokenizer
    cfg.channel_mults = tuple(cfg.channel_mults)
    vae = CausalVideoVAE(cfg)
    load_vae_weights(vae, path, map_location)
    return vae.eval()
