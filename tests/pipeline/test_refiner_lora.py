"""The LoRA refiner in a weights folder: saved + loaded equals the in-memory merge, packaging from training
checkpoints, bad folders as one-line errors, `WorldModel.refine` == `generate(refiner=True)`, and the A/B of the
camera-following measurement (same seeds, frames aligned to pose 1, first-vs-last window drop)."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from camworld.camera import action_string_to_c2w
from camworld.config import to_dict
from camworld.errors import UserError
from camworld.eval.camera_following import (
    CEILING,
    REFINED,
    FollowingSettings,
    markdown_table,
    run_following,
    write_report,
)
from camworld.flow.refiner_objective import SINK_SPAN
from camworld.lora_dirs import save_lora_dir, weights_fingerprint
from camworld.modules.lora import lora_state_dict, merge_lora, merge_lora_state
from camworld.pipeline import WorldModel
from camworld.train.checkpoint import Checkpoint, save_checkpoint
from camworld.train.refiner_train import build_refiner, refiner_run_config
from camworld.weights_dirs import load_dit_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trained_refiner(dit_dir):
    """(refiner run config, a refiner with nudged adapters, the base DiT state it was built on)."""
    base, run_cfg = load_dit_dir(dit_dir)
    cfg = refiner_run_config(run_cfg, ["refiner.lora_rank=4", "refiner.lora_alpha=2.0"])
    torch.manual_seed(0)
    model = build_refiner(cfg, base.state_dict())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.05)
    return cfg, model, base.state_dict()


@pytest.fixture(scope="module")
def lora_weights(weights_dir, tmp_path_factory):
    """The shared tiny weights with refiner/ replaced by a LoRA refiner; also the in-memory refiner."""
    path = tmp_path_factory.mktemp("lora_weights") / "tiny"
    for part in ("vae", "dit"):
        shutil.copytree(weights_dir / part, path / part)
    cfg, model, base = _trained_refiner(path / "dit")
    save_lora_dir(path / "refiner", lora_state_dict(model), cfg, weights_fingerprint(base))
    return path, model


def _bf16_merged(model) -> dict[str, torch.Tensor]:
    """The in-memory merge with the adapters rounded to bf16 (as stored)."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in rounded.named_parameters():
            if "lora" in name:
                p.copy_(p.to(torch.bfloat16).float())
    return merge_lora(rounded).state_dict()


def test_saved_refiner_loads_as_the_merged_model(lora_weights):
    path, model = lora_weights
    assert sorted(p.name for p in (path / "refiner").iterdir()) == ["config.json", "lora.safetensors"]
    world = WorldModel(path)
    refiner = world.refiner()
    assert (refiner.cfg.chunk_first, refiner.cfg.chunk_size) == (1, SINK_SPAN)
    assert refiner.cfg.kv_window_chunks == model.cfg.kv_window_chunks
    loaded, expected = refiner.state_dict(), _bf16_merged(model)
    assert set(loaded) == set(expected)
    for k, v in expected.items():
        torch.testing.assert_close(loaded[k], v, rtol=0, atol=0, msg=k)
    assert not torch.equal(loaded["blocks.0.attn.qkv.weight"], world.dit.state_dict()["blocks.0.attn.qkv.weight"])


def test_refine_equals_generate_with_refiner(lora_weights):
    world = WorldModel(lora_weights[0])
    c2w = action_string_to_c2w("dw-8")
    K = np.repeat(np.array([[40.0, 0, 31.5], [0, 40.0, 15.5], [0, 0, 1]])[None], len(c2w), axis=0)
    image = np.random.default_rng(0).integers(0, 256, (*world.image_hw, 3), dtype=np.uint8)
    kwargs = {"steps": 2, "progress": False, "refiner_seed": 7}
    stage1 = world.generate(image, "a room", c2w, K, refiner=False, **kwargs)
    refined = world.refine(stage1, "a room", c2w, K, refiner_seed=7, progress=False)
    direct = world.generate(image, "a room", c2w, K, refiner=True, **kwargs)
    assert direct.refined and refined.refined and len(refined.frames) == len(stage1.frames) - 1
    assert np.array_equal(refined.frames, direct.frames) and np.array_equal(refined.c2w, stage1.c2w[1:])
    torch.testing.assert_close(refined.latents[:, 0], stage1.latents[:, 0], rtol=0, atol=0)  # the sink
    with pytest.raises(UserError, match="already refined"):
        world.refine(refined, "a room", c2w, K)


def _package_script():
    spec = importlib.util.spec_from_file_location("package_weights", REPO / "scripts" / "package_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_from_checkpoints_round_trip_and_bad_base(weights_dir, tmp_path, capsys):
    cfg, model, base = _trained_refiner(weights_dir / "dit")
    _, dit_cfg = load_dit_dir(weights_dir / "dit")
    other = {k: v + 0.01 if v.is_floating_point() else v for k, v in base.items()}
    for name, state, config in (("dit", base, dit_cfg), ("other", other, dit_cfg),
                                ("refiner", model.state_dict(), cfg)):
        save_checkpoint(tmp_path / name, Checkpoint(1, to_dict(config), state, state))
    script, out = _package_script(), tmp_path / "out"
    common = ["--vae", str(weights_dir / "vae"), "--out", str(out)]
    assert script.main([*common, "--dit", str(tmp_path / "dit"), "--refiner", str(tmp_path / "refiner")]) == 0
    capsys.readouterr()
    world = WorldModel(out)
    bf16_base = {k: v.to(torch.bfloat16).float() for k, v in base.items()}
    lora = {k: v.to(torch.bfloat16).float() for k, v in lora_state_dict(model).items()}
    expected = merge_lora_state(bf16_base, lora, cfg.refiner.lora_alpha / cfg.refiner.lora_rank)
    loaded = world.refiner().state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(loaded[k], v, rtol=0, atol=0, msg=k)
    sizes = {p.parent.name: p.stat().st_size for p in out.rglob("*.safetensors")}
    assert sizes["refiner"] < sizes["dit"] / 4
    assert json.loads((out / "sources.json").read_text())["refiner"] == str(tmp_path / "refiner")

    assert script.main([*common, "--dit", str(tmp_path / "other"), "--refiner", str(tmp_path / "refiner")]) == 2
    err = capsys.readouterr().err
    assert "other base weights" in err and err.count("\n") == 1
    assert script.main([*common, "--dit", str(tmp_path / "dit"), "--refiner", str(tmp_path / "dit")]) == 2
    assert "no LoRA tensors" in capsys.readouterr().err
    assert script.main([*common, "--dit", str(tmp_path / "other")]) == 0  # no refiner: an old refiner/ goes
    assert not (out / "refiner").exists() and not WorldModel(out).has_refiner
    assert WorldModel(out).default_cfg_scale == 5.0  # the run config's (SANA-WM's) unless packaging says otherwise
    assert script.main([*common, "--dit", str(tmp_path / "dit"), "--cfg-scale", "1"]) == 0
    assert WorldModel(out).default_cfg_scale == 1.0 and json.loads((out / "sources.json").read_text())["cfg_scale"] == 1
    assert script.main([*common, "--dit", str(tmp_path / "dit"), "--cfg-scale", "0"]) == 2
    assert "--cfg-scale must be > 0" in capsys.readouterr().err
    assert WorldModel(out).cfg.sampling.ar_sigmas is None
    schedule = ["--ar-sigmas", "1,0.9,0.5,0", "--ar-interval-k", "1"]
    assert script.main([*common, "--dit", str(tmp_path / "dit"), *schedule]) == 0
    sampling = WorldModel(out).cfg.sampling
    assert list(sampling.ar_sigmas) == [1.0, 0.9, 0.5, 0.0] and sampling.ar_interval_k == 1.0
    assert script.main([*common, "--dit", str(tmp_path / "dit"), "--ar-sigmas", "1,0.5,0.9,0"]) == 2
    assert "strictly decreasing" in capsys.readouterr().err
    assert WorldModel(out).default_segment_frames("ar") == 0  # one pass, as SANA-WM, unless packaging says otherwise
    assert script.main([*common, "--dit", str(tmp_path / "dit"), "--ar-segment-frames", "81"]) == 0
    assert WorldModel(out).default_segment_frames("ar") == 81
    assert WorldModel(out).default_segment_frames("bidirectional") == 0
    assert json.loads((out / "sources.json").read_text())["ar_segment_frames"] == 81
    assert script.main([*common, "--dit", str(tmp_path / "dit"), "--ar-segment-frames", "80"]) == 2
    assert "segment_frames must be 0" in capsys.readouterr().err


def test_refiner_runs_by_default_only_when_its_config_says_so(lora_weights, tmp_path):
    """generate(refiner=None) follows refiner/config.json `refiner.on_by_default` (set at packaging from the A/B)."""
    on = WorldModel(lora_weights[0])
    off_path = _copy(lora_weights[0], tmp_path / "off")
    cfg = json.loads((off_path / "refiner" / "config.json").read_text())
    cfg["refiner"]["on_by_default"] = False
    (off_path / "refiner" / "config.json").write_text(json.dumps(cfg))
    off = WorldModel(off_path)
    assert on.refiner_by_default and not off.refiner_by_default
    c2w = action_string_to_c2w("w-4")
    K = np.repeat(np.array([[40.0, 0, 31.5], [0, 40.0, 15.5], [0, 0, 1]])[None], len(c2w), axis=0)
    image = np.random.default_rng(1).integers(0, 256, (*on.image_hw, 3), dtype=np.uint8)
    kwargs = {"steps": 1, "progress": False}
    assert not off.generate(image, "", c2w, K, **kwargs).refined
    assert off.generate(image, "", c2w, K, refiner=True, **kwargs).refined
    assert on.generate(image, "", c2w, K, **kwargs).refined


def _copy(path: Path, dst: Path) -> Path:
    shutil.copytree(path, dst)
    return dst


def test_bad_refiner_folders_are_one_line_errors(lora_weights, tmp_path):
    good = lora_weights[0]
    corrupt = _copy(good, tmp_path / "corrupt")
    data = (corrupt / "refiner" / "lora.safetensors").read_bytes()
    (corrupt / "refiner" / "lora.safetensors").write_bytes(data[: len(data) // 2])
    empty = _copy(good, tmp_path / "empty")
    (empty / "refiner" / "lora.safetensors").unlink()
    other_base = _copy(good, tmp_path / "other_base")
    dit, cfg = load_dit_dir(other_base / "dit")
    with torch.no_grad():
        dit.final_linear.bias.add_(0.5)
    from camworld.weights_dirs import save_weights_dir

    shutil.rmtree(other_base / "dit")
    save_weights_dir(dit, other_base / "dit", cfg)
    for folder, problem in ((corrupt, "corrupt"), (empty, "no model.safetensors"), (other_base, "other base")):
        world = WorldModel(folder)
        with pytest.raises(UserError, match=problem) as info:
            world.refiner()
        assert "\n" not in str(info.value)


def test_refiner_ab_scores_both_on_the_same_seeds(lora_weights, tmp_path):
    world = WorldModel(lora_weights[0])
    settings = FollowingSettings(seeds=[10000], num_frames=9, action="w-8", steps=2, refiner_ab=True)
    result = run_following(world, settings, progress=False)
    assert result.systems == ["model", REFINED, "repeat_first_frame", "no_camera", CEILING]
    row = result.per_seed[0]
    assert set(result.windows) == {"first fifth", "last fifth"} and set(row[REFINED]) == set(result.windows)
    frames = result.examples[10000]
    assert frames["offsets"] == {"model": 0, "repeat_first_frame": 0, "no_camera": 0, "truth": 0, CEILING: 0,
                                 REFINED: 1}
    assert len(frames[REFINED]) == len(frames["model"]) - 1 == 8
    for system in result.systems:
        drop = result.drop[system]
        first, last = (row[system][w] for w in ("first fifth", "last fifth"))
        assert drop["psnr_mean"] == pytest.approx(first["psnr"] - last["psnr"])
        assert drop["ssim_mean"] == pytest.approx(first["ssim"] - last["ssim"])
    assert not result.settings["refiner_used"]  # "model" is stage 1 alone in an A/B run
    assert f"| {REFINED} |" in markdown_table(result)
    assert {p.name for p in write_report(result, tmp_path)} == {"results.json", "frames.png", "scores.png"}
    # with the refiner inside "model" every output starts at pose 1; the tokenizer still sees the whole true video
    refined = run_following(world, replace(settings, refiner_ab=False, refiner=True), progress=False)
    frames = refined.examples[10000]
    assert set(frames["offsets"].values()) == {1}
    assert len(frames[CEILING]) == len(frames["truth"]) == len(frames["model"]) == 8
    no_refiner = WorldModel(_copy(lora_weights[0], tmp_path / "plain"))
    shutil.rmtree(no_refiner.path / "refiner")
    with pytest.raises(UserError, match="refiner"):
        run_following(no_refiner, settings, progress=False)
