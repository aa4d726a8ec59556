"""`camworld play`: drive the world model with the keyboard, one chunk (0.75 s of video) per step.

Each line read from standard input is a list of steps, separated by spaces or commas: held keys of WASD/IJKL
("w", "dw", "none" or "." for none) with an optional repeat ("w*4"). An empty line repeats the previous line; "q"
ends the session. `--actions "w*4,dw*2,a"` plays a fixed list instead, checked before anything is made. `--live`
reads key presses from the terminal without Enter (`camworld.cli.live_keys`): hold keys and the world moves.

While the session runs, video.streaming.mp4 in --output_dir grows by each step (a fragmented MP4 that players read
while it grows) and latest.png holds the newest frame, 4x enlarged. At the end (q, end of input or Ctrl-C after a
finished step) the video is renamed to video.mp4, and c2w.npy, intrinsics.npy, steps.png (the last frame of each
step, at most 24 of them evenly spaced, labelled with the keys) and play.json are written: the settings, each step's
keys and time, and the `camworld generate` command that makes the same frames from the session's action string
(`camworld.play`). A failure inside a step deletes the streaming file; a bad line in an
interactive session is reported in one line and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from camworld.cli.live_keys import live_steps
from camworld.cli.scene_args import add_scene_args, add_speed_args, read_prompt
from camworld.cli.threads import check_threads, set_threads

QUIT = ("q", "quit", "exit")
PREVIEW_SCALE = 4
MAX_REPEAT = 1000
SHEET_TILES = 24


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("play", help="drive the world model with WASD/IJKL keys, one chunk per step",
                              description=__doc__.splitlines()[0])
    add_scene_args(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--actions", default=None,
                        help='steps to play instead of reading standard input, e.g. "w*4,dw*2,a,none"')
    source.add_argument("--live", action="store_true",
                        help="read held keys from the terminal without Enter: the keys typed during a step are "
                             "held in the next; space: a step with no key; q: quit")
    p.add_argument("--intrinsics", default=None, help="one K .npy, (3,3) or (4,), in pixels of the image")
    p.add_argument("--fov", type=float, default=70.0, help="horizontal field of view (deg) when no --intrinsics")
    add_speed_args(p)
    p.add_argument("--fps", type=int, default=16)
    p.add_argument("--step", type=int, default=None,
                   help="Euler steps per chunk (default: the ar σ list packaged with the weights, else 60)")
    p.add_argument("--cfg_scale", type=float, default=None, help="text guidance (default: the weights')")
    p.add_argument("--flow_shift", type=float, default=None, help="sampling shift (default: the weights')")
    p.add_argument("--student", action="store_true", help="sample with the distilled 4-step student")
    p.add_argument("--segment_frames", type=int, default=None,
                   help="restart from the last frame every this many frames (default: the weights' "
                        "sampling.ar_segment_frames; 0: one pass)")
    p.add_argument("--segment_color_match", action="store_true", default=None,
                   help="match each restart frame's colours to the first frame's")
    p.add_argument("--segment_refine_handoff", action="store_true",
                   help="restart from the refiner's last frame of the finished segment (its step takes a refiner "
                        "pass longer; the frames shown stay stage 1's)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no_action_overlay", action="store_true")
    p.add_argument("--checkpoint", default=None, help="weights folder; default: bundled tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")
    p.add_argument("--output_dir", required=True)
    p.set_defaults(func=run)


def parse_steps(line: str) -> list[str]:
    """One input line -> the held keys of each step ("w*3 dw" -> ["w", "w", "w", "dw"]); a UserError names the
    first bad token."""
    from camworld.errors import UserError
    from camworld.play import step_keys

    steps: list[str] = []
    for token in line.replace(",", " ").split():
        keys, _, count = token.partition("*")
        if count and not (count.isascii() and count.isdigit() and 1 <= int(count) <= MAX_REPEAT):
            raise UserError(f"step {token!r}: the repeat after '*' must be an integer in 1..{MAX_REPEAT}")
        try:
            steps.extend([step_keys(keys)] * (int(count) if count else 1))
        except UserError as exc:
            raise UserError(f"step {token!r}: {exc}") from None
    return steps


def _intrinsics(args, source_hw) -> np.ndarray:
    from camworld.camera import load_intrinsics
    from camworld.data.make import intrinsics_for_fov
    from camworld.errors import UserError

    if args.intrinsics is not None:
        K = load_intrinsics(args.intrinsics, 1)
        return K[0]
    if not 0 < args.fov < 180:
        raise UserError(f"--fov must be in (0, 180) degrees, got {args.fov}")
    return intrinsics_for_fov(args.fov, *source_hw)


def _lines(args):
    """The scripted steps as one line, or standard input line by line (with a prompt on a terminal)."""
    if args.actions is not None:
        yield args.actions
        return
    if args.live:
        print("hold keys (w a s d i j k l), space for none, q to quit", file=sys.stderr)
        yield from live_steps()
        return
    interactive = sys.stdin.isatty()
    if interactive:
        print("keys per step (w a s d i j k l, 'none'), e.g. 'w', 'dw*3'; empty line: again; q: quit",
              file=sys.stderr)
    while True:
        if interactive:
            print("play> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        yield line


def run(args: argparse.Namespace) -> int:
    from camworld.errors import UserError
    from camworld.overlay import KeyOverlay
    from camworld.pipeline import WorldModel
    from camworld.pipeline_inputs import load_image
    from camworld.play import PlaySession
    from camworld.video import Mp4Writer, contact_sheet, save_png
    from camworld.world import World

    start = time.perf_counter()
    check_threads(args.threads)
    if args.live and not sys.stdin.isatty():
        raise UserError("--live reads key presses from a terminal; standard input is not one")
    if args.fps <= 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    if args.actions is not None and not parse_steps(args.actions):
        raise UserError("--actions holds no steps")
    set_threads(args.threads)
    image = load_image(args.image) if args.image is not None else None
    model = WorldModel.from_pretrained(args.checkpoint, device=args.device)
    source_hw = image.shape[:2] if image is not None else model.image_hw
    K = _intrinsics(args, source_hw)
    world = None
    if image is None:
        world = World(args.world_seed)
        image = world.render(np.eye(4), K, *model.image_hw)[0][0]
    prompt = read_prompt(args, world)
    session = PlaySession(model, image, prompt, K, seed=args.seed, translation_speed=args.translation_speed,
                          rotation_speed_deg=args.rotation_speed_deg, steps=args.step, flow_shift=args.flow_shift,
                          cfg_scale=args.cfg_scale, student=True if args.student else None,
                          segment_frames=args.segment_frames, segment_color_match=args.segment_color_match,
                          segment_refine_handoff=args.segment_refine_handoff)

    out_dir = Path(args.output_dir)
    live_path, video_path = out_dir / "video.streaming.mp4", out_dir / "video.mp4"
    writers: list[Mp4Writer] = []
    log: list[dict] = []
    last_frames: list[np.ndarray] = []
    interrupted = False
    previous: list[str] = []
    try:
        for line in _lines(args):
            if line.strip().lower() in QUIT:
                break
            try:
                steps = parse_steps(line) if line.strip() else previous
            except UserError as exc:
                if args.actions is not None:
                    raise
                print(f"camworld play: {exc} (line skipped)", file=sys.stderr)
                continue
            previous = steps
            for keys in steps:
                made = session.step(keys)
                frames = made.frames
                if not args.no_action_overlay:
                    frames = KeyOverlay(session.action_string).paint(frames, made.first_pose)
                if not writers:
                    writers.append(Mp4Writer(live_path, fps=args.fps, streaming=True))
                writers[0].write(frames)
                save_png(out_dir / "latest.png", np.kron(frames[-1], np.ones((PREVIEW_SCALE, PREVIEW_SCALE, 1),
                                                                            dtype=np.uint8)))
                log.append({"keys": made.keys, "first_pose": made.first_pose, "frames": len(made.frames),
                            "seconds": round(made.seconds, 3)})
                last_frames.append(made.frames[-1])
                print(f"step {len(log)}: {made.keys:<4} poses {made.first_pose}-{session.num_poses - 1}, "
                      f"{made.seconds:.1f} s ({len(made.frames) / made.seconds:.1f} frames/s)", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        for writer in writers:
            writer.discard()
        with contextlib.suppress(FileNotFoundError):
            (out_dir / "latest.png").unlink()
        raise
    if not writers:
        print("camworld play: no step was made; nothing written", file=sys.stderr)
        return 130 if interrupted else 0
    writers[0].close()
    live_path.replace(video_path)
    shown = np.unique(np.linspace(0, len(log) - 1, min(len(log), SHEET_TILES)).round().astype(int))
    save_png(out_dir / "steps.png", contact_sheet(
        np.stack([last_frames[i] for i in shown]), cols=6,
        labels=[f"{i + 1}: {log[i]['keys']} ({log[i]['first_pose'] + log[i]['frames'] - 1})" for i in shown]))
    _write_results(args, session, out_dir, log, world, prompt, source_hw, time.perf_counter() - start)
    print(f"wrote {video_path} ({session.num_poses} frames, {len(log)} steps, {session.seconds:.1f} s generating)")
    return 130 if interrupted else 0


def _write_results(args, session, out_dir: Path, log: list[dict], world, prompt: str, source_hw,
                   seconds: float) -> None:
    """c2w.npy, intrinsics.npy and play.json (settings, steps, and the generate command that remakes the video)."""
    from camworld.fileio import atomic_path

    with atomic_path(out_dir / "c2w.npy") as tmp:
        np.save(tmp, session.c2w)
    with atomic_path(out_dir / "intrinsics.npy") as tmp:
        np.save(tmp, session.K)
    # the σ list and interval 1 spelt out: generate's own default for ar with explicit steps is the pyramid
    schedule = ["--student"] if session.student else ["--sigmas", ",".join(repr(v) for v in session.sigmas),
                                                    "--interval_k", "1", "--cfg_scale", repr(session.cfg_scale)]
    remake = ["camworld", "generate", "--mode", "ar", "--stream", "--no_refiner", "--action", session.action_string,
              "--num_frames", str(session.num_poses), "--seed", str(args.seed), *schedule,
              "--translation_speed", repr(args.translation_speed),
              "--rotation_speed_deg", repr(args.rotation_speed_deg), "--fps", str(args.fps),
              "--segment_frames", str(session.segment_frames), "--prompt-text", prompt]
    remake += ["--image", args.image] if args.image is not None else ["--world-seed", str(args.world_seed)]
    remake += ["--intrinsics", args.intrinsics] if args.intrinsics is not None else ["--fov", repr(args.fov)]
    remake += [flag for flag, on in (("--segment_color_match", session.color_match),
                                     ("--segment_refine_handoff", session.refine_handoff),
                                     ("--no_action_overlay", args.no_action_overlay)) if on]
    if args.checkpoint is not None:
        remake += ["--checkpoint", args.checkpoint]
    settings = {
        "image": args.image, "world_seed": None if args.image is not None else args.world_seed,
        "world_caption": world.caption if world is not None else None, "prompt": prompt,
        "action_string": session.action_string, "num_frames": session.num_poses, "steps": log,
        "schedule": session.schedule, "sigmas": session.sigmas, "cfg_scale": session.cfg_scale,
        "seed": args.seed, "segment_frames": session.segment_frames, "segments": session.segments_started,
        "segment_color_match": session.color_match, "segment_refine_handoff": session.refine_handoff,
        "translation_speed": args.translation_speed,
        "rotation_speed_deg": args.rotation_speed_deg, "fps": args.fps, "fov": args.fov,
        "intrinsics": args.intrinsics, "checkpoint": str(session.model.path), "device": args.device,
        "image_hw": list(session.model.image_hw), "source_hw": list(source_hw),
        "seconds_generating": round(session.seconds, 3), "seconds_total": round(seconds, 3),
        "same_frames_as": shlex.join(remake),
    }
    with atomic_path(out_dir / "play.json") as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
