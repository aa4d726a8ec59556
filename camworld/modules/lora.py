"""Low-rank adapters (LoRA) on `nn.Linear`, the way the stage-2 refiner is trained (sana_wm.md §5: SANA-WM trains only
a rank-384 LoRA on attention Q/K/V/O and FFN projections of LTX-2, then merges it into the refiner's weights).

A `LoRALinear` computes y = x Wᵀ + b + s · (x Aᵀ) Bᵀ with s = alpha / rank, A [r, in] (Kaiming-uniform, as peft) and
B [out, r] = 0, so a freshly attached adapter leaves the layer's output exactly unchanged. It subclasses `nn.Linear`
and keeps the base `weight` / `bias` under their own names, so the base tensors of a model with adapters keep their
state-dict keys and code reading `layer.weight` still works; the adapter adds `<layer>.lora_A` / `<layer>.lora_B`.

Which layers (`REFINER_LORA_LAYERS`, module-name suffixes of `WorldDiT`):
- self-attention Q/K/V/O of every block: `attn.qkv`, `attn.proj` (GDN and softmax blocks alike) — SANA-WM's choice;
- cross-attention Q/K/V/O: `cross_attn.q_linear`, `cross_attn.kv_linear`, `cross_attn.proj` (LTX-2's attention
  LoRA covers its text attention too);
- FFN projections: `ffn.inverted`, `ffn.point` (the two 1x1 convs of GLUMBConvTemp) — SANA-WM's choice;
- the camera branch: `attn.camera.{q,k,v,out}_proj_cam` (the UCPE attention's own Q/K/V/O) and `plucker_proj`. LTX-2
  has no camera branch, so SANA-WM has nothing to match here; we adapt it because the refiner is camera-conditioned
  (§5 conditioning) and re-planned to the sink layout, and its camera attention sees other frames than in stage 1.
Left frozen: the GDN gates (`beta_proj`, `gate_proj`) and output gate, the embedders, adaLN (`t_block`) and the
final layer — none of them is an attention or FFN projection, and the gates are tiny (C -> heads).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from camworld.errors import UserError

REFINER_LORA_LAYERS = (
    "attn.qkv", "attn.proj",
    "cross_attn.q_linear", "cross_attn.kv_linear", "cross_attn.proj",
    "ffn.inverted", "ffn.point",
    "attn.camera.q_proj_cam", "attn.camera.k_proj_cam", "attn.camera.v_proj_cam", "attn.camera.out_proj_cam",
    "plucker_proj",
)
LORA_SUFFIXES = (".lora_A", ".lora_B")


class LoRALinear(nn.Linear):
    """`base` (its weight and bias Parameters are shared, not copied) plus a rank-`rank` adapter scaled by
    alpha / rank. Input [..., in] -> output [..., out]."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        nn.Module.__init__(self)  # nn.Linear.__init__ would allocate a second weight
        if rank < 1:
            raise UserError(f"LoRA rank must be >= 1, got {rank}")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.rank, self.alpha = rank, float(alpha)
        kind = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **kind))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **kind))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def delta_weight(self) -> torch.Tensor:
        """s · B A [out, in] in float32 (or the weight's wider dtype): what merging adds to the base weight."""
        dtype = torch.promote_types(self.weight.dtype, torch.float32)
        return self.scale * (self.lora_B.to(dtype) @ self.lora_A.to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + self.scale * F.linear(F.linear(x, self.lora_A), self.lora_B)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha:g}"


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def attach_lora(model: nn.Module, rank: int, alpha: float, layers: Iterable[str] = REFINER_LORA_LAYERS) -> list[str]:
    """Replace, in place, every `nn.Linear` of `model` whose qualified name ends with one of `layers` by a
    `LoRALinear` sharing its weights; return the replaced names. Layers already adapted raise UserError."""
    suffixes = tuple(layers)
    names = [n for n, m in model.named_modules()
             if type(m) is nn.Linear and any(n == s or n.endswith("." + s) for s in suffixes)]
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise UserError("the model already has LoRA adapters")
    if not names:
        raise UserError(f"no Linear layer of the model matches the LoRA layers {list(suffixes)}")
    for name in names:
        _set_module(model, name, LoRALinear(model.get_submodule(name), rank, alpha))
    return names


def freeze_all_but_lora(model: nn.Module) -> int:
    """requires_grad only on the adapters' A and B; returns the number of trainable parameters."""
    count = 0
    for name, p in model.named_parameters():
        trainable = name.endswith(LORA_SUFFIXES)
        p.requires_grad_(trainable)
        count += p.numel() if trainable else 0
    return count


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors, `<layer>.lora_A` [r, in] and `<layer>.lora_B` [out, r], detached."""
    return {k: v.detach() for k, v in model.state_dict().items() if k.endswith(LORA_SUFFIXES)}


def split_lora_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(base tensors, adapter tensors) of the state dict of a model with adapters."""
    lora = {k: v for k, v in state.items() if k.endswith(LORA_SUFFIXES)}
    return {k: v for k, v in state.items() if k not in lora}, lora


def merge_lora_state(
    base: dict[str, torch.Tensor], lora: dict[str, torch.Tensor], scale: float
) -> dict[str, torch.Tensor]:
    """A copy of the plain state dict `base` with W ← W + scale · B A for every adapter in `lora` (computed in
    float32 or W's wider dtype, stored in W's dtype). An adapter without its pair, or whose shapes do not fit W,
    raises UserError."""
    layers = {k.rsplit(".", 1)[0] for k in lora}
    merged = dict(base)
    for layer in sorted(layers):
        a, b, key = lora.get(f"{layer}.lora_A"), lora.get(f"{layer}.lora_B"), f"{layer}.weight"
        if a is None or b is None:
            raise UserError(f"LoRA layer {layer!r} lacks its lora_A or lora_B tensor")
        if key not in base:
            raise UserError(f"LoRA layer {layer!r} has no base weight {key!r}")
        w = base[key]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1] or (b.shape[0], a.shape[1]) != tuple(w.shape):
            raise UserError(f"LoRA layer {layer!r}: A {list(a.shape)} and B {list(b.shape)} do not fit the weight "
                            f"{list(w.shape)}")
        wide = torch.promote_types(w.dtype, torch.float32)
        delta = scale * (b.to(wide) @ a.to(wide))
        merged[key] = (w.to(wide) + delta.to(w.device)).to(w.dtype)
    return merged


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Replace, in place, every `LoRALinear` of `model` by a plain `nn.Linear` with W + s · B A; returns `model`."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            plain = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                              device=module.weight.device, dtype=module.weight.dtype)
            delta = module.delta_weight()
            plain.weight.copy_((module.weight.to(delta.dtype) + delta).to(module.weight.dtype))
            if module.bias is not None:
                plain.bias.copy_(module.bias)
            plain.weight.requires_grad_(module.weight.requires_grad)
            _set_module(model, name, plain)
    return model
