"""The generic training loop: it learns, resumes exactly, and writes logs, plots and checkpoints."""

import json

import pytest
import torch
from train_fixtures import TinyVelocity, fast_config, flow_loss_fn, latent_dataset

from camworld.errors import UserError
from camworld.train.checkpoint import list_checkpoints, load_checkpoint
from camworld.train.dist import DistInfo
from camworld.train.loop import BatchPlan, latest_checkpoint, train


def _model(seed=0):
    torch.manual_seed(seed)
    return TinyVelocity()


def _eval_loss(model, data):
    batch = {k: torch.stack([d[k] for d in data]) for k in data[0]}
    batch["draw"] = torch.arange(10**6, 10**6 + len(data))  # draws no training step uses
    with torch.no_grad():
        return float(flow_loss_fn()(model, batch)[0])


def test_training_lowers_the_loss_and_writes_outputs(tmp_path):
    cfg = fast_config(steps=60, checkpoint_every=30, lr=1e-2, batch_size=8)
    data = latent_dataset(16)
    model = _model()
    before = _eval_loss(model, data * 4)
    train(model, flow_loss_fn(), data, cfg, tmp_path, run_config={"a": 1}, progress=False)
    assert _eval_loss(model, data * 4) < 0.7 * before
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000030", "step_0000060"]
    assert (tmp_path / "loss.png").stat().st_size > 1000
    lines = (tmp_path / "loss.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, 61))
    ck = load_checkpoint(list_checkpoints(tmp_path)[-1])
    assert ck.step == 60 and ck.config == {"a": 1} and set(ck.model) == set(ck.ema)
    assert not torch.equal(ck.model["out.weight"], ck.ema["out.weight"])


class _Killed(Exception):
    pass


def _kill_at(step):
    def hook(record):
        if record["step"] == step:
            raise _Killed
    return hook


def test_kill_and_resume_gives_identical_losses(tmp_path):
    data = latent_dataset(6)  # 6 clips, global batch 4: epochs straddle steps
    cfg = fast_config(steps=7)
    full = train(_model(), flow_loss_fn(), data, cfg, tmp_path / "a", progress=False)
    with pytest.raises(_Killed):
        train(_model(), flow_loss_fn(), data, cfg, tmp_path / "b", progress=False, on_step=_kill_at(5))
    # a fresh model object, as after a process restart; weights come from the step-3 checkpoint
    resumed = train(_model(seed=1), flow_loss_fn(), data, cfg, tmp_path / "b",
                    resume_from=latest_checkpoint(tmp_path / "b"), progress=False)
    assert [r["step"] for r in resumed] == [4, 5, 6, 7]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full[3:]]
    assert [r["grad_norm"] for r in resumed] == [r["grad_norm"] for r in full[3:]]
    logged = [json.loads(x) for x in (tmp_path / "b" / "loss.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in logged] == [r["loss"] for r in full]
    a = load_checkpoint(list_checkpoints(tmp_path / "a")[-1])
    b = load_checkpoint(list_checkpoints(tmp_path / "b")[-1])
    for name in a.model:
        assert torch.equal(a.model[name], b.model[name]) and torch.equal(a.ema[name], b.ema[name])


def test_a_run_killed_before_its_first_checkpoint_restarts_with_a_clean_log(tmp_path):
    data = latent_dataset(6)
    cfg = fast_config(steps=7)
    with pytest.raises(_Killed):
        train(_model(), flow_loss_fn(), data, cfg, tmp_path, progress=False, on_step=_kill_at(2))
    assert list_checkpoints(tmp_path) == []
    train(_model(), flow_loss_fn(), data, cfg, tmp_path, resume_from=latest_checkpoint(tmp_path), progress=False)
    logged = [json.loads(x)["step"] for x in (tmp_path / "loss.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 8))


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path):
    cfg = fast_config(steps=3)
    train(_model(), flow_loss_fn(), latent_dataset(4), cfg, tmp_path, progress=False)
    with pytest.raises(UserError, match="--resume"):
        train(_model(), flow_loss_fn(), latent_dataset(4), cfg, tmp_path, progress=False)


def test_batch_plan_splits_the_global_batch_over_ranks():
    one = BatchPlan(10, 4, 0, DistInfo(), 0, 5)
    parts = [BatchPlan(10, 4, 0, DistInfo(rank=r, world_size=2), 0, 5) for r in range(2)]
    for s in range(5):
        assert one.step(s) == parts[0].step(s) + parts[1].step(s)
    draws = [d for s in range(5) for _, d in one.step(s)]
    assert draws == list(range(20))
    epoch0 = sorted(i for s in range(2) for i, d in one.step(s) if d < 10) + sorted(
        i for i, d in one.step(2) if d < 10)
    assert sorted(epoch0) == list(range(10))
    with pytest.raises(UserError):
        BatchPlan(10, 3, 0, DistInfo(rank=0, world_size=2), 0, 1)


@pytest.mark.parametrize("native, bf16, noted", [(False, True, True), (True, True, False), (False, False, False)])
def test_bf16_on_a_cpu_without_bf16_instructions_prints_a_note(tmp_path, monkeypatch, capsys, native, bf16, noted):
    monkeypatch.setattr("camworld.train.loop.cpu_bf16_is_native", lambda: native)
    cfg = fast_config(steps=1, checkpoint_every=1, bf16=bf16)
    train(_model(), flow_loss_fn(), latent_dataset(4), cfg, tmp_path, progress=False)
    assert ("--set train.bf16=false" in capsys.readouterr().err) == noted
