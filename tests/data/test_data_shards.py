"""Shard writing/reading and the validator's rejection of each kind of malformed shard."""

from __future__ import annotations

import json

import numpy as np
import pytest

from camworld.data.shards import Clip, read_clip, read_shard, validate_shard, write_shard
from camworld.errors import UserError

F, H, W = 5, 6, 8


def make_clip(seed: int = 3, depth: bool = True) -> Clip:
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4, dtype=np.float32), (F, 1, 1))
    c2w[:, 2, 3] = np.arange(F) * 0.025
    angle = np.arange(F) * 0.01
    c2w[:, 0, 0] = c2w[:, 2, 2] = np.cos(angle)
    c2w[:, 0, 2], c2w[:, 2, 0] = np.sin(angle), -np.sin(angle)
    K = np.tile(np.array([[7.0, 0, 4], [0, 7, 3], [0, 0, 1]], np.float32), (F, 1, 1))
    return Clip(frames=rng.integers(0, 256, (F, H, W, 3), dtype=np.uint8), c2w=c2w, intrinsics=K,
                caption="a meadow with red boxes", seed=seed, style="meadow", fps=16,
                depth=rng.uniform(0.5, 40, (F, H, W)).astype(np.float16) if depth else None,
                trajectory={"kind": "waypoint"})


def test_round_trip(tmp_path):
    clips = [make_clip(1), make_clip(2, depth=False)]
    write_shard(tmp_path / "shard_00000", clips)
    assert validate_shard(tmp_path / "shard_00000") == 2
    back = read_shard(tmp_path / "shard_00000")
    for a, b in zip(clips, back):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.c2w, b.c2w)
        assert np.array_equal(a.intrinsics, b.intrinsics)
        assert (a.caption, a.seed, a.style, a.fps, a.trajectory) == (b.caption, b.seed, b.style, b.fps, b.trajectory)
    assert np.array_equal(back[0].depth, clips[0].depth) and back[1].depth is None
    one = read_clip(tmp_path / "shard_00000", 1, check=True)
    assert one.seed == 2
    with np.load(tmp_path / "shard_00000" / "clips.npz", allow_pickle=False) as npz:
        assert len(npz.files) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00000"]


def test_write_shard_refuses_malformed_clips(tmp_path):
    clip = make_clip()
    clip.c2w = clip.c2w.astype(np.float64)
    with pytest.raises(UserError, match="c2w must be float32"):
        write_shard(tmp_path / "shard_00000", [clip])
    assert list(tmp_path.iterdir()) == []


def _write_raw(path, arrays: dict, meta: dict) -> None:
    """A shard folder written without write_shard's checks, to feed the validator bad data."""
    path.mkdir()
    np.savez_compressed(path / "clips.npz", **arrays)
    (path / "meta.json").write_text(json.dumps(meta))


def _good_raw():
    clip = make_clip()
    arrays = {"c0000_frames": clip.frames, "c0000_c2w": clip.c2w, "c0000_intrinsics": clip.intrinsics,
              "c0000_depth": clip.depth}
    return arrays, {"format": "camworld-shard", "version": 1, "clips": [clip.meta()]}


def _set(key, value):
    def change(arrays, meta):
        arrays[key] = value(arrays[key]) if callable(value) else value
    return change


def _drop(key):
    return lambda arrays, meta: arrays.pop(key)


def _shear(arrays, meta):
    arrays["c0000_c2w"] = arrays["c0000_c2w"].copy()
    arrays["c0000_c2w"][2, 0, 1] = 0.3


def _offset_start(arrays, meta):
    arrays["c0000_c2w"] = arrays["c0000_c2w"].copy()
    arrays["c0000_c2w"][:, 0, 3] += 1.0


def _nan(key):
    def change(arrays, meta):
        arrays[key] = arrays[key].copy()
        arrays[key][1].flat[0] = np.nan
    return change


def _meta(field, value):
    def change(arrays, meta):
        if value is None:
            del meta["clips"][0][field]
        else:
            meta["clips"][0][field] = value
    return change


MALFORMED = {
    "missing frames": (_drop("c0000_frames"), "missing array 'frames'"),
    "missing depth": (_drop("c0000_depth"), "missing array 'depth'"),
    "float frames": (_set("c0000_frames", lambda a: a.astype(np.float32)), "frames must be uint8"),
    "float64 poses": (_set("c0000_c2w", lambda a: a.astype(np.float64)), "c2w must be float32"),
    "float32 depth": (_set("c0000_depth", lambda a: a.astype(np.float32)), "depth must be float16"),
    "wrong pose shape": (_set("c0000_c2w", lambda a: a[:, :3]), "bad shapes"),
    "grey frames": (_set("c0000_frames", lambda a: a[..., :1]), "bad shapes"),
    "short intrinsics": (_set("c0000_intrinsics", lambda a: a[:-1]), "mismatched frame counts"),
    "meta frame count": (_meta("num_frames", F + 1), "mismatched frame counts"),
    "depth size": (_set("c0000_depth", lambda a: a[:, :-1]), "depth is"),
    "nan pose": (_nan("c0000_c2w"), "c2w holds NaN"),
    "nan intrinsics": (_nan("c0000_intrinsics"), "intrinsics holds NaN"),
    "nan depth": (_nan("c0000_depth"), "depth holds NaN"),
    "negative depth": (_set("c0000_depth", lambda a: -a), "negative"),
    "non-rigid pose": (_shear, "not rigid"),
    "not relative": (_offset_start, "not relative to frame 0"),
    "zero focal": (_set("c0000_intrinsics", lambda a: a * np.array([0, 1, 1], np.float32)[:, None]), "focal"),
    "extra array": (_set("c0001_frames", np.zeros(1, np.uint8)), "unexpected arrays"),
    "no caption": (_meta("caption", None), "misses 'caption'"),
    "string seed": (_meta("seed", "3"), "'seed' has the wrong type"),
    "bad fps": (_meta("fps", 0), "fps must be positive"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_validator_rejects(tmp_path, case):
    change, message = MALFORMED[case]
    arrays, meta = _good_raw()
    change(arrays, meta)
    path = tmp_path / "shard_00007"
    _write_raw(path, arrays, meta)
    with pytest.raises(UserError) as err:
        validate_shard(path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_validator_accepts_the_unchanged_raw_shard(tmp_path):
    arrays, meta = _good_raw()
    _write_raw(tmp_path / "shard_00000", arrays, meta)
    assert validate_shard(tmp_path / "shard_00000") == 1


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_validator_rejects_truncated_npz(tmp_path, cut):
    write_shard(tmp_path / "shard_00000", [make_clip()])
    npz = tmp_path / "shard_00000" / "clips.npz"
    data = npz.read_bytes()
    npz.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(UserError, match="corrupt or truncated") as err:
        validate_shard(tmp_path / "shard_00000")
    assert "shard_00000" in str(err.value)


def test_validator_rejects_missing_or_broken_meta(tmp_path):
    write_shard(tmp_path / "shard_00000", [make_clip()])
    meta = tmp_path / "shard_00000" / "meta.json"
    meta.write_text("{not json")
    with pytest.raises(UserError, match="unreadable meta.json"):
        validate_shard(tmp_path / "shard_00000")
    meta.unlink()
    with pytest.raises(UserError, match="missing meta.json"):
        validate_shard(tmp_path / "shard_00000")
    (tmp_path / "shard_00000" / "clips.npz").unlink()
    meta.write_text(json.dumps(_good_raw()[1]))
    with pytest.raises(UserError, match="missing clips.npz"):
        validate_shard(tmp_path / "shard_00000")
