"""The stage-1 sampler's schedule flags shared by `generate`, `bench` and the benchmarks: an explicit σ list
(`--sigmas`, instead of `--step` steps at `--flow_shift`), the pyramid stagger (`--interval_k`, ar mode) and the
segment length of long videos and how one segment hands over to the next (`--segment_frames`,
`--segment_color_match`, `--segment_refine_handoff`)."""

from __future__ import annotations

import argparse


def sigma_list(text: str) -> tuple[float, ...]:
    """"1,0.96,0.889,0.727,0" -> (1.0, 0.96, 0.889, 0.727, 0.0); the sampler checks the order and end points."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_schedule_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sigmas", type=sigma_list, default=None,
                        help="the DiT's σ list, e.g. 1,0.96,0.889,0.727,0 (strictly decreasing to 0); "
                             "replaces the steps and the flow shift")
    parser.add_argument("--interval_k", type=float, default=None,
                        help="ar only: chunk c starts denoising at step ⌊c·k·steps⌋ (default: SANA-WM's "
                             "1/#chunks; 1: chunk by chunk)")
    parser.add_argument("--segment_frames", type=int, default=None,
                        help="make longer videos as a chain of segments of this many frames (stride·k + 1), each "
                             "from the last frame of the one before (our addition; 0: one pass, as SANA-WM; "
                             "default: in ar mode the weights' sampling.ar_segment_frames, else 0)")
    parser.add_argument("--segment_color_match", action="store_true", default=None,
                        help="match the colours of the frame each segment starts from to the first frame's "
                             "(default: the weights' sampling.segment_color_match, off for the bundled ones)")
    parser.add_argument("--segment_refine_handoff", action="store_true",
                        help="start each segment from the refiner's last frame of the one before; the video "
                             "itself stays stage 1's (needs weights with a refiner)")
