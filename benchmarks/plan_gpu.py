"""`camworld plan` against measured CUDA memory: each configuration runs `python3 -m camworld.plan.measure --device
cuda` in a fresh process (the caching allocator's peak allocated bytes per phase, weights included, CUDA context
left out as the plan leaves it out) and is printed beside the plan's prediction for the same request on a GPU.

The constants of `camworld.plan.memory` were fitted on CPU runs of the tiny and small presets only; this is the check
of how they carry over to a GPU and to the full preset (2.6B, 704×1280). A configuration that runs out of memory or
past its time cap is reported as such. The text phase is left out (the full preset's Gemma encoder is not here).

    python3 benchmarks/plan_gpu.py [--cap-s 240] [--out plan_gpu.json] [--only full:961:ar ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from camworld.plan import memory
from camworld.presets import get_preset

GIB = 2**30

# (preset, frames, dtype, mode, phases): cheap first, so a short lease still measures the most configurations.
# The VAE decode peak does not grow with length (chunk by chunk), so it is measured on the short full-preset run.
GRID = [
    ("tiny", 961, "bf16", "ar", "denoise,refine,decode"),
    ("tiny", 241, "fp32", "bidirectional", "denoise,refine,decode"),
    ("small", 241, "bf16", "bidirectional", "denoise,refine,decode"),
    ("small", 961, "bf16", "ar", "denoise,refine,decode"),
    ("full", 161, "bf16", "bidirectional", "denoise,refine,decode"),
    ("full", 961, "bf16", "ar", "denoise,refine"),
    ("full", 481, "bf16", "bidirectional", "denoise,refine"),
    ("full", 961, "bf16", "bidirectional", "denoise,refine"),
]


def measure(preset: str, frames: int, dtype: str, mode: str, phases: str, cap_s: float) -> dict:
    cmd = [sys.executable, "-m", "camworld.plan.measure", "--device", "cuda", "--preset", preset,
           "--num_frames", str(frames), "--dtype", dtype, "--mode", mode, "--phases", phases]
    tic = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=cap_s)
    except subprocess.TimeoutExpired:
        return {"error": f"over the {cap_s:.0f} s cap"}
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        kind = "out of memory" if "OutOfMemoryError" in done.stderr else tail[0][:160]
        return {"error": kind, "wall_s": time.perf_counter() - tic}
    return {**json.loads(done.stdout), "wall_s": time.perf_counter() - tic}


def _row(name: str) -> tuple:
    """The grid row named `preset:frames:mode`, e.g. `full:961:ar`."""
    rows = [row for row in GRID if f"{row[0]}:{row[1]}:{row[3]}" == name]
    if not rows:
        raise SystemExit(f"--only {name}: no such row (rows: {', '.join(f'{r[0]}:{r[1]}:{r[3]}' for r in GRID)})")
    return rows[0]


def predicted(preset: str, frames: int, dtype: str, mode: str) -> dict[str, float]:
    request = memory.PlanRequest(frames, dtype, mode, device="cuda")
    return {p.name: p.total for p in memory.plan_memory(get_preset(preset), request).phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap-s", type=float, default=240.0, help="wall-clock cap per configuration")
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting configurations after this")
    parser.add_argument("--out", default="plan_gpu.json")
    parser.add_argument("--only", nargs="+", metavar="PRESET:FRAMES:MODE",
                        help="run just these rows of the grid, in the order given")
    args = parser.parse_args()
    grid = GRID if args.only is None else [_row(name) for name in args.only]
    import torch

    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| preset | frames | dtype | mode | phase | measured GiB | plan GiB | plan / measured | phase s |")
    print("|---|---|---|---|---|---|---|---|---|")
    start, rows = time.perf_counter(), []
    for preset, frames, dtype, mode, phases in grid:
        if time.perf_counter() - start > args.budget_s:
            print(f"| {preset} | {frames} | {dtype} | {mode} | (not run: over the {args.budget_s:.0f} s budget) |")
            continue
        result = measure(preset, frames, dtype, mode, phases, args.cap_s)
        plan = predicted(preset, frames, dtype, mode)
        rows.append({"config": [preset, frames, dtype, mode], "measured": result, "plan": plan})
        if "error" in result:
            peak = max(v for k, v in plan.items() if k in phases.split(","))
            print(f"| {preset} | {frames} | {dtype} | {mode} | all | {result['error']} | {peak / GIB:.2f} | | |")
            continue
        for name, phase in result["phases"].items():
            ratio = plan[name] / phase["peak"]
            print(f"| {preset} | {frames} | {dtype} | {mode} | {name} | {phase['peak'] / GIB:.2f} | "
                  f"{plan[name] / GIB:.2f} | {ratio:.2f} | {phase['seconds']:.1f} |", flush=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
