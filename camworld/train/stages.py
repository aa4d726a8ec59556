"""SANA-WM's progressive training stages as overrides of one run config (sana_wm.md §6.1, §6.4, §2.4, §3.2).

    1  frame-wise GDN      short clips, all blocks GDN (softmax_every = 0), no camera, bidirectional
    2  hybrid attention    short clips, every 4th block softmax; initialised from stage 1 (softmax blocks keep the
                           qkv / proj / norms / output gate of the GDN block they replace; its gates and short conv
                           are dropped)
    3  minute + camera     long clips with camera control, bidirectional, lr / 5 (5e-5 -> 1e-5); the UCPE branch of
                           every block is initialised from that block's main qkv and norms (`init_cam_from_base`)
    4  chunk-causal SFT    long clips, chunk-causal with the per-chunk noise mixture, lr / 5, a third of the steps
                           (SANA-WM: 10K vs 30K)

Stage 1 here is SANA-WM's GDN conversion; its "VAE adaptation" pre-stage has no counterpart because camworld's
tokenizer is trained before the DiT (`camworld.tokenizer`). A preset's TrainConfig holds the stage-1 values; each
stage scales lr and steps, picks the clip length, and sets the architecture flags.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from camworld.config import RunConfig
from camworld.errors import UserError
from camworld.modules.ucpe import CameraBranch


@dataclass(frozen=True)
class Stage:
    number: int
    name: str
    softmax_every: int
    camera: bool
    causal: bool
    long_clips: bool
    lr_scale: float
    steps_scale: float
    init_from: int | None


STAGES = {
    1: Stage(1, "frame-wise GDN", 0, False, False, False, 1.0, 1.0, None),
    2: Stage(2, "hybrid attention", 4, False, False, False, 1.0, 1.0, 1),
    3: Stage(3, "long clips + camera control", 4, True, False, True, 0.2, 1.0, 2),
    4: Stage(4, "chunk-causal fine-tuning", 4, True, True, True, 0.2, 1.0 / 3.0, 3),
}

# Parameters a GDN block has and the softmax block replacing it in stage 2 does not (SANA-WM keeps the gates unused;
# camworld's softmax mixer omits them), so they may be left over when loading a stage-1 checkpoint.
GDN_ONLY = frozenset({"A_log", "dt_bias", "beta_proj", "gate_proj", "conv_k"})
# Modules a later stage adds: missing from an earlier stage's checkpoint, initialised by the model or below.
CAMERA_ONLY = frozenset({"camera", "plucker_proj", "plucker_embedder"})


def get_stage(number: int) -> Stage:
    if number not in STAGES:
        raise UserError(f"unknown training stage {number}; stages are {sorted(STAGES)}")
    return STAGES[number]


def apply_stage(cfg: RunConfig, number: int) -> RunConfig:
    """A copy of `cfg` with stage `number`'s overrides applied to its model and train sections."""
    stage = get_stage(number)
    cfg = copy.deepcopy(cfg)
    cfg.model.softmax_every = stage.softmax_every
    cfg.model.ucpe = cfg.model.plucker = stage.camera
    cfg.train.stage = number
    cfg.train.causal = stage.causal
    cfg.train.lr = cfg.train.lr * stage.lr_scale
    cfg.train.steps = max(1, round(cfg.train.steps * stage.steps_scale))
    if stage.long_clips:
        cfg.train.clip_frames = cfg.train.long_clip_frames
    return cfg


def _parts(key: str) -> set[str]:
    return set(key.split("."))


def load_previous_stage(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Initialise `model` from an earlier stage's weights and return counts of loaded / new / dropped tensors.

    Every tensor both have must match in shape. The model may have new camera-branch tensors (then every camera
    branch is initialised from its block's main qkv and q/k norms) and the checkpoint may have GDN-only tensors of
    blocks that became softmax; any other difference is an error naming the first offending key.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad_missing = [k for k in missing if not _parts(k) & CAMERA_ONLY]
    bad_unexpected = [k for k in unexpected if not _parts(k) & GDN_ONLY]
    if bad_missing or bad_unexpected:
        key = (bad_missing or bad_unexpected)[0]
        what = "lacks" if bad_missing else "has the unknown tensor"
        raise UserError(f"initial checkpoint {what} {key!r}: it is not an earlier stage of this model")
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            want = list(own[k].shape)
            raise UserError(f"initial checkpoint tensor {k!r} has shape {list(v.shape)}, the model wants {want}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    new_branches = 0
    if any(".camera." in k for k in missing):
        for module in model.modules():
            branch = getattr(module, "camera", None)
            if isinstance(branch, CameraBranch):
                branch.copy_from_main(module.qkv, module.q_norm, module.k_norm)
                new_branches += 1
    return {"loaded": len(own) - len(missing), "new": len(missing), "dropped": len(unexpected),
            "camera_branches_from_main": new_branches}
