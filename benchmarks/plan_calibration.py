"""Calibrate `camworld.plan.memory.CALIBRATION` against measured peak memory on this machine.

Each configuration runs `python3 -m camworld.plan.measure` in a fresh process (peak resident set per phase above
the post-import baseline, see that module). The constants of each group are then fitted by non-negative least
squares on the relative error (every subset of features is solved and the best all-non-negative one kept), and the
script prints them with the measured vs predicted table.

    python3 benchmarks/plan_calibration.py --out /tmp/plan_raw.jsonl        # measure the grid (~30 min, 1 thread)
    python3 benchmarks/plan_calibration.py --fit /tmp/plan_raw.jsonl        # refit from saved measurements

Text-encoder constants come from runs with only the text phase (appended to the same file).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from camworld.plan import memory
from camworld.presets import get_preset

GRID = [("tiny", 17), ("tiny", 49), ("tiny", 97), ("small", 17), ("small", 33)]
MIB = 2**20


def measure_one(preset: str, frames: int, dtype: str, mode: str, phases: str) -> dict:
    cmd = [sys.executable, "-m", "camworld.plan.measure", "--preset", preset, "--num_frames", str(frames),
           "--dtype", dtype, "--mode", mode, "--phases", phases]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def run_grid(out: Path) -> None:
    jobs = [(p, f, d, m, "text,denoise,refine,decode") for (p, f), d, m in
            itertools.product(GRID, ("fp32", "bf16"), memory.MODES)]
    jobs += [(p, 17, "fp32", "bidirectional", "text") for p in ("tiny", "small")]
    with out.open("a") as f:
        for job in tqdm(jobs, desc="measuring"):
            f.write(json.dumps(measure_one(*job)) + "\n")
            f.flush()


def samples(records: list[dict]):
    """(group, feature dict, target bytes, record label, phase) for every measured phase."""
    for rec in records:
        spec = rec["spec"]
        cfg = get_preset(spec["preset"])
        request = memory.PlanRequest(spec["num_frames"], spec["dtype"], spec["mode"], device="cpu")
        request = replace(request, offload_vae=spec["offload_vae"], offload_refiner=spec["offload_refiner"],
                          no_refiner=spec["no_refiner"])
        text_only = tuple(spec["phases"]) == ("text",)
        label = f"{spec['preset']} {spec['num_frames']} {spec['dtype']} {spec['mode']}"
        for model in memory.phase_models(cfg, request):
            if model.name not in rec["phases"] or (model.name == "text") != text_only:
                continue  # the text phase of full runs was measured before weights were read eagerly
            target = rec["phases"][model.name]["peak"] - sum(model.weights.values()) - sum(model.exact.values())
            yield model.group, model.features, target, label, model.name, rec["phases"][model.name]["peak"]


def nnls_relative(rows: list[dict], targets: list[float], names: list[str]) -> dict[str, float]:
    """Non-negative least squares on relative residuals (each row divided by its target plus 8 MiB)."""
    a = np.array([[r.get(n, 0) for n in names] for r in rows], dtype=float)
    y = np.array(targets, dtype=float)
    scale = 1.0 / (np.abs(y) + 8 * MIB)
    a, y = a * scale[:, None], y * scale
    best, best_err = np.zeros(len(names)), float(np.sum(y**2))
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(range(len(names)), size):
            coef, *_ = np.linalg.lstsq(a[:, subset], y, rcond=None)
            if (coef < 0).any():
                continue
            full = np.zeros(len(names))
            full[list(subset)] = coef
            err = float(np.sum((a @ full - y) ** 2))
            if err < best_err:
                best, best_err = full, err
    return {n: float(c) for n, c in zip(names, best)}


def fit(records: list[dict]) -> dict[str, dict[str, float]]:
    data = list(samples(records))
    constants = {}
    for group, template in memory.CALIBRATION.items():
        rows = [(f, t) for g, f, t, *_ in data if g == group]
        if rows:
            constants[group] = nnls_relative([f for f, _ in rows], [t for _, t in rows], list(template))
    return constants


def report(records: list[dict], constants: dict[str, dict[str, float]]) -> None:
    memory.CALIBRATION.update(constants)
    print("CALIBRATION = {")
    for group, values in constants.items():
        inner = ", ".join(f'"{k}": {v:.4g}' for k, v in values.items())
        print(f'    "{group}": {{{inner}}},')
    print("}\n")
    print(f"{'run':34s} {'phase':8s} {'measured MiB':>12s} {'predicted':>10s} {'ratio':>6s}")
    worst = 0.0
    for rec in records:
        spec = rec["spec"]
        request = memory.PlanRequest(spec["num_frames"], spec["dtype"], spec["mode"], device="cpu")
        plan = memory.plan_memory(get_preset(spec["preset"]), request)
        label = f"{spec['preset']} {spec['num_frames']} {spec['dtype']} {spec['mode']}"
        text_only = tuple(spec["phases"]) == ("text",)
        for phase in plan.phases:
            if phase.name not in rec["phases"] or (phase.name == "text") != text_only:
                continue
            measured = rec["phases"][phase.name]["peak"]
            ratio = phase.total / measured
            worst = max(worst, abs(ratio - 1))
            print(f"{label:34s} {phase.name:8s} {measured / MIB:12.1f} {phase.total / MIB:10.1f} {ratio:6.2f}")
        if not text_only:
            measured = max(v["peak"] for k, v in rec["phases"].items() if k != "text")
            peak = max(p.total for p in plan.phases if p.name != "text")
            print(f"{label:34s} {'PEAK':8s} {measured / MIB:12.1f} {peak / MIB:10.1f} {peak / measured:6.2f}")
    print(f"\nworst phase error: {worst:.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="measure the grid, appending JSON lines here, then fit")
    parser.add_argument("--fit", type=Path, help="fit from saved measurements only")
    args = parser.parse_args()
    if args.out is None and args.fit is None:
        parser.error("give --out (measure and fit) or --fit (fit only)")
    path = args.out or args.fit
    if args.out is not None:
        run_grid(args.out)
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    report(records, fit(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
