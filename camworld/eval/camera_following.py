"""Does the model follow the camera? Generated frames against the ground-truth render of the same trajectory, and
the direction of image motion under yaw (the generation issue's "Done when" measurement; sana_wm.md §3, §4).

For each held-out world seed (training used seeds < `HELD_OUT_SEED`): the first frame is `World(seed)` rendered at
the identity pose at the model's resolution with the intrinsics `camworld generate` uses by default (horizontal FOV
`DEFAULT_FOV`), the prompt is the world's caption (also the `generate` default), and the trajectory is an action
string rolled out with the v3 DSL. Three systems are scored per frame window with PSNR and SSIM against the render:
- "model": `WorldModel.generate`;
- "model+refiner" (only with `refiner_ab`): the same stage-1 latents (same seeds) refined by the stage-2 refiner
  (`WorldModel.refine`, sana_wm.md §5); "model" is then stage 1 alone. The refined video starts at pose 1 (the refiner
  drops frame 0), so its frame i is scored against the render of pose i + 1;
- "repeat_first_frame": the conditioning image held for every frame;
- "no_camera": the same weights with `CameraInputs` replaced by None, i.e. both camera branches skipped
  (`WorldDiT.forward`: "camera None (no camera control)"); the refiner, when used, gets no cameras either.
  We deliberately do not use identity poses + zero Plücker rays: that would tell the model "stand still", which is
  a camera condition, not the absence of one;
- "vae_roundtrip": the ground-truth render encoded and decoded by the model's tokenizer, a reference rather than a
  baseline: the closest any generator that works in this latent space can come to the truth. It separates what the
  tokenizer loses from what the DiT loses (bundled tiny weights, worlds 10000-10002: about 26 dB in both windows of
  the 961-frame walk, where the model scores 20.0 and 10.4).

Yaw test: "a-32" (yaw left) and "d-32" (yaw right). The horizontal image motion over the clip is the sum of
the phase-correlation shifts between consecutive frames (`cv2.phaseCorrelate` on grayscale float32 with a Hanning
window; positive = content moved right). Yaw left must move content right. The convention is checked on
ground-truth renders in the same run. The first version of this test correlated only the first frame with the
last; that shift is still reported ("end to end"), but it is not a motion measure for generated video: when the
content changes over the clip, the correlation peak of two frames 2 s apart can land anywhere (measured with the
bundled weights, camera removed, on worlds 10000 and 10003: end-to-end shifts of +11.8 and −28.6 px where the
frame-to-frame sum gives −1.0 and −1.4 px), while frames a few pixels apart are what phase correlation measures
reliably.

Per system, the drop from the first window (0-5 s) to the last (50-60 s) is also reported (PSNR and SSIM of the
first minus the last, per seed): how much the video degrades over the minute, what the refiner should reduce.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from camworld.camera import action_string_to_c2w, parse_action_string
from camworld.camera.dsl import FPS
from camworld.data.make import intrinsics_for_fov
from camworld.errors import UserError
from camworld.fileio import atomic_path
from camworld.flow.refiner_objective import with_chunk_plan
from camworld.pipeline import WorldModel
from camworld.pipeline_inputs import snap_num_frames
from camworld.tokenizer.metrics import psnr, ssim
from camworld.tokenizer.vae import to_uint8
from camworld.world import World

HELD_OUT_SEED = 10000
DEFAULT_ACTION = "w-100,dw-60,w-100,aw-60"
DEFAULT_FOV = 70.0  # `camworld generate --fov` default
YAW_ACTIONS = {"left": "a-32", "right": "d-32"}
STRONG_FRACTION = 0.1  # the yaw test's stricter count: generated motion at least this share of the true motion
PSNR_CAP = 100.0  # dB; identical frames (a static world repeated) would otherwise give inf
SYSTEMS = ("model", "repeat_first_frame", "no_camera")  # the model and the two baselines it must beat
REFINED = "model+refiner"
CEILING = "vae_roundtrip"
NO_CAMERA_NOTE = ("no_camera = the same weights with CameraInputs=None (UCPE and Plücker branches skipped, "
                  "and in the refiner when one runs), not identity poses + zero Plücker")


@dataclass
class FollowingSettings:
    """What to run. seeds: world seeds (all >= HELD_OUT_SEED); num_frames: poses of the main trajectory (snapped
    to stride·k + 1); yaw_seeds: worlds of the yaw test (empty: skip it)."""

    seeds: Sequence[int]
    num_frames: int = 961
    action: str = DEFAULT_ACTION
    yaw_seeds: Sequence[int] = ()
    steps: int | None = None  # None: as in generate (60, or in ar mode the schedule packaged with the weights)
    cfg_scale: float | None = None  # None: the scale packaged with the weights (`WorldModel.default_cfg_scale`)
    mode: str = "bidirectional"
    refiner: bool | None = None  # None: the weights' default (`WorldModel.refiner_by_default`), as in generate
    refiner_ab: bool = False  # score stage 1 ("model") and stage 1 + refiner ("model+refiner") on the same seeds
    student: bool | None = None  # the distilled student (ar mode); None: the weights' default, as in generate
    sigmas: tuple[float, ...] | None = None  # the DiT's σ list (steps unused); None: `steps` at the trained shift
    interval_k: float | None = None  # ar pyramid stagger; None: SANA-WM's 1/#chunks
    segment_frames: int | None = None  # long videos in segments of this length; None: the weights' default
    segment_color_match: bool | None = None  # None: the weights' default
    segment_refine_handoff: bool = False  # segments handed the refiner's last frame (the refiner then runs blind too)
    windows: Sequence[tuple[int, int]] = ()  # scored pose ranges [first, last]; empty: `frame_windows`
    noise_seed: int = 42
    refiner_seed: int = 42
    fov: float = DEFAULT_FOV

    def check(self) -> None:
        low = [s for s in (*self.seeds, *self.yaw_seeds) if s < HELD_OUT_SEED]
        if low:
            raise UserError(f"world seeds must be >= {HELD_OUT_SEED} (held out from training), got {low[:5]}")
        if not self.seeds and not self.yaw_seeds:
            raise UserError("no world seeds to evaluate")
        if self.num_frames < 2:
            raise UserError(f"num_frames must be >= 2, got {self.num_frames}")

    @property
    def stage1_refiner(self) -> bool:
        """Whether "model" (and "no_camera") run the refiner: not in an A/B run, where "model" is stage 1 alone."""
        return self.refiner and not self.refiner_ab

    def systems(self) -> tuple[str, ...]:
        return ((SYSTEMS[0], REFINED, *SYSTEMS[1:]) if self.refiner_ab else SYSTEMS) + (CEILING,)


@dataclass
class FollowingResult:
    """Scores of one run: per_seed[i] = {"seed", system: {window: {"psnr", "ssim"}}}; windows: name -> [first,
    last] pose index (inclusive); drop: system -> first-window minus last-window PSNR / SSIM (mean, std over seeds);
    yaw: per-seed shifts and agreement rates (empty without yaw seeds)."""

    settings: dict
    windows: dict[str, list[int]]
    systems: list[str] = field(default_factory=lambda: [*SYSTEMS, CEILING])
    per_seed: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    drop: dict = field(default_factory=dict)
    beats: dict = field(default_factory=dict)
    yaw: dict = field(default_factory=dict)
    camera_ablation: str = NO_CAMERA_NOTE
    # seed -> {system: frames, "truth": frames, "offsets": {name: pose of its frame 0}}, for the figures only
    examples: dict = field(default_factory=dict, repr=False)


def trajectory(action: str, num_frames: int) -> np.ndarray:
    """The action string repeated until it has `num_frames` poses: c2w float32 (num_frames, 4, 4), pose 0 = I.
    Repetition continues from where the previous pass ended (one rollout of the repeated string)."""
    per_pass = len(parse_action_string(action))
    repeats = -(-(num_frames - 1) // per_pass)
    return action_string_to_c2w(",".join([action] * max(1, repeats)))[:num_frames]


def first_frame(world: World, image_hw: tuple[int, int], fov: float = DEFAULT_FOV) -> tuple[np.ndarray, np.ndarray]:
    """(the world rendered at the identity pose uint8 [H, W, 3], its intrinsics K (3, 3)) at `image_hw`, the way
    `camworld generate` makes its first frame when no --image is given."""
    K = intrinsics_for_fov(fov, *image_hw)
    rgb, _ = world.render(np.eye(4), K, *image_hw)
    return rgb[0], K


def frame_windows(num_frames: int, fps: int = FPS) -> dict[str, list[int]]:
    """The two scored windows as name -> [first, last] pose index (inclusive). Pose 0 is the conditioning image
    and is never scored. Clips of >= 30 s: the first 5 s and the last 10 s; shorter: the first and last fifth."""
    last = num_frames - 1
    seconds = last / fps
    if seconds >= 30:
        return {"0-5 s": [1, 5 * fps], f"{seconds - 10:g}-{seconds:g} s": [last - 10 * fps, last]}
    fifth = max(1, last // 5)
    return {"first fifth": [1, fifth], "last fifth": [last - fifth + 1, last]}


def chosen_windows(ranges: Sequence[tuple[int, int]], num_frames: int) -> dict[str, list[int]]:
    """Windows named "poses a-b" for inclusive pose ranges (a, b) with 1 <= a <= b < num_frames."""
    bad = [r for r in ranges if not 1 <= r[0] <= r[1] < num_frames]
    if bad:
        raise UserError(f"windows must lie within poses 1..{num_frames - 1} (pose 0 is the input), got {bad[0]}")
    return {f"poses {a}-{b}": [a, b] for a, b in ranges}


def window_scores(frames: np.ndarray, truth: np.ndarray, windows: dict[str, list[int]], offset: int) -> dict:
    """PSNR (mean over frames, each capped at PSNR_CAP) and SSIM per window. frames / truth uint8 [F, H, W, 3]
    where frames[i] shows pose offset + i."""
    scores = {}
    for name, (first, last) in windows.items():
        pred = torch.as_tensor(frames[first - offset : last - offset + 1])
        true = torch.as_tensor(truth[first - offset : last - offset + 1])
        per_frame = [min(PSNR_CAP, psnr(p, t)) for p, t in zip(pred, true, strict=True)]
        scores[name] = {"psnr": float(np.mean(per_frame)), "ssim": float(ssim(pred, true))}
    return scores


class CameraBlind(torch.nn.Module):
    """A WorldDiT that ignores the cameras it is given (passes camera=None). It keeps its own `cfg`, so samplers
    that re-plan chunks on a shallow copy (`with_chunk_plan`) reach the wrapped model with that plan."""

    def __init__(self, dit: torch.nn.Module):
        super().__init__()
        self.dit = dit
        self.cfg = dit.cfg

    def _planned(self) -> torch.nn.Module:
        return with_chunk_plan(self.dit, self.cfg.chunk_first, self.cfg.chunk_size)

    def forward(self, x, sigma, text, text_mask, camera=None, *, causal=False, windowed=False):
        return self._planned()(x, sigma, text, text_mask, None, causal=causal, windowed=windowed)

    def init_state(self, batch: int):
        return self.dit.init_state(batch)

    def step(self, x_chunk, sigma_chunk, text, text_mask, camera_chunk, state):
        return self._planned().step(x_chunk, sigma_chunk, text, text_mask, None, state)


@contextlib.contextmanager
def camera_blind(model: WorldModel, refiner: bool = True, student: bool = False) -> Iterator[WorldModel]:
    """`model` with its DiT, its refiner (if it has one and `refiner`) and its distilled student (if `student`)
    replaced by `CameraBlind` views for the duration of the block. The refiner and student are loaded before the DiT
    is swapped: both are LoRAs merged into the real DiT."""
    dit = model.dit
    blind_refiner = CameraBlind(model.refiner()) if refiner and model.has_refiner else None
    blind_student = None
    if student:
        student_dit, student_cfg = model.student()
        blind_student = (CameraBlind(student_dit), student_cfg)
    model.dit = CameraBlind(dit)
    if blind_refiner is not None:
        model.refiner = lambda: blind_refiner  # shadows the method on this instance only
    if blind_student is not None:
        model.student = lambda: blind_student
    try:
        yield model
    finally:
        model.dit = dit
        if blind_refiner is not None:
            del model.refiner
        if blind_student is not None:
            del model.student


def _generate(model: WorldModel, image: np.ndarray, prompt: str, c2w: np.ndarray, K: np.ndarray,
              settings: FollowingSettings):
    return model.generate(image, prompt, c2w, np.repeat(K[None], len(c2w), axis=0), num_frames=len(c2w),
                          steps=settings.steps, cfg_scale=settings.cfg_scale, seed=settings.noise_seed,
                          refiner_seed=settings.refiner_seed, mode=settings.mode, refiner=settings.stage1_refiner,
                          student=settings.student, sigmas=settings.sigmas, interval_k=settings.interval_k,
                          segment_frames=settings.segment_frames,
                          segment_color_match=settings.segment_color_match,
                          segment_refine_handoff=settings.segment_refine_handoff, progress=False)


@torch.no_grad()
def tokenizer_roundtrip(model: WorldModel, frames: np.ndarray) -> np.ndarray:
    """uint8 video [F, H, W, 3] encoded and decoded by the model's VAE -> uint8 [F, H, W, 3] (F = stride·k + 1)."""
    vae = model.vae()
    latents = vae.encode(torch.as_tensor(frames, device=model.device)[None])
    return to_uint8(vae.decode(latents))[0].cpu().numpy()


def score_seed(model: WorldModel, seed: int, c2w: np.ndarray, windows: dict[str, list[int]],
               settings: FollowingSettings) -> tuple[dict, dict]:
    """({"seed", system: window scores}, system -> output frames plus "truth" and "offsets") for one world."""
    world = World(seed)
    image, K = first_frame(world, model.image_hw, settings.fov)
    result = _generate(model, image, world.caption, c2w, K, settings)
    blind_refiner = settings.stage1_refiner or settings.segment_refine_handoff
    with camera_blind(model, blind_refiner, student="student" in result.notes):
        blind = _generate(model, image, world.caption, c2w, K, settings)
    truth, _ = world.render(result.c2w, result.K, *model.image_hw)
    offset = len(c2w) - len(result.frames)  # 1 with the refiner (its output starts at pose 1)
    # the tokenizer takes stride·k + 1 frames: the whole trajectory, pose 0 being the conditioning image
    whole_truth = truth if offset == 0 else np.concatenate([result.first_frame[None], truth])
    outputs = {
        "model": result.frames,
        "repeat_first_frame": np.repeat(result.first_frame[None], len(truth), axis=0),
        "no_camera": blind.frames,
        CEILING: tokenizer_roundtrip(model, whole_truth)[offset:],
    }
    offsets = dict.fromkeys([*outputs, "truth"], offset)
    row = {"seed": seed, **{name: window_scores(frames, truth, windows, offset) for name, frames in outputs.items()}}
    # wall-clock of the two stage-1 generations (`GenerationResult.timings["total"]`), for the timings in
    # docs/results/generation.md
    row["seconds"] = {"model": round(result.timings["total"], 1), "no_camera": round(blind.timings["total"], 1)}
    if settings.refiner_ab:  # the stage-1 result covers every pose (offset 0); the refined one starts at pose 1
        refined = model.refine(result, world.caption, c2w, np.repeat(K[None], len(c2w), axis=0),
                               refiner_seed=settings.refiner_seed, progress=False)
        outputs[REFINED], offsets[REFINED] = refined.frames, 1
        row[REFINED] = window_scores(refined.frames, truth[1:], windows, 1)
    return row, {**outputs, "truth": truth, "offsets": offsets}


def horizontal_shift(first: np.ndarray, last: np.ndarray) -> float:
    """Horizontal motion (pixels, + = content moved right) from uint8 RGB `first` to `last` [H, W, 3], by phase
    correlation of the grayscale float32 images under a Hanning window."""
    a = cv2.cvtColor(np.ascontiguousarray(first), cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(np.ascontiguousarray(last), cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, _), _ = cv2.phaseCorrelate(a, b, window)
    return float(dx)


def horizontal_motion(frames: np.ndarray) -> float:
    """Horizontal image motion (pixels, + = content moved right) over uint8 RGB frames `[F, H, W, 3]`: the sum of
    `horizontal_shift` between consecutive frames."""
    return float(sum(horizontal_shift(a, b) for a, b in zip(frames[:-1], frames[1:], strict=True)))


def yaw_seed(model: WorldModel, seed: int, settings: FollowingSettings) -> dict:
    """Horizontal motion of the true and the generated clip under yaw left / right for one world: summed over
    consecutive frames ("motion") and first frame against last ("dx", end to end)."""
    world = World(seed)
    image, K = first_frame(world, model.image_hw, settings.fov)
    row: dict = {"seed": seed}
    for side, action in YAW_ACTIONS.items():
        c2w = action_string_to_c2w(action)
        c2w = c2w[: snap_num_frames(len(c2w), len(c2w), model.stride)]
        truth, _ = world.render(c2w, K, *model.image_hw)
        result = _generate(model, image, world.caption, c2w, K, settings)
        generated = np.concatenate([result.first_frame[None], result.frames[len(result.frames) - len(c2w) + 1:]])
        row[f"truth_motion_{side}"] = horizontal_motion(truth)
        row[f"model_motion_{side}"] = horizontal_motion(generated)
        row[f"truth_dx_{side}"] = horizontal_shift(image, truth[-1])
        row[f"model_dx_{side}"] = horizontal_shift(generated[0], generated[-1])
    return row


def _agrees(row: dict, who: str, measure: str = "motion") -> bool:
    return row[f"{who}_{measure}_left"] > 0 > row[f"{who}_{measure}_right"]


def summarize(result: FollowingResult) -> None:
    """Fill `summary` (mean / std over seeds), `drop` (first minus last window, mean / std over seeds), `beats`
    (model mean above both baselines' on PSNR and SSIM) and the yaw agreement rates, from `per_seed` and
    `yaw["per_seed"]`."""
    first, last = (list(result.windows)[i] for i in (0, -1)) if result.windows else (None, None)
    for system in result.systems if result.per_seed else ():
        result.summary[system] = {}
        for window in result.windows:
            stats = {}
            for metric in ("psnr", "ssim"):
                values = [row[system][window][metric] for row in result.per_seed]
                stats[f"{metric}_mean"], stats[f"{metric}_std"] = float(np.mean(values)), float(np.std(values))
            result.summary[system][window] = stats
        result.drop[system] = {}
        for metric in ("psnr", "ssim"):
            values = [row[system][first][metric] - row[system][last][metric] for row in result.per_seed]
            result.drop[system][f"{metric}_mean"] = float(np.mean(values))
            result.drop[system][f"{metric}_std"] = float(np.std(values))
    for window in result.windows:
        mine = result.summary["model"][window]
        verdict = {base: all(mine[f"{m}_mean"] > result.summary[base][window][f"{m}_mean"] for m in ("psnr", "ssim"))
                   for base in SYSTEMS[1:]}
        result.beats[window] = {**verdict, "both": all(verdict.values())}
    rows = result.yaw.get("per_seed", [])
    if rows:
        for measure, suffix in (("motion", ""), ("dx", "_end_to_end")):
            for who in ("truth", "model"):
                result.yaw[f"{who}_agreement{suffix}"] = float(np.mean([_agrees(r, who, measure) for r in rows]))
        result.yaw["model_passes_95"] = result.yaw["model_agreement"] >= 0.95
        # stricter: each motion at least STRONG_FRACTION of that world's true motion, in its direction
        result.yaw["model_agreement_strong"] = float(np.mean([
            all(r[f"model_motion_{side}"] / r[f"truth_motion_{side}"] >= STRONG_FRACTION for side in YAW_ACTIONS)
            for r in rows]))
        # how far the model turns the image, relative to the truth (same sign = same direction)
        result.yaw["motion_ratio"] = {side: float(np.mean([r[f"model_motion_{side}"] for r in rows])
                                                 / np.mean([r[f"truth_motion_{side}"] for r in rows]))
                                      for side in YAW_ACTIONS}


def run_following(model: WorldModel, settings: FollowingSettings, *, progress: bool = True,
                  keep_examples: int = 2) -> FollowingResult:
    """The whole measurement on `model`; frames of the first `keep_examples` seeds are kept for the figures.
    By default "model" is what `camworld generate` makes: with the refiner only where the weights turn it on by
    default (`WorldModel.refiner_by_default`, set from the refiner A/B); settings.refiner True or False overrides."""
    settings.check()
    if settings.refiner is None:
        settings = replace(settings, refiner=model.refiner_by_default)
    if settings.cfg_scale is None:
        settings = replace(settings, cfg_scale=model.default_cfg_scale)
    if settings.refiner and not model.has_refiner:
        raise UserError(f"the refiner was asked for, but {model.path} has no refiner/")
    if settings.seeds:
        num_frames = snap_num_frames(settings.num_frames, settings.num_frames, model.stride)
        c2w = trajectory(settings.action, num_frames)
        windows = chosen_windows(settings.windows, num_frames) if settings.windows else frame_windows(num_frames)
    else:
        c2w, windows = None, {}
    if settings.refiner_ab and not model.has_refiner:
        raise UserError(f"the refiner A/B needs weights with a refiner/, {model.path} has none")
    result = FollowingResult(settings={**asdict(settings), "seeds": list(settings.seeds),
                                       "yaw_seeds": list(settings.yaw_seeds), "weights": str(model.path),
                                       "image_hw": list(model.image_hw), "refiner_used": settings.stage1_refiner and
                                       model.has_refiner, "num_frames_used": None if c2w is None else len(c2w)},
                             windows=windows, systems=list(settings.systems()))
    for seed in tqdm(settings.seeds, desc="follow (model + no-camera)", disable=not progress):
        row, frames = score_seed(model, seed, c2w, windows, settings)
        result.per_seed.append(row)
        if len(result.examples) < keep_examples:
            result.examples[seed] = frames
    yaw_rows = [yaw_seed(model, seed, settings)
                for seed in tqdm(settings.yaw_seeds, desc="yaw a-32 / d-32", disable=not progress)]
    if yaw_rows:
        result.yaw["per_seed"] = yaw_rows
    if result.per_seed or yaw_rows:
        summarize(result)
    return result


def markdown_table(result: FollowingResult) -> str:
    """The summary as a markdown table (mean ± std over seeds), the verdicts and the yaw rates."""
    n = len(result.per_seed)
    lines = []
    if n:
        lines += [f"Frames scored per window (pose indices, inclusive; {FPS} fps): "
                  + "; ".join(f"{w}: {a}-{b}" for w, (a, b) in result.windows.items()),
                  f"Camera ablation: {result.camera_ablation}",
                  f"{CEILING} = the true video through the tokenizer and back: the ceiling of any generator in its "
                  "latent space, not a baseline", "",
                  f"| system | window | PSNR (dB), mean ± std over {n} seeds | SSIM |", "|---|---|---|---|"]
        for system in result.systems:
            for window, s in result.summary[system].items():
                lines.append(f"| {system} | {window} | {s['psnr_mean']:.2f} ± {s['psnr_std']:.2f} | "
                             f"{s['ssim_mean']:.4f} ± {s['ssim_std']:.4f} |")
        first, last = list(result.windows)[0], list(result.windows)[-1]
        lines += ["", f"| system | drop {first} minus {last}: PSNR (dB) | SSIM |", "|---|---|---|"]
        for system in result.systems:
            d = result.drop[system]
            lines.append(f"| {system} | {d['psnr_mean']:.2f} ± {d['psnr_std']:.2f} | "
                         f"{d['ssim_mean']:.4f} ± {d['ssim_std']:.4f} |")
        lines.append("")
        for window, verdict in result.beats.items():
            words = ", ".join(f"{base}: {'yes' if verdict[base] else 'no'}" for base in SYSTEMS[1:])
            lines.append(f"{window}: model beats (PSNR and SSIM means) {words}; both: "
                         f"{'YES' if verdict['both'] else 'NO'}")
    if result.yaw:
        y = result.yaw
        rows = y["per_seed"]
        lines += ["", f"Yaw test ({len(rows)} seeds, {YAW_ACTIONS['left']} vs {YAW_ACTIONS['right']}, phase "
                  f"correlation summed over consecutive frames, + = content moves right):",
                  f"  ground truth: yaw left -> + and yaw right -> - in {y['truth_agreement']:.1%}",
                  f"  model:        opposite motion in the right directions in {y['model_agreement']:.1%} "
                  f"(needs >= 95%: {'PASS' if y['model_passes_95'] else 'FAIL'}); mean motion / true motion: "
                  f"left {y['motion_ratio']['left']:.2f}, right {y['motion_ratio']['right']:.2f}",
                  f"  model, each motion at least {STRONG_FRACTION:.0%} of the true one: "
                  f"{y['model_agreement_strong']:.1%}",
                  f"  first frame against last only (end to end): truth {y['truth_agreement_end_to_end']:.1%}, "
                  f"model {y['model_agreement_end_to_end']:.1%}"]
    return "\n".join(lines)


def _save_figure(fig, path: Path) -> Path:
    """Lay out, write atomically at 120 dpi and close a matplotlib figure; returns `path`."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path


def _drift_figure(result: FollowingResult, path: Path) -> Path:
    """PSNR and SSIM against the truth per window, mean ± std over seeds, at each window's middle second."""
    import matplotlib.pyplot as plt

    seconds = [(a + b) / 2 / FPS for a, b in result.windows.values()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, metric in zip(axes, ("psnr", "ssim"), strict=True):
        for system in result.systems:
            stats = [result.summary[system][w] for w in result.windows]
            mean = np.array([s[f"{metric}_mean"] for s in stats])
            std = np.array([s[f"{metric}_std"] for s in stats])
            ax.plot(seconds, mean, marker="o", ms=3, label=system)
            ax.fill_between(seconds, mean - std, mean + std, alpha=0.15)
        ax.set_xlabel("time (s, window middle)")
        ax.set_title(f"{'PSNR (dB)' if metric == 'psnr' else 'SSIM'} against the true render, "
                     f"worlds: {len(result.per_seed)}", fontsize=9)
    axes[0].legend(fontsize=7)
    return _save_figure(fig, path)


def write_report(result: FollowingResult, out_dir: str | Path, num_times: int = 4) -> list[Path]:
    """results.json, frames.png (generated / no-camera / true at a few times for the kept seeds), scores.png
    (bar chart of the window means with std error bars), drift.png (the same as lines over time, when more than
    two windows are scored) and yaw.png (each world's motion under yaw left against
    yaw right, true and generated) into `out_dir`, atomically. Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = [out_dir / "results.json"]
    payload = {f.name: getattr(result, f.name) for f in fields(result) if f.name != "examples"}
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    if result.examples:
        shown = tuple(s for s in ("model", REFINED, "no_camera") if s in result.systems) + ("truth",)
        seeds = list(result.examples)
        fig, axes = plt.subplots(len(seeds) * len(shown), num_times, squeeze=False,
                                 figsize=(2.4 * num_times, 1.6 * len(seeds) * len(shown)))
        for i, seed in enumerate(seeds):
            frames = result.examples[seed]
            offsets = frames["offsets"]
            first_pose = max(offsets[name] for name in shown)
            last_pose = offsets["truth"] + len(frames["truth"]) - 1
            poses = np.linspace(first_pose, last_pose, num_times).round().astype(int)
            for j, name in enumerate(shown):
                for k, pose in enumerate(poses):
                    ax = axes[i * len(shown) + j, k]
                    ax.imshow(frames[name][pose - offsets[name]])
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title(f"seed {seed} {name} pose {pose}", fontsize=6)
        paths.append(_save_figure(fig, out_dir / "frames.png"))
    if result.summary:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        width = 0.8 / len(result.systems)
        windows = list(result.windows)
        for ax, metric in zip(axes, ("psnr", "ssim"), strict=True):
            for i, system in enumerate(result.systems):
                stats = [result.summary[system][w] for w in windows]
                ax.bar(np.arange(len(windows)) + i * width, [s[f"{metric}_mean"] for s in stats], width,
                       yerr=[s[f"{metric}_std"] for s in stats], label=system, capsize=3)
            ax.set_xticks(np.arange(len(windows)) + width * (len(result.systems) - 1) / 2, windows)
            ax.set_title("PSNR (dB)" if metric == "psnr" else "SSIM")
        axes[0].legend(fontsize=7)
        paths.append(_save_figure(fig, out_dir / "scores.png"))
    if result.summary and len(result.windows) > 2:
        paths.append(_drift_figure(result, out_dir / "drift.png"))
    if result.yaw:
        rows = result.yaw["per_seed"]
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        for who, marker in (("truth", "x"), ("model", "o")):
            ax.scatter([r[f"{who}_motion_left"] for r in rows], [r[f"{who}_motion_right"] for r in rows],
                       marker=marker, s=18, label=who)
        ax.axhline(0, color="gray", lw=0.6)
        ax.axvline(0, color="gray", lw=0.6)
        ax.set_xlabel(f"motion under {YAW_ACTIONS['left']} (px, + = right)")
        ax.set_ylabel(f"motion under {YAW_ACTIONS['right']} (px)")
        ax.set_title(f"yaw test, {len(rows)} worlds: correct = lower right", fontsize=8)
        ax.legend(fontsize=7)
        paths.append(_save_figure(fig, out_dir / "yaw.png"))
    return paths
