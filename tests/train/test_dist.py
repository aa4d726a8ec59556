"""Two gloo ranks: DDP and FSDP2 (with a resume in between) take the same optimiser steps as one process with the
same global batch, and the context-parallel GDN scan equals the single-process scan (forward and backward)."""

import json

import pytest
import torch
import torch.multiprocessing as mp
from train_fixtures import (
    DDP_STEPS,
    FSDP_STEPS,
    TinyVelocity,
    dist_checks_worker,
    fast_config,
    flow_loss_fn,
    gdn_inputs,
    latent_dataset,
)

from camworld.ops.gdn import frame_delta_scan
from camworld.train.checkpoint import list_checkpoints, load_checkpoint
from camworld.train.context_parallel import local_composites, prefix_state
from camworld.train.loop import train


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    # fork, not spawn: the children inherit the imported modules instead of re-importing torch (4x faster here);
    # each child runs single-threaded, which keeps OpenMP out of the forked processes
    mp.start_processes(dist_checks_worker, args=(2, str(tmp)), nprocs=2, join=True, start_method="fork")
    return tmp


def test_two_rank_ddp_matches_one_process(two_ranks, tmp_path):
    torch.manual_seed(0)
    train(TinyVelocity(), flow_loss_fn(), latent_dataset(8), fast_config(steps=DDP_STEPS, checkpoint_every=DDP_STEPS),
          tmp_path / "one", progress=False)
    ddp = load_checkpoint(list_checkpoints(two_ranks / "ddp")[-1])
    one = load_checkpoint(list_checkpoints(tmp_path / "one")[-1])
    torch.manual_seed(0)
    init = TinyVelocity().state_dict()
    assert ddp.step == one.step == DDP_STEPS and set(ddp.model) == set(one.model)
    for name in one.model:
        assert torch.allclose(ddp.model[name], one.model[name], atol=1e-5, rtol=0), name
        assert torch.allclose(ddp.ema[name], one.ema[name], atol=1e-5, rtol=0), name
    assert all(not torch.allclose(one.model[n], init[n]) for n in ("inp.weight", "out.weight"))
    for key, value in one.optimizer["state"]["out.weight"].items():
        assert torch.allclose(torch.as_tensor(ddp.optimizer["state"]["out.weight"][key]), torch.as_tensor(value),
                              atol=1e-5), key


def test_two_rank_fsdp_with_a_resume_matches_one_process(two_ranks, tmp_path):
    torch.manual_seed(0)
    train(TinyVelocity(), flow_loss_fn(), latent_dataset(8),
          fast_config(steps=FSDP_STEPS, checkpoint_every=FSDP_STEPS // 2), tmp_path / "one", progress=False)
    sharded = load_checkpoint(list_checkpoints(two_ranks / "fsdp")[-1])
    one = load_checkpoint(list_checkpoints(tmp_path / "one")[-1])
    assert sharded.step == one.step == FSDP_STEPS and set(sharded.model) == set(one.model)
    for name in one.model:
        # full tensors in the checkpoint, not this rank's shard
        assert sharded.model[name].shape == one.model[name].shape, name
        assert torch.allclose(sharded.model[name], one.model[name], atol=1e-5, rtol=0), name
        assert torch.allclose(sharded.ema[name], one.ema[name], atol=1e-5, rtol=0), name
        for key, value in one.optimizer["state"][name].items():
            assert torch.allclose(torch.as_tensor(sharded.optimizer["state"][name][key]), torch.as_tensor(value),
                                  atol=1e-5), (name, key)


def test_two_rank_context_parallel_scan_matches_single_process(two_ranks):
    errors = json.loads((two_ranks / "cp.json").read_text())
    assert set(errors) == {"forward_out", "forward_grad", "reverse_out", "reverse_grad"}
    assert all(e < 1e-10 for e in errors.values()), errors  # float64 inputs


@pytest.mark.parametrize("reverse", [False, True])
def test_composites_and_prefix_reproduce_the_scan_in_one_process(reverse):
    split = (0, 2, 3, 7)  # uneven ranges, one of a single frame
    q, k, v, beta, gamma = gdn_inputs(split[-1])
    ref = frame_delta_scan(q, k, v, beta, gamma, reverse=reverse, backend="reference")
    parts = [tuple(x[:, a:b] for x in (q, k, v, beta, gamma)) for a, b in zip(split, split[1:])]
    composites = torch.stack([local_composites(*p, reverse=reverse, backend="chunked") for p in parts])
    for rank, (p, (a, b)) in enumerate(zip(parts, zip(split, split[1:]))):
        start = prefix_state(composites, rank, reverse=reverse)
        out = frame_delta_scan(*p, reverse=reverse, initial_state=start, backend="reference")
        assert torch.allclose(out, ref[:, a:b], atol=1e-12)
