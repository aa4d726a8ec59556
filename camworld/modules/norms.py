"""Normalisation helpers of the DiT: RMSNorm with a configurable weight init, adaLN `modulate`, zero-init Linear.

SANA-WM §2.2: blocks use LayerNorm without affine (eps 1e-6, plain `nn.LayerNorm(dim, elementwise_affine=False,
eps=1e-6)`) modulated by adaLN-single; q/k and the caption use RMSNorm (the caption's weight starts at 0.01, §2.6).
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """x / rms(x) * weight over the last dim; statistics in float32, output in the input dtype (as Sana).

    `init` is the starting value of every weight entry (1.0 for q/k norms, 0.01 for the caption `y_norm`).
    """

    def __init__(self, dim: int, eps: float = 1e-6, init: float = 1.0):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation `x * (1 + scale) + shift` (Sana's `t2i_modulate`); shift/scale broadcast against x."""
    return x * (1 + scale) + shift


def zero_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    """A Linear whose weight (and bias) start at exactly zero, so a new branch adds nothing at init (§3.3)."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    nn.init.zeros_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer
