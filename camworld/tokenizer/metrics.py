"""Reconstruction metrics for the tokenizer: PSNR and SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _unit01(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 or float in [-1, 1] -> float64 in [0, 1]."""
    if x.dtype == torch.uint8:
        return x.double() / 255.0
    return ((x.double() + 1) / 2).clamp(0, 1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of two videos or images [..., H, W, 3] (uint8, or float in [-1, 1]) with peak 1 on [0, 1]."""
    mse = (_unit01(pred) - _unit01(target)).pow(2).mean().item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM over frames and RGB channels of [..., H, W, 3] (uint8, or float in [-1, 1]); valid windows only."""
    a = _unit01(pred).reshape(-1, *pred.shape[-3:]).permute(0, 3, 1, 2).reshape(-1, 1, *pred.shape[-3:-1])
    b = _unit01(target).reshape(-1, *target.shape[-3:]).permute(0, 3, 1, 2).reshape(-1, 1, *target.shape[-3:-1])
    w = _gaussian_window()
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean().item()
