"""Training the annotator's small metric-depth net on (rgb, depth) pairs rendered from procedural worlds.

Worlds with seeds below TRAIN_SEED_LIMIT (5000) only: seeds >= 10_000 are kept for the annotator's tests, so its
metric-scale accuracy is always measured on worlds the net never saw. Seeds 4900..4999 are held out as a
validation set whose error the log reports. Views are random collision-free poses (camera height the world's eye
height 1.6 m ± `height_jitter`, 1.0-2.2 m by default; any yaw; small pitch/roll) with a random horizontal field of
view of 45-100°, rendered at twice the network size and area-downsampled, as `predict_depth` area-resizes real
frames.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from camworld.annotate.depth_net import (
    CANONICAL_FOCAL,
    DepthNet,
    DepthNetConfig,
    load_depth_net,
    save_depth_net,
)
from camworld.errors import UserError

TRAIN_SEED_LIMIT = 5000
VAL_SEEDS = range(4900, 5000)
MAX_DEPTH = 100.0  # metres; farther pixels (and the sky) carry no loss


@dataclass
class DepthTrainSpec:
    """Data and optimisation settings of `train_depth_net`."""

    steps: int = 500
    batch: int = 8
    lr: float = 2e-3
    train_worlds: int = 200
    views_per_world: int = 8
    val_worlds: int = 20
    seed: int = 0
    init: str | None = None  # a saved depth net to continue from (its config is kept), else a fresh one
    # Camera heights are the world's eye height ± this (metres). 0.6 (1.0-2.2 m) hides the ground plane's distance
    # cue; the world's own trajectories keep the eye height (±0.04 m), and a small jitter lets the net learn it.
    height_jitter: float = 0.6


def _random_pose(rng: np.random.Generator, height_jitter: float) -> np.ndarray:
    yaw, pitch, roll = rng.uniform(0, 2 * math.pi), np.clip(rng.normal(0, 0.14), -0.35, 0.35), rng.normal(0, 0.03)
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll),
                              math.sin(roll))
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    radius, angle = 25.0 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    pose = np.eye(4)
    pose[:3, :3] = r_yaw @ r_pitch @ r_roll
    pose[:3, 3] = [radius * math.cos(angle), rng.uniform(-height_jitter, height_jitter), radius * math.sin(angle)]
    return pose


def render_depth_pairs(seeds, views: int, size_hw: tuple[int, int], seed: int = 0, progress: bool = True,
                       height_jitter: float = 0.6):
    """Render `views` random views of each world seed at `size_hw` (camera heights: the eye height ±
    `height_jitter` m): returns (rgb uint8 [N, H, W, 3],
    canonical log-depth float32 [N, H, W] with NaN where there is no valid depth)."""
    from camworld.world import World

    height, width = size_hw
    rng = np.random.default_rng([seed, 77])
    rgbs, logs = [], []
    for world_seed in tqdm(list(seeds), desc="rendering depth pairs", unit="world", disable=not progress):
        if not 0 <= world_seed < TRAIN_SEED_LIMIT:
            raise UserError(f"depth-net training uses world seeds below {TRAIN_SEED_LIMIT}, got {world_seed}")
        world = World(int(world_seed))
        poses = []
        while len(poses) < views:
            pose = _random_pose(rng, height_jitter)
            if not world.collides(pose[None, :3, 3], margin=0.5)[0]:
                poses.append(pose)
        hfov = np.radians(rng.uniform(45, 100, views))
        focal = (width / 2) / np.tan(hfov / 2)  # in network pixels
        K = np.zeros((views, 3, 3))
        K[:, 0, 0] = K[:, 1, 1] = 2 * focal
        K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = width - 0.5, height - 0.5, 1.0
        rgb, depth = world.render(np.stack(poses), K, 2 * height, 2 * width)
        rgb = rgb.reshape(views, height, 2, width, 2, 3).astype(np.float32).mean(axis=(2, 4))
        depth = depth.reshape(views, height, 2, width, 2).mean(axis=(2, 4))  # inf stays inf: no valid depth
        valid = np.isfinite(depth) & (depth < MAX_DEPTH) & (depth > 0)
        canonical = np.log(np.where(valid, depth, 1.0) * CANONICAL_FOCAL / focal[:, None, None])
        rgbs.append(np.round(rgb).astype(np.uint8))
        logs.append(np.where(valid, canonical, np.nan).astype(np.float32))
    return np.concatenate(rgbs), np.concatenate(logs)


def _augment(rgb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flips, brightness/contrast jitter and grayscale (real clips such as KITTI are grey); rgb [B, 3, H, W]."""
    b = rgb.shape[0]
    gain = 1 + 0.25 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 2
    bias = 0.08 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 2
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = ((rgb - mean) * gain + mean + bias).clamp(0, 1)
    grey = torch.rand(b, generator=gen) < 0.2
    rgb[grey] = rgb[grey].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    return rgb


def depth_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |log d_pred − log d_true| over pixels with a valid (non-NaN) target; both `[B, H, W]`."""
    valid = torch.isfinite(target)
    return (pred[valid] - target[valid]).abs().mean()


@torch.no_grad()
def evaluate(net: DepthNet, rgb: np.ndarray, log_depth: np.ndarray) -> dict[str, float]:
    """Mean |log error| and mean absolute relative error of the metric depth on a rendered set."""
    net.eval()
    errs, rels = [], []
    for start in range(0, len(rgb), 32):
        x = torch.from_numpy(rgb[start:start + 32]).permute(0, 3, 1, 2).float() / 255
        target = torch.from_numpy(log_depth[start:start + 32])
        pred = net(x)
        valid = torch.isfinite(target)
        diff = (pred[valid] - target[valid])
        errs.append(diff.abs())
        rels.append((torch.exp(diff) - 1).abs())
    net.train()
    return {"log_l1": float(torch.cat(errs).mean()), "abs_rel": float(torch.cat(rels).mean())}


def train_depth_net(out: str | Path, spec: DepthTrainSpec, log=print) -> dict[str, float]:
    """Render the training and validation sets, train a `DepthNet`, save it to `out`; returns the final
    validation metrics. `log` receives one line per report."""
    if spec.steps < 1 or spec.batch < 1 or spec.train_worlds < 1 or not 0 <= spec.height_jitter < 1.5:
        raise UserError("steps, batch and train_worlds must be positive and height_jitter in [0, 1.5) m")
    if spec.train_worlds > VAL_SEEDS.start:
        raise UserError(f"at most {VAL_SEEDS.start} training worlds (seeds 0..{VAL_SEEDS.start - 1})")
    start = load_depth_net(spec.init) if spec.init else None
    cfg = start.cfg if start is not None else DepthNetConfig()
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    started = time.time()
    train_seeds = rng.choice(VAL_SEEDS.start, size=spec.train_worlds, replace=False)
    rgb, target = render_depth_pairs(train_seeds, spec.views_per_world, cfg.input_hw, seed=spec.seed,
                                     height_jitter=spec.height_jitter)
    val_rgb, val_target = render_depth_pairs(list(VAL_SEEDS)[:spec.val_worlds], 4, cfg.input_hw, seed=spec.seed + 1,
                                             height_jitter=spec.height_jitter)
    log(f"rendered {len(rgb)} training and {len(val_rgb)} validation pairs in {time.time() - started:.0f} s")
    net = start.train() if start is not None else DepthNet(cfg)
    params = sum(p.numel() for p in net.parameters())
    log(f"DepthNet widths {cfg.widths}: {params / 1e6:.2f} M parameters")
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.lr, total_steps=spec.steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(spec.seed)
    rgb_t, target_t = torch.from_numpy(rgb), torch.from_numpy(target)
    bar = tqdm(range(spec.steps), desc="training depth net", unit="step")
    for step in bar:
        idx = torch.randint(len(rgb_t), (spec.batch,), generator=gen)
        x = _augment(rgb_t[idx].permute(0, 3, 1, 2).float() / 255, gen)
        y = target_t[idx]
        if torch.rand(1, generator=gen) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        loss = depth_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % max(1, spec.steps // 10) == 0 or step + 1 == spec.steps:
            metrics = evaluate(net, val_rgb, val_target)
            log(f"step {step + 1}/{spec.steps} train log-L1 {loss.item():.4f} val log-L1 {metrics['log_l1']:.4f} "
                f"val abs-rel {metrics['abs_rel']:.4f} ({time.time() - started:.0f} s)")
    metrics = evaluate(net, val_rgb, val_target)
    info = {"init": spec.init, "steps": spec.steps, "batch": spec.batch, "lr": spec.lr,
            "train_worlds": spec.train_worlds, "views_per_world": spec.views_per_world,
            "height_jitter": spec.height_jitter,
            "train_seed_limit": TRAIN_SEED_LIMIT,
            "val_seeds": [VAL_SEEDS.start, VAL_SEEDS.start + spec.val_worlds], "val": metrics,
            "seconds": round(time.time() - started)}
    save_depth_net(net.eval(), out, info)
    return metrics

