"""The training loop, agnostic of model and data: it trains any `model` with a `loss_fn(model, batch) -> (loss,
logs)` on any map-style dataset (SANA-WM §6.3: AdamW, constant lr, grad clip 0.5, bf16 autocast).

Determinism is what makes resume exact and data parallelism equal to one process: optimiser step s (0-based)
always uses the global draws s·G .. s·G + G − 1 (G = global batch); draw p reads dataset item
perm_e[p mod N] with a permutation per epoch e = p div N seeded by (seed, e); and the batch carries each clip's
draw number in `batch["draw"]`, from which the loss derives that clip's noise (`draw_generator`). Nothing random
depends on the step the run was resumed at, on the rank, or on the rank count.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm import tqdm

from camworld.config import TrainConfig
from camworld.errors import UserError
from camworld.train.checkpoint import (
    Checkpoint,
    capture_rng,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    restore_rng,
    save_checkpoint,
    step_dir_name,
)
from camworld.train.dist import DistInfo, barrier, local_batch_size, mean_over_ranks, unwrap, wrap_model
from camworld.train.ema import EMA
from camworld.train.loss_log import LossLog

LossFn = Callable[[nn.Module, dict], tuple[torch.Tensor, dict[str, float]]]
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def draw_generator(seed: int, draw: int) -> torch.Generator:
    """The generator of one clip draw: a fixed function of (run seed, draw number)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + int(draw) * 7_919 + 17) % (2**63))


class BatchPlan:
    """The (dataset index, draw number) pairs of each rank's share of each step, for a `DataLoader` batch_sampler."""

    def __init__(self, size: int, global_batch: int, seed: int, info: DistInfo, start: int, stop: int):
        if size < 1:
            raise UserError("the training dataset is empty")
        self.size, self.global_batch, self.seed, self.info = size, global_batch, seed, info
        self.local = local_batch_size(global_batch, info)
        self.start, self.stop = start, stop
        self._perms: dict[int, torch.Tensor] = {}

    def _item(self, draw: int) -> int:
        epoch = draw // self.size
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(self.size, generator=draw_generator(self.seed, -1 - epoch))}
        return int(self._perms[epoch][draw % self.size])

    def step(self, step: int) -> list[tuple[int, int]]:
        first = step * self.global_batch + self.info.rank * self.local
        return [(self._item(d), d) for d in range(first, first + self.local)]

    def __iter__(self):
        for s in range(self.start, self.stop):
            yield self.step(s)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class _WithDraw(Dataset):
    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __getitem__(self, key):
        index, draw = key
        # datasets that crop or augment with torch's global RNG get a draw-specific seed, so what they return is a
        # function of the draw as well (same on resume, on any rank, in any worker)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(draw_generator(self.seed, draw).initial_seed())
            item = dict(self.dataset[index])
        item["draw"] = draw
        return item


def _collate(items: list[dict]) -> dict:
    """default_collate, but strings (captions) stay a list and non-tensor metadata is kept per item."""
    out = {}
    for key in items[0]:
        values = [it[key] for it in items]
        out[key] = values if isinstance(values[0], str) else default_collate(values)
    return out


def _to(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Constant lr after an optional linear warm-up over `warmup_steps` (step is 0-based)."""
    if cfg.warmup_steps > 0:
        return cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
    return cfg.lr


def latest_checkpoint(out_dir: str | Path) -> Checkpoint | None:
    """The newest checkpoint of a run folder, verified (a damaged one raises UserError), or None if there is none."""
    found = list_checkpoints(out_dir)
    return load_checkpoint(found[-1]) if found else None


def cpu_bf16_is_native() -> bool:
    """Whether oneDNN has bf16 instructions on this CPU (AVX512-BF16 or AMX). Without them it emulates bf16, and a
    bf16-autocast training step of the tiny preset took 98 s against 14 s in fp32 (a 2-core AMD EPYC VM exposing
    only AVX2, 2026-11-27)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return True if check is None else bool(check())


def train(
    model: nn.Module,
    loss_fn: LossFn,
    dataset,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    run_config: dict | None = None,
    resume_from: Checkpoint | None = None,
    info: DistInfo | None = None,
    progress: bool = True,
    on_step: Callable[[dict], None] | None = None,
    param_groups: Callable[[nn.Module], list[dict]] | None = None,
) -> list[dict]:
    """Train for `cfg.steps` optimiser steps in total (counting steps done before a resume) and return this call's
    step records. `out_dir` receives loss.jsonl, loss.png and checkpoints/step_XXXXXXX/ folders.

    `resume_from` (normally `latest_checkpoint(out_dir)`) continues a run: weights, EMA, optimiser, RNG and data
    position, giving bit-identical losses to an uninterrupted run in fp32. Without it a folder that already holds
    checkpoints is refused. `on_step(record)` is called after every step on every rank. `param_groups(model)`
    gives the optimiser's parameter groups, each {"params": [...], "lr_scale": s} trained at s times the lr
    (default: one group of every parameter).
    """
    info = info or DistInfo()
    if cfg.bf16 and info.device.type == "cpu" and info.is_main and not cpu_bf16_is_native():
        print("note: this CPU has no bf16 instructions, so bf16 autocast is emulated and training runs several times "
              "slower than in fp32 here: --set train.bf16=false trains in fp32", file=sys.stderr)
    out_dir = Path(out_dir)
    log = LossLog(out_dir)
    ckpt = resume_from
    if ckpt is None and list_checkpoints(out_dir):
        raise UserError(f"{out_dir} already holds checkpoints: pass --resume to continue, or choose another --out")
    model.to(info.device)
    if ckpt is not None:
        unwrap(model).load_state_dict(ckpt.model, strict=True)
    wrapped = wrap_model(model, info, fsdp=cfg.fsdp)
    base = unwrap(wrapped)
    groups = param_groups(base) if param_groups is not None else [{"params": list(wrapped.parameters())}]
    optimizer = torch.optim.AdamW(
        groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    ema = EMA(base, cfg.ema_decay)
    start = 0
    if ckpt is not None:
        set_optimizer_state_dict(wrapped, optimizer, ckpt.optimizer, options=StateDictOptions(full_state_dict=True))
        ema.load_state_dict(ckpt.ema, updates=ckpt.step)
        restore_rng(ckpt.rng)
        start = ckpt.step
    if info.is_main:
        # records after the checkpoint (or, with none, all of them) are from a killed attempt and are redone
        log.truncate(start)
    barrier(info)
    plan = BatchPlan(len(dataset), cfg.batch_size, cfg.seed, info, start, cfg.steps)
    # an explicit generator keeps the loader from drawing its worker seed from the global RNG
    loader = DataLoader(
        _WithDraw(dataset, cfg.seed + 1), batch_sampler=plan, collate_fn=_collate, num_workers=cfg.data_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    bar = tqdm(total=cfg.steps, initial=start, desc="train", disable=not (progress and info.is_main), unit="step")
    records = []
    wrapped.train()
    for step, batch in enumerate(loader, start=start):
        tic = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step) * group.get("lr_scale", 1.0)
        with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss, logs = loss_fn(wrapped, _to(batch, info.device))
        loss.backward()
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(wrapped.parameters(), max_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(base)
        keys = sorted(logs)
        values = mean_over_ranks([float(loss.detach()), float(grad_norm)] + [float(logs[k]) for k in keys], info)
        record = {"step": step + 1, "loss": values[0], "grad_norm": values[1], "lr": lr_at(cfg, step)}
        record.update(zip(keys, values[2:]))
        record["seconds"] = time.perf_counter() - tic
        if not math.isfinite(record["loss"]):
            raise UserError(f"training diverged: loss is {record['loss']} at step {step + 1}; lower train.lr")
        records.append(record)
        if info.is_main:
            log.append(record)
            bar.update(1)
            if (step + 1) % max(1, cfg.log_every) == 0:
                bar.set_postfix(loss=f"{record['loss']:.4f}", gnorm=f"{record['grad_norm']:.3f}")
        if (step + 1) % max(1, cfg.checkpoint_every) == 0 or step + 1 == cfg.steps:
            _checkpoint(wrapped, optimizer, ema, step + 1, out_dir, run_config or {}, cfg, info, log)
        if on_step is not None:
            on_step(record)
    bar.close()
    return records


def _checkpoint(wrapped, optimizer, ema, step, out_dir, run_config, cfg, info, log) -> None:
    model_state = get_model_state_dict(wrapped, options=_FULL)
    optim_state = get_optimizer_state_dict(wrapped, optimizer, options=_FULL)
    ema_state = ema.state_dict(model_state)  # on every rank: gathering sharded EMA tensors is a collective
    if info.is_main:
        ckpt = Checkpoint(step, run_config, model_state, ema_state, optim_state, capture_rng())
        save_checkpoint(out_dir / "checkpoints" / step_dir_name(step), ckpt)
        prune_checkpoints(out_dir, cfg.keep_checkpoints)
        log.plot()
    barrier(info)
