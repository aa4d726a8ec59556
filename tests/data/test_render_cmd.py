"""`camworld render`: the ground-truth video of an action string, with its poses and intrinsics beside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from camworld.camera import action_string_to_c2w
from camworld.cli import main
from camworld.video import read_video, video_fps
from camworld.world import World

REPO = Path(__file__).resolve().parents[2]
DEMO = "w-100,dw-60,w-100,aw-60"


def test_render_demo_action(tmp_path):
    out = tmp_path / "demo.mp4"
    assert main(["render", "--seed", "0", "--action", DEMO, "--out", str(out), "--size", "32x48"]) == 0
    frames = read_video(out)
    assert frames.shape == (321, 32, 48, 3)
    assert video_fps(out) == 16
    c2w = np.load(tmp_path / "demo.c2w.npy")
    assert np.array_equal(c2w, action_string_to_c2w(DEMO))
    K = np.load(tmp_path / "demo.intrinsics.npy")
    assert K.shape == (321, 3, 3) and K.dtype == np.float32
    assert np.isclose(2 * np.degrees(np.arctan(48 / (2 * K[0, 0, 0]))), 70.0, atol=1e-3)
    # the video shows World(0) from those poses
    truth, _ = World(0).render(c2w[[0, 200]], K[[0, 200]], 32, 48)
    assert np.abs(frames[[0, 200]].astype(int) - truth).mean() < 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.c2w.npy", "demo.intrinsics.npy", "demo.mp4"]


def test_render_camera_file_and_frame_limit(tmp_path, capsys):
    c2w = action_string_to_c2w("w-6,d-4").astype(np.float64)
    c2w[:, 0, 3] += 5.0  # not relative to frame 0: render relativises it
    np.save(tmp_path / "cam.npy", c2w)
    np.save(tmp_path / "K.npy", np.array([30.0, 30.0, 23.5, 15.5]))
    out = tmp_path / "cam.mp4"
    args = ["render", "--seed", "3", "--camera", str(tmp_path / "cam.npy"), "--intrinsics", str(tmp_path / "K.npy"),
            "--size", "32x48", "--out", str(out)]
    assert main(args + ["--num_frames", "8"]) == 0
    assert len(read_video(out)) == 8
    saved = np.load(tmp_path / "cam.c2w.npy")
    assert np.allclose(saved, action_string_to_c2w("w-6,d-4")[:8], atol=1e-5)
    assert np.allclose(np.load(tmp_path / "cam.intrinsics.npy")[:, 0, 0], 30.0)
    capsys.readouterr()
    assert main(args + ["--num_frames", "12", "--out", str(tmp_path / "long.mp4")]) == 2
    err = capsys.readouterr().err
    assert "outside 1..11" in err and err.count("\n") == 1
    assert main(["render", "--action", "w-4", "--fov", "150", "--size", "32x48", "--out", str(tmp_path / "f.mp4")]) == 2
    assert "horizontal field of view 150.0°" in capsys.readouterr().err
    assert not (tmp_path / "long.mp4").exists() and not (tmp_path / "f.mp4").exists()


def test_bad_action_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "camworld", "render", "--action", "w-100,q-3", "--out", str(tmp_path / "x.mp4")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "q" in lines[0] and lines[0].startswith("camworld render: error:")
    assert not (tmp_path / "x.mp4").exists()
