"""Does the model follow the camera? PSNR / SSIM of generated frames against the ground-truth render of the same
trajectory on held-out worlds (seeds >= 10000), next to two baselines measured in the same run: the first frame
repeated and the same weights with no camera conditioning; plus the yaw-direction test ("a-32" vs "d-32", phase
correlation summed over consecutive frames). The measurement lives in `camworld.eval.camera_following`; this
script parses flags, prints the markdown table and writes results.json, frames.png, scores.png, drift.png (with
more than two windows) and yaw.png into --out.

    python3 benchmarks/camera_following.py [--weights DIR] [--seeds 8] [--num_frames 961] [--yaw-seeds 40]
        [--steps 60 | --sigmas 1,0.96,0.889,0.727,0] [--interval_k K] [--cfg_scale S] [--mode bidirectional|ar]
        [--no_refiner | --refiner | --refiner-ab] [--window 1-80 ...] [--out DIR]

--refiner-ab scores stage 1 alone ("model") and the same stage-1 latents refined ("model+refiner") on the same seeds,
with the first-vs-last window drop of each (sana_wm.md §5).
"""

from __future__ import annotations

import argparse
import sys

import torch

from camworld.cli.sampler_args import add_schedule_args
from camworld.errors import UserError
from camworld.eval.camera_following import (
    DEFAULT_ACTION,
    HELD_OUT_SEED,
    FollowingSettings,
    markdown_table,
    run_following,
    write_report,
)
from camworld.pipeline import MODES, WorldModel


def pose_range(text: str) -> tuple[int, int]:
    try:
        first, last = (int(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST pose indices, got {text!r}") from None
    return first, last


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="weights folder (default: bundled camworld/assets/weights/tiny)")
    p.add_argument("--seeds", type=int, default=8, help="number of worlds for the PSNR/SSIM table")
    p.add_argument("--first-seed", dest="first_seed", type=int, default=HELD_OUT_SEED,
                   help=f"first world seed (>= {HELD_OUT_SEED}); the yaw test uses the seeds after the table's")
    p.add_argument("--num_frames", type=int, default=961, help="poses of the table's trajectory (snapped)")
    p.add_argument("--action", default=DEFAULT_ACTION, help="action string, repeated to --num_frames")
    p.add_argument("--yaw-seeds", dest="yaw_seeds", type=int, default=40, help="worlds for the yaw test (0: skip)")
    p.add_argument("--steps", type=int, default=None,
                   help="default: as generate (60; in --mode ar the schedule packaged with the weights, if any)")
    p.add_argument("--cfg_scale", type=float, default=None, help="default: the scale packaged with the weights")
    p.add_argument("--mode", default="bidirectional", choices=MODES)
    use = p.add_mutually_exclusive_group()
    use.add_argument("--no_refiner", action="store_true", help="skip the refiner even if the weights turn it on")
    use.add_argument("--refiner", action="store_true", help="run the refiner even if the weights turn it off")
    p.add_argument("--refiner-ab", dest="refiner_ab", action="store_true",
                   help="score the model without and with the refiner on the same seeds")
    p.add_argument("--student", action="store_true", default=None,
                   help="score the distilled 4-step student of the weights (--mode ar; --steps unused)")
    add_schedule_args(p)
    p.add_argument("--window", dest="windows", type=pose_range, action="append", default=[],
                   help="score poses A-B (inclusive, repeatable) instead of the default windows")
    p.add_argument("--seed", type=int, default=42, help="sampler noise seed")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default="runs/camera_following", help="folder for results.json and the figures")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.seeds < 0 or args.yaw_seeds < 0 or args.threads < 1:
            raise UserError("--seeds and --yaw-seeds must be >= 0, --threads >= 1")
        if args.refiner_ab and args.no_refiner:
            raise UserError("--refiner-ab and --no_refiner exclude each other")
        torch.set_num_threads(args.threads)
        model = WorldModel.from_pretrained(args.weights, device=args.device)
        table_seeds = range(args.first_seed, args.first_seed + args.seeds)
        yaw_seeds = range(args.first_seed + args.seeds, args.first_seed + args.seeds + args.yaw_seeds)
        settings = FollowingSettings(seeds=table_seeds, num_frames=args.num_frames, action=args.action,
                                     yaw_seeds=yaw_seeds, steps=args.steps, cfg_scale=args.cfg_scale,
                                     mode=args.mode, refiner_ab=args.refiner_ab,
                                     refiner=False if args.no_refiner else (True if args.refiner else None),
                                     student=args.student, sigmas=args.sigmas, interval_k=args.interval_k,
                                     segment_frames=args.segment_frames,
                                     segment_color_match=args.segment_color_match,
                                     segment_refine_handoff=args.segment_refine_handoff,
                                     windows=args.windows, noise_seed=args.seed)
        result = run_following(model, settings)
        print(markdown_table(result))
        for path in write_report(result, args.out):
            print(f"wrote {path}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
