"""Training checkpoints as a folder of safetensors + JSON, written atomically, read without unpickling.

Layout of `step_0001234/`:
    config.json            the RunConfig (or any JSON-able dict) the run was started with
    model.safetensors      model weights (full, unsharded, names without DDP/FSDP prefixes)
    ema.safetensors        EMA weights, same names
    optimizer.safetensors  optimiser tensors, named `<param name>/<state key>` (e.g. `blocks.0.qkv.weight/exp_avg`)
    rng.safetensors        torch CPU (and CUDA) generator states as uint8 tensors
    trainer_state.json     step, optimiser hyper-parameters, Python/NumPy RNG states, and a SHA-256 of every
                           other file (written last: a checkpoint without it, or whose hashes disagree, is rejected)

Nothing is loaded with pickle, so a checkpoint from an untrusted source cannot run code. A missing, truncated or
corrupted checkpoint raises `UserError` with one line naming the folder and the problem.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from camworld.errors import UserError
from camworld.fileio import atomic_dir

STATE_FILE = "trainer_state.json"
TENSOR_FILES = ("model.safetensors", "ema.safetensors", "optimizer.safetensors", "rng.safetensors")
_STEP_DIR = re.compile(r"^step_(\d{7,})$")


@dataclass
class Checkpoint:
    """Everything a run resumes from. Tensors are on the CPU; `optimizer` is a name-keyed optimiser state dict
    as `torch.distributed.checkpoint.state_dict.get_optimizer_state_dict(..., full_state_dict=True)` returns."""

    step: int
    config: dict
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimizer: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def step_dir_name(step: int) -> str:
    return f"step_{step:07d}"


def capture_rng() -> dict:
    """Python, NumPy and torch RNG states as {"json": ..., "tensors": {name: uint8 tensor}}, pickle-free."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    return {"json": state, "tensors": tensors}


def restore_rng(rng: dict) -> None:
    version, internal, gauss = rng["json"]["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = rng["json"]["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(rng["tensors"]["torch_cpu"])
    cuda = [rng["tensors"][k] for k in sorted(rng["tensors"]) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for name, entries in state.get("state", {}).items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{name}/{key}"] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state.get("param_groups", [])]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[str, dict] = {}
    for flat, value in [*tensors.items(), *meta.get("scalars", {}).items()]:
        name, key = flat.rsplit("/", 1)
        state.setdefault(name, {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta.get("param_groups", [])]
    return {"state": state, "param_groups": groups}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write `ckpt` as a checkpoint folder at `path`, atomically (an existing folder is replaced)."""
    path = Path(path)
    opt_tensors, opt_meta = _flatten_optimizer(ckpt.optimizer)
    rng = ckpt.rng or {"json": {}, "tensors": {}}
    with atomic_dir(path) as tmp:
        (tmp / "config.json").write_text(json.dumps(ckpt.config, indent=2) + "\n")
        save_file(_cpu(ckpt.model), str(tmp / "model.safetensors"))
        save_file(_cpu(ckpt.ema), str(tmp / "ema.safetensors"))
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        save_file(_cpu(rng["tensors"]), str(tmp / "rng.safetensors"))
        files = ("config.json", *TENSOR_FILES)
        state = {
            "format": "camworld-train-checkpoint-1",
            "step": ckpt.step,
            "optimizer": opt_meta,
            "rng": rng["json"],
            "extra": ckpt.extra,
            "sha256": {name: _sha256(tmp / name) for name in files},
        }
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")
    return path


def _fail(path: Path, problem: str) -> UserError:
    return UserError(f"checkpoint {path} is unusable: {problem}")


def load_checkpoint(path: str | Path, *, verify: bool = True) -> Checkpoint:
    """Read a checkpoint folder; any missing, truncated or corrupted part raises a one-line `UserError`."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"checkpoint {path} does not exist or is not a folder")
    try:
        state = json.loads((path / STATE_FILE).read_text())
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError as exc:
        raise _fail(path, f"missing {Path(exc.filename).name}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"cannot parse JSON ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "sha256" not in state or "step" not in state:
        raise _fail(path, f"{STATE_FILE} lacks step/sha256 entries")
    if verify:
        for name, digest in state["sha256"].items():
            if not (path / name).is_file():
                raise _fail(path, f"missing {name}")
            if _sha256(path / name) != digest:
                raise _fail(path, f"{name} is corrupted or truncated (checksum mismatch)")
    try:
        model, ema, opt, rng = (load_file(str(path / name)) for name in TENSOR_FILES)
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(path, f"cannot read tensors ({reason})") from None
    return Checkpoint(
        step=int(state["step"]),
        config=config,
        model=model,
        ema=ema,
        optimizer=_unflatten_optimizer(opt, state.get("optimizer", {})),
        rng={"json": state.get("rng", {}), "tensors": rng},
        extra=state.get("extra", {}),
    )


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint folders under `run_dir/checkpoints`, oldest first (temporary folders are ignored)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoint folders (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
