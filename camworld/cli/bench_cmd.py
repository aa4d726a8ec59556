"""`camworld bench`: SANA-WM's 60 s benchmark protocol on held-out procedural worlds (camworld.eval.bench).

The defaults are a smoke run that finishes in minutes on a CPU: 1 scene per split, 81 frames (5 s at 16 fps),
8 sampling steps (in --mode ar, the schedule packaged with the weights when they have one, as in generate). The
full protocol (sana_wm.md §8.1) is
    camworld bench --scenes 80 --num_frames 961 --steps 60 --cfg_scale 5 --split all
Writes results.json, results.md, drift.png, trajectories.png and scenes/*.npz into --out and prints the table.
"""

from __future__ import annotations

import argparse

from camworld.cli.sampler_args import add_schedule_args
from camworld.cli.threads import set_threads

SPLIT_CHOICES = ("simple", "hard", "all")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="SANA-WM-style camera/revisit/drift benchmark on held-out worlds",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="weights folder (default: bundled camworld/assets/weights/tiny)")
    p.add_argument("--split", default="all", choices=SPLIT_CHOICES)
    p.add_argument("--scenes", type=int, default=1, help="scenes per split (SANA-WM: 80)")
    p.add_argument("--seed", type=int, default=42, help="trajectory parameters and sampler noise (SANA-WM: 42)")
    p.add_argument("--num_frames", type=int, default=81, help="frames per video, default 81 = 5 s (SANA-WM: 961)")
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps (default 8; with --mode ar and no --steps / --flow_shift / --sigmas / "
                        "--interval_k, the schedule packaged with the weights, as generate; SANA-WM: 60)")
    p.add_argument("--cfg_scale", type=float, default=None,
                   help="text guidance scale (default: the one packaged with the weights; SANA-WM 5.0)")
    p.add_argument("--flow_shift", type=float, default=None,
                   help="default: the shift the weights were trained with (SANA-WM's benchmark: 8.0)")
    p.add_argument("--mode", default="bidirectional", choices=("bidirectional", "ar"))
    p.add_argument("--no_refiner", action="store_true", help="skip the refiner even if the weights have one")
    p.add_argument("--student", action="store_true",
                   help="sample with the weights' distilled 4-step student (--mode ar; --steps unused)")
    add_schedule_args(p)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/bench", help="output folder")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from camworld.eval.bench import BenchSettings, run_bench
    from camworld.eval.bench_report import markdown_table, write_report
    from camworld.eval.bench_scenes import SPLITS
    from camworld.pipeline import WorldModel

    set_threads(args.threads)
    settings = BenchSettings(splits=SPLITS if args.split == "all" else (args.split,), scenes=args.scenes,
                             seed=args.seed, num_frames=args.num_frames, steps=args.steps,
                             cfg_scale=args.cfg_scale, flow_shift=args.flow_shift, mode=args.mode,
                             refiner=not args.no_refiner, student=args.student, sigmas=args.sigmas,
                             interval_k=args.interval_k, segment_frames=args.segment_frames,
                             segment_color_match=args.segment_color_match,
                             segment_refine_handoff=args.segment_refine_handoff)
    settings.check()
    start = time.perf_counter()
    model = WorldModel.from_pretrained(args.weights, device=args.device)
    result = run_bench(model, settings)
    result.cost["wall_s"] = time.perf_counter() - start
    print(markdown_table(result))
    for path in write_report(result, args.out):
        print(f"wrote {path}")
    print(f"bench took {result.cost['wall_s']:.1f} s")
    return 0
