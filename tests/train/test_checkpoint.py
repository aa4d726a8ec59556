"""Checkpoint folders: round trip without pickle, and damaged ones give one clear line (exit code 2 in the CLI)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from train_fixtures import TinyVelocity, fast_config, flow_loss_fn, latent_dataset

from camworld.cli import main
from camworld.errors import UserError
from camworld.train.checkpoint import capture_rng, list_checkpoints, load_checkpoint, restore_rng
from camworld.train.loop import train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "run"
    torch.manual_seed(0)
    train(TinyVelocity(), flow_loss_fn(), latent_dataset(4), fast_config(steps=2, checkpoint_every=2), path,
          run_config={"preset": "tiny"}, progress=False)
    return path


@pytest.fixture()
def run_dir(trained_run, tmp_path):
    """A private copy of the trained run, free to damage."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def test_round_trip_keeps_optimizer_state_and_rng(run_dir):
    ck = load_checkpoint(list_checkpoints(run_dir)[-1])
    assert ck.step == 2
    state = ck.optimizer["state"]["out.weight"]
    assert set(state) >= {"exp_avg", "exp_avg_sq", "step"} and state["exp_avg"].abs().sum() > 0
    assert ck.optimizer["param_groups"][0]["betas"] == (0.9, 0.999)
    assert ck.rng["tensors"]["torch_cpu"].dtype == torch.uint8
    before = capture_rng()
    a = torch.rand(3)
    restore_rng(before)
    assert torch.equal(a, torch.rand(3))


def _damage(path, how):
    target = path / "model.safetensors"
    data = target.read_bytes()
    if how == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        target.write_bytes(data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])
    elif how == "state":
        (path / "trainer_state.json").write_text("{not json")
    elif how == "missing":
        (path / "ema.safetensors").unlink()


@pytest.mark.parametrize("how", ["truncate", "flip", "state", "missing"])
def test_damaged_checkpoint_is_a_user_error(run_dir, how):
    ckpt = list_checkpoints(run_dir)[-1]
    _damage(ckpt, how)
    with pytest.raises(UserError, match="unusable"):
        load_checkpoint(ckpt)


def test_unverified_truncation_is_still_a_user_error(run_dir):
    ckpt = list_checkpoints(run_dir)[-1]
    _damage(ckpt, "truncate")
    with pytest.raises(UserError, match="cannot read tensors"):
        load_checkpoint(ckpt, verify=False)


@pytest.mark.parametrize("flag", ["--resume", "--init"])
def test_cli_reports_a_damaged_checkpoint_in_one_line(run_dir, tmp_path, capsys, flag):
    ckpt = list_checkpoints(run_dir)[-1]
    _damage(ckpt, "truncate")
    out = ["--out", str(run_dir), "--resume"] if flag == "--resume" else ["--out", str(tmp_path / "s2"), "--init",
                                                                          str(ckpt), "--stage", "2"]
    code = main(["train", "--data", str(tmp_path / "none"), "--tokenizer", str(tmp_path / "none"), *out])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "model.safetensors is corrupted or truncated" in err and "Traceback" not in err


def test_cli_requires_init_for_later_stages(tmp_path, capsys):
    code = main(["train", "--stage", "3", "--data", "d", "--tokenizer", "t", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "pass --init" in err and err.count("\n") == 1


def test_config_json_is_the_run_config(run_dir):
    ckpt = list_checkpoints(run_dir)[-1]
    assert json.loads((ckpt / "config.json").read_text()) == {"preset": "tiny"}


def test_init_reads_a_checkpoint_raw_or_ema_and_a_weights_folder(tmp_path):
    """`--init` of every trainer: a checkpoint folder gives its raw or EMA weights as asked (it also holds a
    config.json and a model.safetensors, so it must not be mistaken for a weights folder); a weights folder gives
    its one set."""
    from camworld.cli.train_common import read_init
    from camworld.config import to_dict
    from camworld.presets import get_preset
    from camworld.train.checkpoint import Checkpoint, save_checkpoint
    from camworld.weights_dirs import save_weights_dir

    cfg = get_preset("tiny")
    raw, ema = {"w": torch.zeros(3)}, {"w": torch.ones(3)}
    ckpt = save_checkpoint(tmp_path / "ckpt", Checkpoint(step=5, config=to_dict(cfg), model=raw, ema=ema))
    for use_ema, want in ((False, raw), (True, ema)):
        got_cfg, state = read_init(str(ckpt), use_ema)
        assert torch.equal(state["w"], want["w"]) and got_cfg.model == cfg.model
    save_weights_dir(torch.nn.Linear(2, 3), tmp_path / "weights", cfg)
    got_cfg, state = read_init(str(tmp_path / "weights"), True)
    assert set(state) == {"weight", "bias"} and got_cfg.model == cfg.model
    with pytest.raises(UserError, match="does not exist"):
        read_init(str(tmp_path / "missing"), False)
