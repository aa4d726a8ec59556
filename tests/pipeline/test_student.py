"""The distilled student in a weights folder: packaged from a `camworld train --distill` checkpoint (teacher checked),
loaded as the merged LoRA, sampled by `generate(student=True)` with its own σ list (steps and shift unused), chosen
by default only when its config says so, and bad requests as one-line errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from camworld.camera import action_string_to_c2w
from camworld.cli import main
from camworld.config import to_dict
from camworld.errors import UserError
from camworld.modules.lora import merge_lora_state
from camworld.pipeline import WorldModel
from camworld.train.checkpoint import Checkpoint, save_checkpoint
from camworld.train.distill import DistillModels, distill_run_config, student_lora
from camworld.weights_dirs import load_dit_dir

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("package_student", REPO / "scripts" / "package_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checkpoint(dit_dir: Path, out: Path, nudge: float = 0.0, spread: float = 0.05) -> tuple[dict, object]:
    """A distillation checkpoint whose teacher is dit_dir's weights (+ nudge), with student adapters whose B
    matrices are drawn with std `spread` (0: the adapters are zero, so the student is its teacher)."""
    base, run_cfg = load_dit_dir(dit_dir)
    cfg = distill_run_config(run_cfg, ["distill.lora_rank=4", "distill.lora_alpha=2.0"])
    state = {k: v + nudge if v.is_floating_point() else v for k, v in base.state_dict().items()}
    torch.manual_seed(0)
    models = DistillModels(cfg, state)
    with torch.no_grad():
        for name, p in models.generator.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, spread) if spread else p.zero_()
    save_checkpoint(out, Checkpoint(1, to_dict(cfg), models.state_dict(), models.state_dict()))
    return student_lora(models.state_dict()), cfg


@pytest.fixture(scope="module")
def student_weights(weights_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    path = root / "tiny"
    for part in ("vae", "dit"):
        shutil.copytree(weights_dir / part, path / part)
    lora, cfg = _checkpoint(path / "dit", root / "ckpt")
    assert _script().main(["--student", str(root / "ckpt"), "--weights", str(path)]) == 0
    return path, lora, cfg, root


def _inputs(world):
    c2w = action_string_to_c2w("w-8,dw-8")
    K = np.repeat(np.array([[40.0, 0, 31.5], [0, 40.0, 15.5], [0, 0, 1]])[None], len(c2w), axis=0)
    image = np.random.default_rng(0).integers(0, 256, (*world.image_hw, 3), dtype=np.uint8)
    return image, c2w, K


def test_packaged_student_loads_as_the_merged_adapter(student_weights):
    path, lora, cfg, _ = student_weights
    world = WorldModel(path)
    assert world.has_student and not world.student_by_default
    model, student_cfg = world.student()
    assert student_cfg.distill.sigmas == cfg.distill.sigmas
    base = {k: v.float() for k, v in world.dit.state_dict().items()}
    rounded = {k: v.to(torch.bfloat16).float() for k, v in lora.items()}
    expected = merge_lora_state(base, rounded, cfg.distill.lora_alpha / cfg.distill.lora_rank)
    loaded = model.state_dict()
    assert set(loaded) == set(expected)
    for k, v in expected.items():
        torch.testing.assert_close(loaded[k], v, rtol=0, atol=0, msg=k)
    sources = json.loads((path / "sources.json").read_text())
    assert sources["student"] == str(student_weights[3] / "ckpt") and not sources["student_on_by_default"]


def test_student_sampling_ignores_steps_and_shift_and_differs_from_the_dit(student_weights):
    world = WorldModel(student_weights[0])
    image, c2w, K = _inputs(world)
    kwargs = {"num_frames": 13, "mode": "ar", "progress": False, "refiner": False}
    a = world.generate(image, "a room", c2w, K, student=True, steps=1, flow_shift=1.0, **kwargs)
    b = world.generate(image, "a room", c2w, K, student=True, steps=7, flow_shift=9.0, **kwargs)
    dit = world.generate(image, "a room", c2w, K, student=False, steps=4, cfg_scale=1.0, **kwargs)
    assert np.array_equal(a.frames, b.frames) and len(a.frames) == 13
    assert "4 steps per chunk" in a.notes["student"] and "student" not in dit.notes
    assert not torch.equal(a.latents, dit.latents)
    assert torch.equal(a.latents[:, :1], dit.latents[:, :1])  # frame 0 is the encoded image in both
    assert "student" not in world.generate(image, "a room", c2w, K, steps=1, **kwargs).notes  # off by default


def test_zero_student_is_the_dit_on_the_students_schedule(weights_dir, tmp_path):
    """The student's sampler is the DiT's chunk-causal sampler at the student's σ list with interval_k = 1, so
    `generate(sigmas=..., interval_k=1)` runs the undistilled DiT exactly as the student runs."""
    path = tmp_path / "tiny"
    for part in ("vae", "dit"):
        shutil.copytree(weights_dir / part, path / part)
    _, cfg = _checkpoint(path / "dit", tmp_path / "ckpt", spread=0.0)
    assert _script().main(["--student", str(tmp_path / "ckpt"), "--weights", str(path)]) == 0
    world = WorldModel(path)
    image, _, K = _inputs(world)
    c2w = action_string_to_c2w("w-12,dw-12")
    kwargs = {"num_frames": 25, "mode": "ar", "progress": False, "refiner": False}  # 7 latents: chunks 4 + 3
    K = np.repeat(K[:1], len(c2w), axis=0)
    student = world.generate(image, "a room", c2w, K, student=True, **kwargs)
    dit = world.generate(image, "a room", c2w, K, student=False, cfg_scale=1.0, sigmas=cfg.distill.sigmas,
                         interval_k=1.0, **kwargs)
    assert torch.equal(student.latents, dit.latents)
    default_stagger = world.generate(image, "a room", c2w, K, student=False, cfg_scale=1.0,
                                     sigmas=cfg.distill.sigmas, **kwargs)
    assert not torch.equal(student.latents, default_stagger.latents)


def test_student_on_by_default_only_in_ar_mode(student_weights, tmp_path):
    path = tmp_path / "on"
    shutil.copytree(student_weights[0], path)
    cfg = json.loads((path / "student" / "config.json").read_text())
    cfg["distill"]["on_by_default"] = True
    (path / "student" / "config.json").write_text(json.dumps(cfg))
    world = WorldModel(path)
    image, c2w, K = _inputs(world)
    kwargs = {"num_frames": 9, "progress": False, "refiner": False, "steps": 1}
    assert "student" in world.generate(image, "", c2w, K, mode="ar", **kwargs).notes
    assert "student" not in world.generate(image, "", c2w, K, mode="ar", student=False, **kwargs).notes
    assert "student" not in world.generate(image, "", c2w, K, mode="bidirectional", **kwargs).notes


def test_bad_student_requests_are_one_line_errors(student_weights, weights_dir, tmp_path, capsys):
    path, _, _, root = student_weights
    world = WorldModel(path)
    image, c2w, K = _inputs(world)
    with pytest.raises(UserError, match="mode 'ar'"):
        world.generate(image, "", c2w, K, student=True, mode="bidirectional", progress=False)
    with pytest.raises(UserError, match="cfg_scale must be 1"):
        world.generate(image, "", c2w, K, student=True, mode="ar", cfg_scale=3.0, progress=False)
    with pytest.raises(UserError, match="its own σ list"):
        world.generate(image, "", c2w, K, student=True, mode="ar", interval_k=0.5, progress=False)
    with pytest.raises(UserError, match="no student"):
        WorldModel(weights_dir).generate(image, "", c2w, K, student=True, mode="ar", progress=False)
    _checkpoint(path / "dit", tmp_path / "other", nudge=0.01)
    capsys.readouterr()
    assert _script().main(["--student", str(tmp_path / "other"), "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert "another teacher" in err and err.count("\n") == 1
    rc = main(["generate", "--checkpoint", str(path), "--action", "w-8", "--student", "--output_dir",
               str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "--mode ar" in err and err.count("\n") == 1 and not (tmp_path / "out").exists()
    rc = main(["generate", "--checkpoint", str(weights_dir), "--action", "w-8", "--mode", "ar", "--student",
               "--output_dir", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert rc == 2 and "no student" in err and not (tmp_path / "out2").exists()
