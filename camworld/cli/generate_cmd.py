"""`camworld generate`: a video from a first frame, a prompt and a camera path (SANA-WM's inference CLI, §4, §10.4).

The first frame is `--image` (any size; turned upright by its EXIF orientation, resized and centre-cropped to the
model resolution), or else a render of the procedural world `--world-seed` at the start pose (camworld's default
data source; its scene caption is the default prompt). The camera path is an action string (`--action`, v3 DSL)
or a c2w file (`--camera`); intrinsics come from `--intrinsics` (pixels of the image) or a horizontal `--fov`.
`--num_frames` is snapped to stride·k + 1 and may not exceed the trajectory (default: the trajectory, at most 961
frames).

Writes into `--output_dir`: video.mp4 (with the WASD/IJKL key overlay, or a motion compass for --camera, unless
--no_action_overlay), c2w.npy and intrinsics.npy (one pose and K per output frame, in output pixels) and
generation.json (settings, the sizes used and the time of each phase). Every file is written atomically. With
--stream (ar mode) the video grows as each chunk is decoded in video.streaming.mp4 (a fragmented MP4 that players
read while it grows), renamed to video.mp4 when complete and deleted on failure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from camworld.cli.sampler_args import add_schedule_args
from camworld.cli.scene_args import add_scene_args, add_speed_args, read_prompt
from camworld.cli.threads import check_threads, set_threads

DEFAULT_MAX_FRAMES = 961


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate a camera-controlled video",
                              description=__doc__.splitlines()[0])
    add_scene_args(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--action", help='action string, e.g. "w-100,dw-60,w-100,aw-60"')
    source.add_argument("--camera", help="camera-to-world poses .npy (F, 4, 4), OpenCV convention")
    p.add_argument("--intrinsics", default=None, help="K .npy (3,3) / (F,3,3) / (4,) / (F,4) in pixels of the image")
    p.add_argument("--fov", type=float, default=70.0, help="horizontal field of view (deg) when no --intrinsics")
    add_speed_args(p)
    p.add_argument("--num_frames", type=int, default=None,
                   help=f"frames to generate (default: the trajectory, at most {DEFAULT_MAX_FRAMES})")
    p.add_argument("--fps", type=int, default=16)
    p.add_argument("--step", type=int, default=None,
                   help="denoising steps (default 60; with --mode ar and no --step / --flow_shift / --sigmas / "
                        "--interval_k, the schedule packaged with the weights, if any)")
    p.add_argument("--cfg_scale", type=float, default=None,
                   help="text guidance scale (default: the one packaged with the weights; SANA-WM 5.0)")
    p.add_argument("--flow_shift", type=float, default=None,
                   help="sampling shift (default: the shift the weights were trained with; SANA-WM's is 9.8)")
    add_schedule_args(p)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--mode", default="bidirectional", help="bidirectional | ar")
    distilled = p.add_mutually_exclusive_group()
    distilled.add_argument("--student", action="store_true",
                           help="ar only: sample with the distilled 4-step student of the weights (student/); "
                                "--step, --cfg_scale and --flow_shift are then not used")
    distilled.add_argument("--no_student", action="store_true",
                           help="use the DiT even if the weights turn their student on by default")
    p.add_argument("--stream", action="store_true", help="ar only: write each chunk to the video as it is made")
    use = p.add_mutually_exclusive_group()
    use.add_argument("--no_refiner", action="store_true", help="skip the refiner")
    use.add_argument("--refiner", action="store_true",
                     help="run the refiner even if the weights have it off by default")
    p.add_argument("--no_action_overlay", action="store_true")
    p.add_argument("--offload_vae", action="store_true", help="free the VAE between encode and decode")
    p.add_argument("--offload_refiner", action="store_true", help="free the refiner after use")
    p.add_argument("--checkpoint", default=None, help="weights folder (vae/, dit/, refiner/); default: bundled tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's, one per core); 1 on cores shared with other jobs")
    p.add_argument("--output_dir", required=True)
    p.set_defaults(func=run)


def _trajectory(args) -> tuple[np.ndarray, object]:
    """(c2w (N, 4, 4), the overlay painter or None)."""
    from camworld.camera import action_string_to_c2w, load_c2w, relativize
    from camworld.overlay import KeyOverlay, PoseOverlay

    if args.action is not None:
        c2w = action_string_to_c2w(args.action, translation_speed=args.translation_speed,
                                   rotation_speed_deg=args.rotation_speed_deg)
        painter = KeyOverlay(args.action)
    else:
        c2w = load_c2w(args.camera)
        painter = PoseOverlay(relativize(c2w))
    return c2w, (None if args.no_action_overlay else painter)


def _check_args(args) -> None:
    from camworld.errors import UserError
    from camworld.pipeline import MODES
    from camworld.samplers.euler import check_sigmas

    if args.mode not in MODES:
        raise UserError(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    if args.stream and args.mode != "ar":
        raise UserError("--stream needs --mode ar")
    if args.student and args.mode != "ar":
        raise UserError("--student needs --mode ar (the student samples chunk by chunk)")
    if args.student and args.cfg_scale not in (None, 1.0):
        raise UserError("--student has its guidance baked in: drop --cfg_scale")
    if args.student and (args.sigmas is not None or args.interval_k is not None):
        raise UserError("--student samples with its own σ list, chunk by chunk: drop --sigmas / --interval_k")
    if args.interval_k is not None and (args.mode != "ar" or args.interval_k < 0):
        raise UserError(f"--interval_k needs --mode ar and a value >= 0, got {args.interval_k} in {args.mode}")
    if args.sigmas is not None:
        check_sigmas(args.sigmas)
    if (args.fps <= 0 or (args.step is not None and args.step < 1)
            or (args.cfg_scale is not None and args.cfg_scale <= 0)
            or (args.flow_shift is not None and args.flow_shift <= 0)):
        raise UserError("--fps and --step must be positive, --cfg_scale and --flow_shift > 0")
    if args.num_frames is not None and args.num_frames < 1:
        raise UserError(f"--num_frames must be positive, got {args.num_frames}")
    check_threads(args.threads)


def run(args: argparse.Namespace) -> int:
    import time

    from camworld.camera import load_intrinsics
    from camworld.data.make import intrinsics_for_fov
    from camworld.errors import UserError
    from camworld.fileio import atomic_path
    from camworld.pipeline import WorldModel
    from camworld.pipeline_inputs import load_image, snap_num_frames
    from camworld.video import Mp4Writer
    from camworld.world import World

    start = time.perf_counter()
    _check_args(args)
    set_threads(args.threads)
    c2w, painter = _trajectory(args)
    image = load_image(args.image) if args.image is not None else None
    model = WorldModel.from_pretrained(args.checkpoint, device=args.device)
    use_refiner = False if args.no_refiner else (True if args.refiner else None)  # None: the weights' default
    shift = model.default_flow_shift if args.flow_shift is None else args.flow_shift
    own_schedule = args.sigmas is not None or args.interval_k is not None  # asks for the DiT, not the student
    student = args.student or (args.mode == "ar" and not args.no_student and not own_schedule
                               and model.student_by_default)
    guidance = 1.0 if student else model.default_cfg_scale if args.cfg_scale is None else args.cfg_scale
    if student:
        model.student()  # a missing or mismatched student/ is reported before anything is generated
    requested = args.num_frames if args.num_frames is not None else min(len(c2w), DEFAULT_MAX_FRAMES)
    num_frames = snap_num_frames(requested, len(c2w), model.stride)
    source_hw = image.shape[:2] if image is not None else model.image_hw
    if args.intrinsics is not None:
        K = load_intrinsics(args.intrinsics, num_frames)
    else:
        if not 0 < args.fov < 180:
            raise UserError(f"--fov must be in (0, 180) degrees, got {args.fov}")
        K = np.repeat(intrinsics_for_fov(args.fov, *source_hw)[None], num_frames, axis=0)
    world = None
    if image is None:
        world = World(args.world_seed)
        image, _ = world.render(np.eye(4), K[0], *model.image_hw)
        image = image[0]
    prompt = read_prompt(args, world)

    out_dir = Path(args.output_dir)
    video_path = out_dir / "video.mp4"
    live_path = out_dir / "video.streaming.mp4"
    writers: list[Mp4Writer] = []  # opened on the first frames, so a rejected input leaves nothing behind

    def write(frames: np.ndarray, pose_index: int) -> None:
        if not writers:
            writers.append(Mp4Writer(live_path if args.stream else video_path, fps=args.fps, streaming=args.stream))
        writers[0].write(painter.paint(frames, pose_index) if painter is not None else frames)

    try:
        result = model.generate(
            image, prompt, c2w, K, num_frames=num_frames, steps=args.step, cfg_scale=guidance,
            flow_shift=args.flow_shift, seed=args.seed, mode=args.mode, refiner=use_refiner,
            student=student, sigmas=args.sigmas, interval_k=args.interval_k, segment_frames=args.segment_frames,
            segment_color_match=args.segment_color_match, segment_refine_handoff=args.segment_refine_handoff,
            stream=args.stream, offload_vae=args.offload_vae, offload_refiner=args.offload_refiner, on_frames=write,
        )
        begin = time.perf_counter()
        writers[0].close()
        if args.stream:
            live_path.replace(video_path)
    except BaseException:
        for writer in writers:
            writer.discard()
        raise
    result.timings["write_video"] = time.perf_counter() - begin
    with atomic_path(out_dir / "c2w.npy") as tmp:
        np.save(tmp, result.c2w)
    with atomic_path(out_dir / "intrinsics.npy") as tmp:
        np.save(tmp, result.K)
    result.timings["load"] = model.load_seconds
    result.timings["command"] = time.perf_counter() - start
    settings = {
        "image": args.image, "world_seed": None if args.image is not None else args.world_seed,
        "world_caption": world.caption if world is not None else None, "prompt": prompt,
        "action": args.action, "camera": args.camera, "intrinsics": args.intrinsics,
        "fov": args.fov if args.intrinsics is None else None, "translation_speed": args.translation_speed,
        "rotation_speed_deg": args.rotation_speed_deg, "num_frames_requested": args.num_frames,
        "num_frames_sampled": result.num_frames, "num_frames_written": int(len(result.c2w)),
        "fps": args.fps, "step": None if student or result.notes.get("sigmas") else args.step or 60,
        "cfg_scale": guidance, "flow_shift": shift, "sigmas": args.sigmas,
        "interval_k": args.interval_k, "schedule": result.notes.get("schedule"), "student": result.notes.get("student"),
        "seed": args.seed, "mode": args.mode, "stream": args.stream, "refiner": result.refined,
        "segment_frames": (model.default_segment_frames(args.mode) if args.segment_frames is None
                           else args.segment_frames),
        "segments": [list(bounds) for bounds in result.segment_bounds],
        "segment_color_match": (model.cfg.sampling.segment_color_match if args.segment_color_match is None
                                else args.segment_color_match) if result.segments else None,
        "segment_refine_handoff": args.segment_refine_handoff if result.segments and not result.refined else None,
        "action_overlay": painter is not None, "offload_vae": args.offload_vae,
        "offload_refiner": args.offload_refiner, "offload_notes": result.notes,
        "checkpoint": str(model.path), "device": args.device,
        "image_hw": list(model.image_hw), "latent_hw": list(model.grid_hw), "source_hw": list(source_hw),
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
    }
    with atomic_path(out_dir / "generation.json") as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
    print(f"wrote {video_path} ({len(result.c2w)} frames, {model.image_hw[0]}x{model.image_hw[1]}, "
          f"{result.timings['total']:.1f} s generating)")
    return 0
