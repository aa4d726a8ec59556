"""The shard format of camworld datasets: writing (atomic), reading and validation.

A shard is one folder `shard_NNNNN/` holding
    clips.npz   per clip i (`c{i:04d}_` prefix): `frames` uint8 [F, H, W, 3], `c2w` float32 [F, 4, 4] (OpenCV
                camera-to-world relative to frame 0, so frame 0 is the identity), `intrinsics` float32 [F, 3, 3] in
                pixels, and optionally `depth` float16 [F, H, W] in metres along +Z (0 where nothing was hit);
    meta.json   {"format", "version", "clips": [{caption, seed, style, fps, num_frames, has_depth, trajectory}]}.
The folder is renamed into place only once complete, so a shard is either absent or whole; plain arrays only,
loadable with `allow_pickle=False`. Per-clip keys let a reader decompress one clip without the others.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from camworld.errors import UserError
from camworld.fileio import atomic_dir

FORMAT = "camworld-shard"
VERSION = 1
SHARD_NAME = re.compile(r"^shard_(\d{5})$")
FLOAT16_MAX = float(np.finfo(np.float16).max)
_META_TYPES = {"caption": str, "seed": int, "style": str, "fps": (int, float), "num_frames": int, "has_depth": bool,
               "trajectory": dict}
_ARRAY_SPECS = {"frames": (np.uint8, 4), "c2w": (np.float32, 3), "intrinsics": (np.float32, 3),
                "depth": (np.float16, 3)}


@dataclass
class Clip:
    """One clip: frames uint8 [F, H, W, 3], c2w float32 [F, 4, 4], intrinsics float32 [F, 3, 3] (pixels),
    depth float16 [F, H, W] metres or None, plus its scene-static caption and provenance."""

    frames: np.ndarray
    c2w: np.ndarray
    intrinsics: np.ndarray
    caption: str
    seed: int
    style: str
    fps: float = 16
    depth: np.ndarray | None = None
    trajectory: dict = field(default_factory=dict)

    def meta(self) -> dict:
        return {"caption": self.caption, "seed": int(self.seed), "style": self.style, "fps": self.fps,
                "num_frames": int(len(self.frames)), "has_depth": self.depth is not None,
                "trajectory": self.trajectory}


def shard_name(index: int) -> str:
    return f"shard_{index:05d}"


def list_shards(root: str | os.PathLike) -> list[Path]:
    """Complete shard folders under `root`, in index order (temporary `.shard_*` folders are not listed)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    return sorted(p for p in root.iterdir() if p.is_dir() and SHARD_NAME.match(p.name))


def depth_to_float16(depth: np.ndarray) -> np.ndarray:
    """Metres float32 -> float16, with no-hit (inf/NaN) pixels stored as 0 and far ones clamped to float16's max."""
    depth = np.asarray(depth, dtype=np.float32)
    return np.where(np.isfinite(depth), np.minimum(depth, FLOAT16_MAX), 0.0).astype(np.float16)


def _key(index: int, name: str) -> str:
    return f"c{index:04d}_{name}"


def _array_problem(arrays: dict[str, np.ndarray], meta: dict) -> str | None:
    """What is wrong with one clip's arrays given its metadata, or None."""
    names = ["frames", "c2w", "intrinsics"] + (["depth"] if meta["has_depth"] else [])
    for name in names:
        if name not in arrays:
            return f"missing array {name!r}"
        dtype, ndim = _ARRAY_SPECS[name]
        a = arrays[name]
        if a.dtype != dtype or a.ndim != ndim:
            return f"{name} must be {np.dtype(dtype).name} with {ndim} dims, got {a.dtype} {list(a.shape)}"
    frames, c2w, K = arrays["frames"], arrays["c2w"], arrays["intrinsics"]
    if frames.shape[-1] != 3 or c2w.shape[1:] != (4, 4) or K.shape[1:] != (3, 3):
        return f"bad shapes: frames {list(frames.shape)}, c2w {list(c2w.shape)}, intrinsics {list(K.shape)}"
    counts = {name: len(arrays[name]) for name in names}
    if len(set(counts.values())) != 1 or meta["num_frames"] != len(frames):
        return f"mismatched frame counts {counts}, meta num_frames {meta['num_frames']}"
    if meta["has_depth"] and arrays["depth"].shape[1:] != frames.shape[1:3]:
        return f"depth is {list(arrays['depth'].shape)}, frames are {list(frames.shape)}"
    for name in names[1:]:
        if not np.isfinite(arrays[name]).all():
            return f"{name} holds NaN or inf"
    pose = c2w.astype(np.float64)
    rot = pose[:, :3, :3]
    orthogonality = np.abs(np.swapaxes(rot, 1, 2) @ rot - np.eye(3)).max()
    if orthogonality > 1e-3 or (np.linalg.det(rot) < 0).any() or np.abs(pose[:, 3] - [0, 0, 0, 1]).max() > 1e-6:
        return f"c2w is not rigid (max |RᵀR − I| = {orthogonality:.3g})"
    if np.abs(pose[0] - np.eye(4)).max() > 1e-4:
        return "c2w is not relative to frame 0 (frame 0 is not the identity)"
    if (K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any() or np.abs(K[:, 2] - [0, 0, 1]).max() > 1e-6:
        return "intrinsics need positive focal lengths and a last row [0, 0, 1]"
    if meta["has_depth"] and (arrays["depth"] < 0).any():
        return "depth holds negative values"
    return None


def _meta_problem(meta) -> str | None:
    if not isinstance(meta, dict):
        return "clip metadata is not an object"
    for name, types in _META_TYPES.items():
        if name not in meta:
            return f"metadata misses {name!r}"
        value = meta[name]
        if not isinstance(value, types) or (isinstance(value, bool) and types is int):
            return f"metadata {name!r} has the wrong type ({type(value).__name__})"
    if meta["fps"] <= 0:
        return f"fps must be positive, got {meta['fps']}"
    return None


def write_shard(path: str | os.PathLike, clips: list[Clip]) -> None:
    """Write clips as one shard folder, atomically; malformed clips raise UserError before anything is written."""
    path = Path(path)
    if not clips:
        raise UserError(f"shard {path.name}: no clips to write")
    arrays = {}
    for i, clip in enumerate(clips):
        clip_arrays = {"frames": clip.frames, "c2w": clip.c2w, "intrinsics": clip.intrinsics}
        if clip.depth is not None:
            clip_arrays["depth"] = clip.depth
        problem = _meta_problem(clip.meta()) or _array_problem(clip_arrays, clip.meta())
        if problem:
            raise UserError(f"shard {path.name}: clip {i}: {problem}")
        arrays.update({_key(i, name): a for name, a in clip_arrays.items()})
    meta = {"format": FORMAT, "version": VERSION, "clips": [clip.meta() for clip in clips]}
    with atomic_dir(path) as tmp:
        np.savez_compressed(tmp / "clips.npz", **arrays)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        tmp.chmod(0o755)  # the temporary folder is created private (0700); a dataset is meant to be shared


def read_shard_meta(path: str | os.PathLike) -> list[dict]:
    """The per-clip metadata of a shard (no arrays loaded)."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except FileNotFoundError:
        raise UserError(f"invalid shard {path}: missing meta.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"invalid shard {path}: unreadable meta.json ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise UserError(f"invalid shard {path}: meta.json is not a {FORMAT} v{VERSION} file")
    clips = meta.get("clips")
    if not isinstance(clips, list) or not clips:
        raise UserError(f"invalid shard {path}: meta.json lists no clips")
    for i, clip in enumerate(clips):
        problem = _meta_problem(clip)
        if problem:
            raise UserError(f"invalid shard {path}: clip {i}: {problem}")
    return clips


def _load_clip_arrays(path: Path, npz, index: int, meta: dict) -> dict[str, np.ndarray]:
    names = ["frames", "c2w", "intrinsics"] + (["depth"] if meta["has_depth"] else [])
    arrays = {}
    for name in names:
        key = _key(index, name)
        if key not in npz.files:
            raise UserError(f"invalid shard {path}: clip {index}: missing array {name!r}")
        try:
            arrays[name] = npz[key]
        except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as exc:
            raise UserError(f"invalid shard {path}: clip {index}: {name} is corrupt or truncated ({exc})") from None
    return arrays


def _open_npz(path: Path):
    try:
        return np.load(path / "clips.npz", allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"invalid shard {path}: missing clips.npz") from None
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise UserError(f"invalid shard {path}: clips.npz is corrupt or truncated ({exc})") from None


def _clip(arrays: dict[str, np.ndarray], meta: dict) -> Clip:
    return Clip(frames=arrays["frames"], c2w=arrays["c2w"], intrinsics=arrays["intrinsics"], caption=meta["caption"],
                seed=meta["seed"], style=meta["style"], fps=meta["fps"], depth=arrays.get("depth"),
                trajectory=meta["trajectory"])


def read_clip(path: str | os.PathLike, index: int, check: bool = False) -> Clip:
    """Load clip `index` of a shard, decompressing only its arrays; `check` runs the full validation on it."""
    path = Path(path)
    metas = read_shard_meta(path)
    if not 0 <= index < len(metas):
        raise UserError(f"shard {path} has {len(metas)} clips, asked for clip {index}")
    with _open_npz(path) as npz:
        arrays = _load_clip_arrays(path, npz, index, metas[index])
    if check:
        problem = _array_problem(arrays, metas[index])
        if problem:
            raise UserError(f"invalid shard {path}: clip {index}: {problem}")
    return _clip(arrays, metas[index])


def validate_shard(path: str | os.PathLike) -> int:
    """Check every array and field of a shard; return its clip count or raise a one-line UserError naming the
    shard, the clip and the problem (missing keys, wrong dtypes/shapes, NaN, non-rigid poses, mismatched frame
    counts, truncated files)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"invalid shard {path}: not a folder")
    metas = read_shard_meta(path)
    with _open_npz(path) as npz:
        expected = {_key(i, n) for i, m in enumerate(metas) for n in ["frames", "c2w", "intrinsics"]
                    + (["depth"] if m["has_depth"] else [])}
        extra = sorted(set(npz.files) - expected)
        if extra:
            raise UserError(f"invalid shard {path}: unexpected arrays {extra[:3]} (meta.json lists {len(metas)} clips)")
        for i, meta in enumerate(metas):
            problem = _array_problem(_load_clip_arrays(path, npz, i, meta), meta)
            if problem:
                raise UserError(f"invalid shard {path}: clip {i}: {problem}")
    return len(metas)


def read_shard(path: str | os.PathLike) -> list[Clip]:
    """Validate a shard and load all its clips."""
    path = Path(path)
    validate_shard(path)
    metas = read_shard_meta(path)
    with _open_npz(path) as npz:
        return [_clip(_load_clip_arrays(path, npz, i, m), m) for i, m in enumerate(metas)]
