"""Can `camworld play` keep up with the video it makes? Seconds per play step and the ratio of video made to wall
time (1.0 = real time at 16 fps), for the DiT on its packaged schedule and for the distilled student, measured side
by side in one run on the same world and keys (the order alternates per round, so neither always runs warm).

    python3 benchmarks/play_latency.py [--weights DIR] [--steps 20] [--rounds 2] [--world-seed 10000] [--threads 2]

A step holds the keys of KEYS in turn. The first step of a session (frame 0 encoded, caches cold) is reported apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from camworld.pipeline import WorldModel
from camworld.play import PlaySession
from camworld.serve.first_frame import first_frame

KEYS = ("w", "w", "dw", "dw", "w", "aw", "aw", "w")
FPS = 16


def play(model: WorldModel, start, steps: int, student: bool) -> tuple[float, list[tuple[int, float]]]:
    """(seconds of the first step, [(frames, seconds)] of the others)."""
    begin = time.perf_counter()
    session = PlaySession(model, start.image, start.default_prompt, start.K, seed=0, student=student)
    session.step(KEYS[0])
    first_seconds = time.perf_counter() - begin
    rest = []
    for k in range(1, steps):
        made = session.step(KEYS[k % len(KEYS)])
        rest.append((len(made.frames), made.seconds))
    return first_seconds, rest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: bundled tiny)")
    parser.add_argument("--steps", type=int, default=20, help="play steps per session")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--world-seed", dest="world_seed", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = WorldModel.from_pretrained(args.weights)
    start = first_frame(None, args.world_seed, 70.0, model.image_hw)
    samplers = {"DiT (packaged schedule)": False}
    if model.has_student:
        samplers["student (4 steps)"] = True
    results: dict[str, dict[str, list]] = {name: {"first": [], "steps": []} for name in samplers}
    for r in range(args.rounds):
        order = list(samplers.items()) if r % 2 == 0 else list(reversed(samplers.items()))
        for name, student in order:
            first_seconds, rest = play(model, start, args.steps, student)
            results[name]["first"].append(first_seconds)
            results[name]["steps"].extend(rest)
    print(f"play latency, {model.path}, {args.threads} threads, world {args.world_seed}, {args.rounds} rounds of "
          f"{args.steps} steps\n")
    print("| sampler | first step (s) | later steps: median s | frames per step | video s per wall s |")
    print("|---|---|---|---|---|")
    for name, found in results.items():
        frames = np.array([f for f, _ in found["steps"]])
        seconds = np.array([s for _, s in found["steps"]])
        speed = frames.sum() / FPS / seconds.sum()
        print(f"| {name} | {statistics.median(found['first']):.2f} | {np.median(seconds):.2f} | "
              f"{np.median(frames):.0f} | {speed:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
