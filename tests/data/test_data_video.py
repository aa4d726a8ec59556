"""MP4 writing/reading (atomic and streaming), image folders, contact sheets and PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from camworld.errors import UserError
from camworld.video import Mp4Writer, contact_sheet, read_frames, read_video, save_png, video_fps, write_mp4


def smooth_frames(num: int, height: int = 36, width: int = 64) -> np.ndarray:
    """A gradient with a square moving across it: easy to compress, so the round trip error is small."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.zeros((num, height, width, 3), np.uint8)
    for t in range(num):
        frames[t, ..., 0] = (x * 255 // width).astype(np.uint8)
        frames[t, ..., 1] = (y * 255 // height).astype(np.uint8)
        frames[t, ..., 2] = 128
        frames[t, 8:20, 2 * t:2 * t + 12] = 240
    return frames


def test_write_read_round_trip(tmp_path):
    frames = smooth_frames(20)
    path = tmp_path / "clip.mp4"
    write_mp4(path, frames)
    back = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 6
    assert video_fps(path) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_atomic_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError), Mp4Writer(path) as writer:
        writer.write(smooth_frames(5))
        assert not path.exists()
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_streaming_writer_is_readable_while_open(tmp_path):
    frames = smooth_frames(24)
    path = tmp_path / "live.mp4"
    with Mp4Writer(path, streaming=True) as writer:
        writer.write(frames[:12])
        # Fragmented MP4, one fragment per frame: everything but the newest frame is already decodable.
        midway = read_video(path)
        assert 11 <= len(midway) <= 12
        assert np.abs(midway.astype(int) - frames[: len(midway)]).mean() < 6
        writer.write(frames[12:])
    assert len(read_video(path)) == 24


def test_discard_leaves_nothing_in_either_mode(tmp_path):
    for streaming in (False, True):
        writer = Mp4Writer(tmp_path / "clip.mp4", streaming=streaming)
        writer.write(smooth_frames(5))
        writer.discard()
        assert list(tmp_path.iterdir()) == []


def test_incremental_writes_match_one_shot(tmp_path):
    frames = smooth_frames(10)
    with Mp4Writer(tmp_path / "a.mp4") as writer:
        for frame in frames:
            writer.write(frame)
    assert len(read_video(tmp_path / "a.mp4")) == 10


def test_bad_inputs_raise_one_line_user_errors(tmp_path):
    good = tmp_path / "good.mp4"
    write_mp4(good, smooth_frames(8))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(good.read_bytes()[:300])
    for bad in (corrupt, tmp_path / "missing.mp4"):
        with pytest.raises(UserError) as err:
            read_video(bad)
        assert "\n" not in str(err.value) and str(bad) in str(err.value)
    with pytest.raises(UserError, match="even"):
        write_mp4(tmp_path / "odd.mp4", np.zeros((2, 35, 64, 3), np.uint8))
    with pytest.raises(UserError, match="uint8"):
        write_mp4(tmp_path / "float.mp4", np.zeros((2, 36, 64, 3), np.float32))
    assert not (tmp_path / "odd.mp4").exists() and not (tmp_path / "float.mp4").exists()


def test_read_frames_natural_order(tmp_path):
    for i in (10, 2, 1):
        Image.fromarray(np.full((6, 8, 3), i, np.uint8)).save(tmp_path / f"frame_{i}.png")
    frames = read_frames(tmp_path)
    assert frames.shape == (3, 6, 8, 3)
    assert frames[:, 0, 0, 0].tolist() == [1, 2, 10]
    Image.fromarray(np.zeros((5, 8, 3), np.uint8)).save(tmp_path / "frame_11.png")
    with pytest.raises(UserError, match="frame_11"):
        read_frames(tmp_path)


def test_contact_sheet_and_png(tmp_path):
    frames = smooth_frames(5)
    sheet = contact_sheet(frames, cols=3, labels=[f"clip {i} with a long caption to wrap" for i in range(5)])
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    assert sheet.shape[1] > 3 * 64 and sheet.shape[0] > 2 * 36
    # label text is drawn in black below each tile
    assert (sheet[36 + 6: 36 + 20, 4: 4 + 64] < 60).any()
    save_png(tmp_path / "sheet.png", sheet)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "sheet.png")), sheet)
    with pytest.raises(UserError, match="labels"):
        contact_sheet(frames, labels=["one"])
