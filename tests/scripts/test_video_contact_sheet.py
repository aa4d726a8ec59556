"""scripts/video_contact_sheet.py: one row per video, frames picked evenly, bad input exits with code 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from camworld.video import write_mp4

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("video_contact_sheet", REPO / "scripts" / "video_contact_sheet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sheet_layout_and_frame_picks():
    script = _script()
    # frame i is a flat grey of value 20 * i, so each tile says which frame it shows
    frames = np.stack([np.full((8, 16, 3), 20 * i, np.uint8) for i in range(11)])
    image = np.asarray(script.sheet([frames, frames], ["a", "b"], columns=3, scale=2))
    cell_h = 8 * 2 + script.LABEL_HEIGHT
    assert image.shape == (2 * cell_h, 3 * 16 * 2, 3)
    picked = [image[script.LABEL_HEIGHT + 4, col * 32 + 16, 0] for col in range(3)]
    assert picked == [0, 100, 200]  # frames 0, 5 and 10


def test_cli_writes_png_and_rejects_missing_video(tmp_path, capsys):
    script = _script()
    video = tmp_path / "clip" / "video.mp4"
    video.parent.mkdir()
    write_mp4(video, np.random.default_rng(0).integers(0, 255, (9, 16, 32, 3), dtype=np.uint8), fps=16)
    out = tmp_path / "sheet.png"
    assert script.main([str(video), "--frames", "4", "--out", str(out)]) == 0
    assert Image.open(out).size == (4 * 32 * 2, 16 * 2 + script.LABEL_HEIGHT)
    missing = tmp_path / "none.png"
    assert script.main([str(tmp_path / "absent.mp4"), "--out", str(missing)]) == 2
    assert not missing.exists()
    assert "video not found" in capsys.readouterr().err
