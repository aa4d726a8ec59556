"""An exponential moving average of a model's parameters, kept in float32 beside the training weights."""

from __future__ import annotations

import torch
from torch import nn


def _full(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor from a possibly sharded (FSDP2 DTensor) one; a collective when sharded."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


class EMA:
    """shadow ← d·shadow + (1 − d)·param after every optimiser step, with d = min(decay, (1 + n) / (10 + n)) so the
    average is not dominated by the random initialisation early on. decay = 0 makes the shadow a copy."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {n: p.detach().float().clone() for n, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in model.named_parameters():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    def state_dict(self, model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The EMA weights as a complete model state dict: averaged parameters, buffers taken from `model_state`."""
        out = dict(model_state)
        for name, t in self.shadow.items():
            full = _full(t)
            out[name] = full.to(model_state[name].dtype) if name in model_state else full
        return out

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        for name, t in self.shadow.items():
            src = state[name].float()
            if hasattr(t, "full_tensor"):
                from torch.distributed.tensor import distribute_tensor

                src = distribute_tensor(src.to(t.device), t.device_mesh, t.placements)
            t.copy_(src)
        self.updates = updates
