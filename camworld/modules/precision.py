"""fp32 islands inside mixed-precision runs: SANA-WM keeps recurrent GDN states, the camera branch and the ray
geometry in float32 under bf16 weights/activations (`fp32_attention: true`, sana_wm.md §2.2)."""

from __future__ import annotations

import contextlib

import torch


def at_least_fp32(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors in float32, or in their own dtype when that is wider (float64 stays float64)."""
    return tuple(t.to(torch.promote_types(t.dtype, torch.float32)) for t in tensors)


def autocast_off(device: torch.device):
    """A context with autocast disabled on `device` (a no-op where autocast does not exist, e.g. meta)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()
