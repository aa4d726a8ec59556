"""Data-parallel training: process-group setup under `torchrun`, DDP (gloo on CPU, NCCL on CUDA) or FSDP2.

Launch with `torchrun --nproc-per-node N -m camworld train ...`; without torchrun everything runs in one process.
Each rank gets an equal share of the global batch (`camworld.train.loop.BatchPlan`), so N ranks with global batch G
take the same optimiser steps as one process with batch G (tests/train/test_dist.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from camworld.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _device_for(rank: int, device: str | None) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", rank % torch.cuda.device_count())
    return dev


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group torchrun set up (or an already initialised one); a single process otherwise."""
    if not dist.is_initialized():
        if not dist.is_torchelastic_launched():
            return DistInfo(device=_device_for(0, device))
        backend = "nccl" if _device_for(0, device).type == "cuda" else "gloo"
        dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = _device_for(rank, device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return DistInfo(rank=rank, world_size=world, device=dev)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, *, fsdp: bool = False) -> nn.Module:
    """DDP around `model`, or FSDP2 `fully_shard` applied to every element of its ModuleLists and then the root
    (in place); the model itself when there is one rank."""
    if not info.distributed:
        return model
    if not fsdp:
        ids = [info.device.index] if info.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(info.device.type, (info.world_size,))
    for module in model.modules():
        if isinstance(module, nn.ModuleList):
            for block in module:
                fully_shard(block, mesh=mesh, reshard_after_forward=False)
    fully_shard(model, mesh=mesh, reshard_after_forward=False)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def local_batch_size(global_batch: int, info: DistInfo) -> int:
    if global_batch % info.world_size:
        raise UserError(f"global batch {global_batch} is not divisible by the {info.world_size} ranks")
    return global_batch // info.world_size


def mean_over_ranks(values: list[float], info: DistInfo) -> list[float]:
    """Average a list of floats over ranks (every rank passes the same number of values)."""
    if not info.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return (t / info.world_size).tolist()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
