"""Building a sharded dataset of rendered clips: `DatasetSpec` (the manifest), clip rendering, resumable shard
making split by seed range, and dataset-level validation.

Shard i holds the clips of world seeds seed_start + i·shard_size … (up to num_clips in all), so the work is a pure
function of the spec: processes given `shard_index k of num_shards n` make shards i ≡ k (mod n), completed shards
are skipped on a rerun, and leftovers of an interrupted shard (hidden temporary folders) are removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from camworld.data.shards import Clip, depth_to_float16, list_shards, shard_name, validate_shard, write_shard
from camworld.errors import UserError
from camworld.fileio import atomic_path
from camworld.world import World
from camworld.world.trajectories import random_keypress_trajectory, revisit_trajectory, waypoint_trajectory

MANIFEST = "manifest.json"
TRAJECTORIES = {
    "random": random_keypress_trajectory,
    "waypoint": waypoint_trajectory,
    "revisit": revisit_trajectory,
}
# "mix" draws per clip with these odds.
MIX_WEIGHTS = {"random": 0.4, "waypoint": 0.3, "revisit": 0.3}


@dataclass
class DatasetSpec:
    """Everything a dataset depends on; saved as manifest.json and checked on every resume."""

    num_clips: int
    num_frames: int
    height: int
    width: int
    seed_start: int = 0
    shard_size: int = 16
    trajectory: str = "mix"  # random | waypoint | revisit | mix
    depth: bool = True
    fps: int = 16
    fov_deg: tuple[float, float] = (60.0, 80.0)  # horizontal field of view, drawn per clip

    def check(self) -> None:
        if min(self.num_clips, self.shard_size) < 1 or self.num_frames < 2:
            raise UserError("need --num-clips >= 1, --shard-size >= 1 and --frames >= 2")
        if self.height < 8 or self.width < 8 or self.height % 2 or self.width % 2:
            raise UserError(f"--size must be even and at least 8x8, got {self.height}x{self.width}")
        if self.trajectory not in TRAJECTORIES and self.trajectory != "mix":
            raise UserError(f"unknown --trajectory {self.trajectory!r}; choose from {[*TRAJECTORIES, 'mix']}")

    @property
    def num_shards(self) -> int:
        return math.ceil(self.num_clips / self.shard_size)

    def shard_seeds(self, index: int) -> range:
        first = self.seed_start + index * self.shard_size
        return range(first, min(first + self.shard_size, self.seed_start + self.num_clips))


def intrinsics_for_fov(hfov_deg: float, height: int, width: int) -> np.ndarray:
    """Pinhole K `[3, 3]` float32 in pixels: square pixels, principal point at the image centre ((W−1)/2, (H−1)/2)
    since pixel centres sit at integer coordinates (the renderer's and the Plücker rays' convention)."""
    focal = width / (2 * math.tan(math.radians(hfov_deg) / 2))
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float32)


def render_clip(seed: int, spec: DatasetSpec) -> Clip:
    """Render world `seed` along a trajectory of the spec's kind; deterministic in (seed, spec)."""
    rng = np.random.default_rng([seed, 7])
    kind = spec.trajectory
    if kind == "mix":
        kind = str(rng.choice(list(MIX_WEIGHTS), p=list(MIX_WEIGHTS.values())))
    world = World(seed)
    c2w, meta = TRAJECTORIES[kind](world, spec.num_frames, seed)
    K = intrinsics_for_fov(float(rng.uniform(*spec.fov_deg)), spec.height, spec.width)
    intrinsics = np.repeat(K[None], spec.num_frames, axis=0)
    frames, depth = world.render(c2w, intrinsics, spec.height, spec.width)
    return Clip(frames=frames, c2w=c2w, intrinsics=intrinsics, caption=world.caption, seed=seed, style=world.style,
                fps=spec.fps, depth=depth_to_float16(depth) if spec.depth else None, trajectory=meta)


def make_shard(root: str | os.PathLike, index: int, spec: DatasetSpec) -> int:
    """Render and write shard `index` (atomically); returns its clip count."""
    clips = [render_clip(seed, spec) for seed in spec.shard_seeds(index)]
    write_shard(Path(root) / shard_name(index), clips)
    return len(clips)


def read_manifest(root: str | os.PathLike) -> DatasetSpec:
    path = Path(root) / MANIFEST
    try:
        data = json.loads(path.read_text())
        data["fov_deg"] = tuple(data["fov_deg"])
        return DatasetSpec(**data)
    except FileNotFoundError:
        raise UserError(f"no {MANIFEST} in {root}: not a camworld dataset") from None
    except (OSError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise UserError(f"unreadable {path}: {exc}") from None


def _write_manifest(root: Path, spec: DatasetSpec) -> None:
    if (root / MANIFEST).exists():
        existing = read_manifest(root)
        if existing != spec:
            have, want = asdict(existing), asdict(spec)
            diff = ", ".join(f"{k} {have[k]} (asked {want[k]})" for k in have if have[k] != want[k])
            raise UserError(f"{root} holds a dataset made with other settings: {diff}")
        return
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(asdict(spec), indent=1) + "\n")


def _remove_leftovers(root: Path, index: int) -> None:
    """Temporary folders an interrupted run left for shard `index` (see `camworld.fileio.atomic_dir`)."""
    for leftover in root.glob(f".{shard_name(index)}.*"):
        shutil.rmtree(leftover, ignore_errors=True)


def make_dataset(root: str | os.PathLike, spec: DatasetSpec, *, shard_index: int = 0, num_shards: int = 1,
                 workers: int = 1, progress: bool = True) -> dict:
    """Make every missing shard i ≡ shard_index (mod num_shards) of the dataset at `root`.

    Returns counts {"shards_total", "shards_made", "shards_skipped", "clips_made"}.
    """
    spec.check()
    if not 0 <= shard_index < num_shards:
        raise UserError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _write_manifest(root, spec)
    mine = range(shard_index, spec.num_shards, num_shards)
    done = {p.name for p in list_shards(root)}
    todo = [i for i in mine if shard_name(i) not in done]
    for i in todo:
        _remove_leftovers(root, i)
    clips = sum(len(spec.shard_seeds(i)) for i in todo)
    bar = tqdm(total=clips, unit="clip", desc="rendering", disable=not progress)
    if workers == 1:
        for i in todo:
            bar.update(make_shard(root, i, spec))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for made in pool.map(make_shard, [root] * len(todo), todo, [spec] * len(todo)):
                bar.update(made)
    bar.close()
    return {"shards_total": spec.num_shards, "shards_made": len(todo), "shards_skipped": len(mine) - len(todo),
            "clips_made": clips}


def validate_dataset(root: str | os.PathLike) -> tuple[int, list[str]]:
    """Validate every shard the manifest promises; returns (clips in valid shards, one message per problem)."""
    root = Path(root)
    spec = read_manifest(root)
    problems, clips = [], 0
    present = {p.name: p for p in list_shards(root)}
    for i in range(spec.num_shards):
        path = present.pop(shard_name(i), None)
        if path is None:
            problems.append(f"missing shard {root / shard_name(i)} (manifest expects {spec.num_shards})")
            continue
        try:
            count = validate_shard(path)
        except UserError as exc:
            problems.append(str(exc))
            continue
        if count != len(spec.shard_seeds(i)):
            problems.append(f"invalid shard {path}: {count} clips, manifest expects {len(spec.shard_seeds(i))}")
        else:
            clips += count
    problems += [f"unexpected shard {path} (manifest expects {spec.num_shards})" for path in present.values()]
    return clips, problems
