"""`camworld generate` end to end with random tiny weights, and its handling of bad input (one line, exit code 2,
no output left behind)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camworld.camera import action_string_to_c2w, relativize
from camworld.cli import main
from camworld.data.make import intrinsics_for_fov
from camworld.video import read_video

ACTION = "w-8,dw-8"
REPO = Path(__file__).resolve().parents[2]


def _run(capsys, *args):
    rc = main(["generate", *map(str, args)])
    return rc, capsys.readouterr()


def test_bidirectional_from_a_world_render_with_refiner(weights_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _ = _run(capsys, "--checkpoint", weights_dir, "--action", ACTION, "--step", 1, "--world-seed", 3,
                 "--output_dir", out)
    assert rc == 0
    video = read_video(out / "video.mp4")
    assert video.shape == (16, 32, 64, 3)  # 17 sampled, the refiner drops frame 0
    np.testing.assert_array_equal(np.load(out / "c2w.npy"), action_string_to_c2w(ACTION)[1:17])
    K = np.load(out / "intrinsics.npy")
    np.testing.assert_allclose(K, np.repeat(intrinsics_for_fov(70.0, 32, 64)[None], 16, axis=0), rtol=1e-6)
    info = json.loads((out / "generation.json").read_text())
    assert info["num_frames_sampled"] == 17 and info["num_frames_written"] == 16 and info["refiner"]
    assert info["mode"] == "bidirectional" and info["world_seed"] == 3 and info["prompt"] == info["world_caption"]
    assert info["image_hw"] == [32, 64] and info["step"] == 1 and info["seed"] == 42
    assert info["cfg_scale"] == 5.0  # the weights' packaged `sampling.cfg_scale` (here the dataclass default)
    assert {"load", "text", "encode", "sample", "refine", "decode", "total"} <= set(info["timings_s"])
    assert sorted(p.name for p in out.iterdir()) == ["c2w.npy", "generation.json", "intrinsics.npy", "video.mp4"]


def test_ar_stream_from_an_image_and_a_camera_file(weights_dir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (90, 200, 3), dtype=np.uint8)).save(tmp_path / "first.png")
    world_c2w = action_string_to_c2w("w-10,l-10")
    world_c2w[:, :3, 3] += (1.0, 0.0, 2.0)  # not starting at the origin: the CLI relativises
    np.save(tmp_path / "c2w.npy", world_c2w)
    np.save(tmp_path / "K.npy", np.array([90.0, 90.0, 100.0, 45.0], dtype=np.float32))
    (tmp_path / "prompt.txt").write_text("a plain grey room\n")
    out = tmp_path / "out"
    rc, _ = _run(capsys, "--checkpoint", weights_dir, "--image", tmp_path / "first.png", "--camera",
                 tmp_path / "c2w.npy", "--intrinsics", tmp_path / "K.npy", "--prompt", tmp_path / "prompt.txt",
                 "--mode", "ar", "--stream", "--no_refiner", "--num_frames", 18, "--step", 2, "--threads", 1,
                 "--cfg_scale", 1,
                 "--output_dir", out)
    assert rc == 0
    assert read_video(out / "video.mp4").shape[0] == 17  # 18 snapped to 4k+1
    np.testing.assert_allclose(np.load(out / "c2w.npy"), relativize(world_c2w)[:17], atol=1e-5)
    info = json.loads((out / "generation.json").read_text())
    assert info["stream"] and not info["refiner"] and info["prompt"] == "a plain grey room"
    assert info["cfg_scale"] == 1.0
    assert info["source_hw"] == [90, 200] and not (out / "video.streaming.mp4").exists()


def test_ar_with_an_explicit_schedule_records_it(weights_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _ = _run(capsys, "--checkpoint", weights_dir, "--action", ACTION, "--mode", "ar", "--no_refiner",
                 "--num_frames", 9, "--sigmas", "1,0.5,0", "--interval_k", 1, "--cfg_scale", 1, "--threads", 1,
                 "--output_dir", out)
    assert rc == 0
    info = json.loads((out / "generation.json").read_text())
    assert info["sigmas"] == [1.0, 0.5, 0.0] and info["interval_k"] == 1.0
    assert info["step"] is None  # the σ list replaces the step count
    assert "2 steps at σ" in info["offload_notes"]["sigmas"]
    assert info["segment_frames"] == 0 and info["segments"] == []  # random weights package no segments


def test_segments_are_recorded(weights_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _ = _run(capsys, "--checkpoint", weights_dir, "--action", "w-16", "--mode", "ar", "--no_refiner",
                 "--step", 1, "--segment_frames", 9, "--threads", 1, "--output_dir", out)
    assert rc == 0
    info = json.loads((out / "generation.json").read_text())
    assert info["segment_frames"] == 9 and info["segments"] == [[0, 9], [8, 17]]
    assert len(read_video(out / "video.mp4")) == 17 and len(np.load(out / "c2w.npy")) == 17


def _corrupt_safetensors(weights: Path) -> None:
    file = weights / "dit" / "model.safetensors"
    file.write_bytes(file.read_bytes()[:200])


def _missing_dit(weights: Path) -> None:
    (weights / "dit" / "model.safetensors").unlink()


def _bad_inputs(tmp: Path):
    """(extra args, file makers) per bad input; every case also passes --action unless it names --camera."""
    np.save(tmp / "shape.npy", np.zeros((5, 3, 3), dtype=np.float32))
    nan = action_string_to_c2w("w-16")
    nan[4, 0, 3] = np.nan
    np.save(tmp / "nan.npy", nan)
    skew = action_string_to_c2w("w-16")
    skew[4, :3, :3] *= 1.5
    np.save(tmp / "skew.npy", skew)
    np.save(tmp / "K_bad.npy", np.zeros((2, 5), dtype=np.float32))
    (tmp / "broken.png").write_bytes(b"not an image")
    np.save(tmp / "c2w17.npy", action_string_to_c2w("w-16"))
    late = np.repeat(np.array([[[60.0, 0, 40], [0, 60.0, 24], [0, 0, 1]]], dtype=np.float32), 17, axis=0)
    late[12, 0, 0] = late[12, 1, 1] = 1.0  # a ~180° field of view in the second segment
    np.save(tmp / "K_late.npy", late)
    return {
        "missing image": ["--image", tmp / "nope.png"],
        "corrupt image": ["--image", tmp / "broken.png"],
        "bad c2w shape": ["--camera", tmp / "shape.npy"],
        "NaN poses": ["--camera", tmp / "nan.npy"],
        "non-rigid poses": ["--camera", tmp / "skew.npy"],
        "bad intrinsics shape": ["--intrinsics", tmp / "K_bad.npy"],
        "FOV out of range": ["--fov", 10],
        "unknown mode": ["--mode", "sideways"],
        "stream without ar": ["--stream"],
        "zero threads": ["--threads", 0],
        "beyond the trajectory": ["--num_frames", 40],
        "missing checkpoint file": ["--checkpoint", "MISSING"],
        "corrupt safetensors": ["--checkpoint", "CORRUPT"],
        "missing checkpoint folder": ["--checkpoint", tmp / "no_weights"],
        "unsorted sigmas": ["--sigmas", "1,0.5,0.7,0"],
        "interval_k without ar": ["--interval_k", 1],
        "segment length not stride·k + 1": ["--segment_frames", 10],
        "a later segment's FOV out of range": ["--camera", tmp / "c2w17.npy", "--intrinsics", tmp / "K_late.npy",
                                               "--segment_frames", 9],
    }


@pytest.fixture(scope="module")
def broken_weights(weights_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    made = {}
    for name, breaker in (("MISSING", _missing_dit), ("CORRUPT", _corrupt_safetensors)):
        shutil.copytree(weights_dir, root / name)
        breaker(root / name)
        made[name] = root / name
    return made


BAD_CASES = [
    "missing image", "corrupt image", "bad c2w shape", "NaN poses", "non-rigid poses", "bad intrinsics shape",
    "FOV out of range", "unknown mode", "stream without ar", "zero threads", "beyond the trajectory",
    "missing checkpoint file", "corrupt safetensors", "missing checkpoint folder", "unsorted sigmas",
    "interval_k without ar", "segment length not stride·k + 1", "a later segment's FOV out of range",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_and_leaves_nothing(case, weights_dir, broken_weights, tmp_path, capsys):
    extra = [broken_weights.get(str(a), a) for a in _bad_inputs(tmp_path)[case]]
    args = ["--checkpoint", weights_dir, *([] if "--camera" in extra else ["--action", "w-16"]), *extra]
    out = tmp_path / "out"
    rc, captured = _run(capsys, *args, "--step", 1, "--output_dir", out)
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in captured.err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("flag", [["--warp_speed", "9"], ["--sigmas", "1,half,0"]])
def test_unknown_flag_or_value_is_a_usage_error(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--action", "w-16", "--output_dir", "x", *flag])
    assert exit_info.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_subprocess_bad_input_has_no_traceback(broken_weights, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "camworld", "generate", "--checkpoint", str(broken_weights["CORRUPT"]), "--action",
         "w-16", "--output_dir", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "model.safetensors" in proc.stderr and not out.exists()
