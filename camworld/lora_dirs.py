"""LoRA weights folders beside a bundled dit/: the stage-2 refiner (refiner/, sana_wm.md §5) and the distilled
few-step student (student/, §6.5). Each holds

    config.json         the adapter's RunConfig (rank / alpha in its `refiner` or `distill` section)
    lora.safetensors    only the adapter tensors (bf16); metadata: format, base folder "dit", and the
                        `weights_fingerprint` of the base weights the adapter was trained on

and is merged into dit/ on load (W + s·B A, float32), after checking that dit/ is that base.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from camworld.config import RunConfig, load_config, save_config
from camworld.errors import UserError
from camworld.fileio import atomic_dir
from camworld.modules.lora import merge_lora_state

LORA_FILE = "lora.safetensors"
LORA_FORMAT = "camworld-lora-1"


def weights_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, shapes and bf16-rounded values (other dtypes as they are) of a state dict: equal for
    the float32 weights a LoRA was trained on and the bf16 copy of them that gets bundled."""
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu()
        t = t.to(torch.bfloat16) if t.is_floating_point() else t
        digest.update(f"{name}:{str(t.dtype)}:{list(t.shape)};".encode())
        digest.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_lora_dir(folder: str | Path, lora: dict[str, torch.Tensor], run_cfg: RunConfig, base_fingerprint: str,
                  *, dtype: torch.dtype = torch.bfloat16) -> None:
    """Write a LoRA folder, atomically: config.json and lora.safetensors (the adapter tensors in `dtype`)."""
    if not lora:
        raise UserError("the checkpoint has no LoRA tensors")
    meta = {"format": LORA_FORMAT, "base": "dit", "base_sha256": base_fingerprint}
    with atomic_dir(folder) as tmp:
        save_config(run_cfg, tmp / "config.json")
        save_file({k: v.detach().cpu().to(dtype).contiguous() for k, v in lora.items()}, str(tmp / LORA_FILE),
                  metadata=meta)


def merged_lora_state(folder: str | Path, base_state: dict[str, torch.Tensor],
                      rank_alpha) -> tuple[RunConfig, dict[str, torch.Tensor]]:
    """(the folder's RunConfig, `base_state` with the folder's adapter merged in). rank_alpha(cfg) -> (rank, alpha)
    reads the adapter's rank and alpha from its config. The base must be the one the adapter names."""
    folder = Path(folder)
    path = folder / LORA_FILE
    for need in (folder / "config.json", path):
        if not need.is_file():
            raise UserError(f"LoRA folder {folder} has no {need.name}")
    cfg = load_config(folder / "config.json")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            names = f.keys()
            lora = {k: f.get_tensor(k) for k in names}
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is unreadable or corrupt ({reason})") from None
    if meta.get("format") != LORA_FORMAT or meta.get("base") != "dit":
        raise UserError(f"{path} is not a camworld LoRA on dit/ (metadata {meta})")
    if weights_fingerprint(base_state) != meta.get("base_sha256"):
        raise UserError(f"{path} was trained on other base weights than {folder.parent / 'dit'}: package the "
                        f"adapter with the DiT checkpoint it was initialised from")
    rank, alpha = rank_alpha(cfg)
    if rank < 1 or any(k.endswith(".lora_A") and v.shape[0] != rank for k, v in lora.items()):
        raise UserError(f"{path}: LoRA tensors disagree with the rank {rank} in config.json")
    return cfg, merge_lora_state(base_state, lora, alpha / rank)
