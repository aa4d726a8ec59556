"""`ClipDataset`: fixed-length clips cut at random times from the clips of a sharded dataset.

A sample has stride·k + 1 frames, so it tokenises to k + 1 latent frames (the first raw frame alone, then groups
of `stride`, as SANA-WM's causal VAE, sana_wm.md §2.1/§3.1). Poses are re-expressed relative to the sample's first
frame, the convention every camera input of the model expects.

Mirror augmentation (`hflip`, our addition; SANA-WM does not describe one): with that probability a sample is
flipped left-right together with its cameras, the view of the world mirrored in its x = 0 plane. Poses become
F·c2w·F with F = diag(−1, 1, 1, 1) (still rotations: the camera's x axis and the world's are both mirrored), the
principal point cx becomes W − 1 − cx (pixel centres at integers). Yaw left becomes yaw right, so the model sees
both turn directions equally often for every scene.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from camworld.camera import relativize
from camworld.data.shards import list_shards, read_clip, read_shard_meta
from camworld.errors import UserError


class ClipDataset(Dataset):
    """Random-time crops of `stride * latent_frames + 1` frames from every clip long enough to hold one.

    Item: dict with `frames` uint8 [F, H, W, 3], `c2w` float32 [F, 4, 4] (frame 0 = identity), `intrinsics`
    float32 [F, 3, 3] (pixels), `depth` float16 [F, H, W] when the shard has depth, `caption` str, `seed` int,
    `style` str, `start` int (the crop's first frame in its source clip). Crop starts come from torch's RNG, so
    `torch.manual_seed` and DataLoader worker seeding make them reproducible; `random_crop=False` always starts
    at frame 0. `hflip`: probability of mirroring a sample (`mirror_sample`), drawn from torch's RNG too; the item
    then has `mirrored` True.
    """

    def __init__(self, root: str | os.PathLike, stride: int = 4, latent_frames: int = 2, random_crop: bool = True,
                 with_depth: bool = True, hflip: float = 0.0):
        if stride < 1 or latent_frames < 0:
            raise UserError(f"stride must be >= 1 and latent_frames >= 0, got {stride}, {latent_frames}")
        if not 0.0 <= hflip <= 1.0:
            raise UserError(f"hflip is a probability in [0, 1], got {hflip}")
        self.hflip = hflip
        self.root = Path(root)
        self.num_frames = stride * latent_frames + 1
        self.random_crop = random_crop
        self.with_depth = with_depth
        self.index: list[tuple[Path, int, int]] = []
        shards = list_shards(self.root)
        if not shards:
            raise UserError(f"no shards in {self.root}")
        too_short = 0
        for shard in shards:
            for i, meta in enumerate(read_shard_meta(shard)):
                if meta["num_frames"] >= self.num_frames:
                    self.index.append((shard, i, meta["num_frames"]))
                else:
                    too_short += 1
        if not self.index:
            raise UserError(f"no clip in {self.root} has {self.num_frames} frames ({too_short} are shorter)")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        shard, clip_index, available = self.index[item]
        span = available - self.num_frames
        start = int(torch.randint(0, span + 1, ()).item()) if self.random_crop and span > 0 else 0
        clip = read_clip(shard, clip_index)
        window = slice(start, start + self.num_frames)
        sample = {
            "frames": torch.from_numpy(np.ascontiguousarray(clip.frames[window])),
            "c2w": torch.from_numpy(relativize(clip.c2w[window]).astype(np.float32)),
            "intrinsics": torch.from_numpy(np.ascontiguousarray(clip.intrinsics[window])),
            "caption": clip.caption,
            "seed": clip.seed,
            "style": clip.style,
            "start": start,
        }
        if self.with_depth and clip.depth is not None:
            sample["depth"] = torch.from_numpy(np.ascontiguousarray(clip.depth[window]))
        mirrored = self.hflip > 0 and bool(torch.rand(()) < self.hflip)
        return mirror_sample(sample) if mirrored else {**sample, "mirrored": False}


def mirror_sample(sample: dict) -> dict:
    """The sample seen in a mirror: frames (and depth) flipped along W, c2w `[F, 4, 4]` -> F·c2w·F, intrinsics
    `[F, 3, 3]` cx -> W − 1 − cx; `mirrored` True."""
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=sample["c2w"].dtype))
    width = sample["frames"].shape[2]
    K = sample["intrinsics"].clone()
    K[:, 0, 2] = width - 1 - K[:, 0, 2]
    out = {**sample, "frames": sample["frames"].flip(2), "c2w": flip @ sample["c2w"] @ flip, "intrinsics": K,
           "mirrored": True}
    if "depth" in sample:
        out["depth"] = sample["depth"].flip(2)
    return out
