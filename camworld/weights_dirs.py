"""Weights folders: a model as `config.json` (RunConfig) + `model.safetensors`, read and written without pickle (any
problem is a one-line UserError), and the refiner / student folders that hold only a LoRA on the DiT, merged on
load. `camworld.pipeline.WorldModel` reads the bundled layout through these."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from camworld.config import RunConfig, load_config, save_config
from camworld.errors import UserError
from camworld.fileio import atomic_dir
from camworld.flow.refiner_objective import refiner_model_config
from camworld.lora_dirs import merged_lora_state
from camworld.models.dit import WorldDiT
from camworld.tokenizer.vae import CausalVideoVAE


def read_weights_dir(folder: str | Path) -> tuple[RunConfig, dict[str, torch.Tensor]]:
    """(RunConfig, CPU state dict) of a `config.json` + `model.safetensors` folder; any problem is a UserError."""
    folder = Path(folder)
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise UserError(f"weights folder {folder} has no {name}")
    cfg = load_config(folder / "config.json")
    cfg.tokenizer.channel_mults = tuple(cfg.tokenizer.channel_mults)
    try:
        state = load_file(str(folder / "model.safetensors"), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{folder / 'model.safetensors'} is unreadable or corrupt ({reason})") from None
    return cfg, state


def _load_state(module: nn.Module, state: dict[str, torch.Tensor], folder: Path) -> nn.Module:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{folder / 'model.safetensors'} does not match {folder / 'config.json'}: "
                        f"{str(exc).splitlines()[1 if len(str(exc).splitlines()) > 1 else 0].strip()}") from None
    return module.eval().requires_grad_(False)


def load_vae_dir(folder: str | Path) -> tuple[CausalVideoVAE, RunConfig]:
    cfg, state = read_weights_dir(folder)
    return _load_state(CausalVideoVAE(cfg.tokenizer), state, Path(folder)), cfg


def load_dit_dir(folder: str | Path) -> tuple[WorldDiT, RunConfig]:
    cfg, state = read_weights_dir(folder)
    return _load_state(WorldDiT(cfg.model), state, Path(folder)), cfg


def save_weights_dir(module: nn.Module, folder: str | Path, run_cfg: RunConfig) -> None:
    """Write `module` as config.json + model.safetensors into `folder`, atomically."""
    with atomic_dir(folder) as tmp:
        save_config(run_cfg, tmp / "config.json")
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()},
                  str(tmp / "model.safetensors"))


def save_pretrained(path: str | Path, vae: CausalVideoVAE, dit: WorldDiT, run_cfg: RunConfig,
                    refiner: WorldDiT | None = None) -> Path:
    """Write a weights folder in the bundled layout (vae/, dit/ and, if given, refiner/)."""
    path = Path(path)
    save_weights_dir(vae, path / "vae", run_cfg)
    save_weights_dir(dit, path / "dit", run_cfg)
    if refiner is not None:
        save_weights_dir(refiner, path / "refiner", run_cfg)
    return path


def load_refiner_lora(folder: str | Path, base: WorldDiT, base_cfg: RunConfig) -> WorldDiT:
    """The refiner of a LoRA refiner folder: `base` (the loaded dit/) with the adapter merged in and the sink chunk
    plan of `refiner_model_config`."""
    cfg, merged = merged_lora_state(folder, base.state_dict(), lambda c: (c.refiner.lora_rank, c.refiner.lora_alpha))
    return _load_state(WorldDiT(refiner_model_config(base_cfg.model, cfg.refiner)), merged, Path(folder))


def load_student_lora(folder: str | Path, base: WorldDiT, base_cfg: RunConfig) -> tuple[WorldDiT, RunConfig]:
    """(the distilled student of a student/ folder: `base` with the adapter merged in, the folder's RunConfig, whose
    `distill` section holds the student's σ list)."""
    cfg, merged = merged_lora_state(folder, base.state_dict(), lambda c: (c.distill.lora_rank, c.distill.lora_alpha))
    cfg.distill.sigmas = tuple(cfg.distill.sigmas)
    return _load_state(WorldDiT(base_cfg.model), merged, Path(folder)), cfg
