"""Times the frame-wise gated delta rule backends side by side (forward + backward) at tiny-preset shapes.

Prints seconds per call for each backend and the reference / backend ratio, all measured in this one run:
    python3 benchmarks/gdn_backends.py [--batch 2 --frames 16 --tokens 144 --heads 4 --dim 64]
                                        [--repeats 10 --threads N --cpu-time] [--device cuda]

On CUDA the flash-linear-attention backend (`fla`, one token per frame only) is timed too when --tokens 1.
"""

from __future__ import annotations

import argparse
import time

import torch

from camworld.ops.gdn import frame_delta_scan, key_scale
from camworld.ops.gdn_fla import fla_available, fla_trusted


def _inputs(batch, frames, tokens, heads, dim, dtype):
    gen = torch.Generator().manual_seed(0)
    shape = (batch, frames, tokens, heads, dim)
    q = torch.rand(shape, generator=gen, dtype=dtype)
    k = torch.rand(shape, generator=gen, dtype=dtype) * key_scale(dim, tokens)
    v = torch.randn(shape, generator=gen, dtype=dtype)
    beta = torch.rand(shape[:4], generator=gen, dtype=dtype)
    gamma = 0.9 + 0.1 * torch.rand(batch, frames, heads, generator=gen, dtype=dtype)
    return [x.requires_grad_() for x in (q, k, v, beta, gamma)]


def _once(backend, inputs, reverse, clock):
    cuda = inputs[0].is_cuda
    if cuda:
        torch.cuda.synchronize()
    start = clock()
    frame_delta_scan(*inputs, reverse=reverse, backend=backend).square().mean().backward()
    if cuda:
        torch.cuda.synchronize()
    return clock() - start


def _best_times(backends, inputs, reverse, repeats, clock):
    """Best time per backend, with the backends interleaved so that load from other processes hits all alike."""
    best = dict.fromkeys(backends, float("inf"))
    for _ in range(repeats + 1):
        for backend in backends:
            best[backend] = min(best[backend], _once(backend, inputs, reverse, clock))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=144)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the process CPU clock: steadier on a shared machine (use with --threads 1)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    args = parser.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    inputs = _inputs(args.batch, args.frames, args.tokens, args.heads, args.dim, getattr(torch, args.dtype))
    inputs = [x.detach().to(args.device).requires_grad_() for x in inputs]
    where = torch.cuda.get_device_name() if inputs[0].is_cuda else f"threads={torch.get_num_threads()}"
    print(f"B={args.batch} T={args.frames} S={args.tokens} H={args.heads} K=V={args.dim} {args.dtype} "
          f"{where}; best of {args.repeats}, forward + backward, {'process CPU' if args.cpu_time else 'wall'} time")
    backends = ("reference", "chunked")
    if inputs[0].is_cuda and args.tokens == 1 and fla_available():
        if fla_trusted():
            backends += ("fla",)
        else:
            print("fla: not timed, its kernels are not trusted on this GPU and Triton (gdn_fla.fla_trusted)")
    for reverse in (False, True):
        best = _best_times(backends, inputs, reverse, args.repeats, clock)
        ref = best["reference"]
        print(f"reverse={reverse!s:5}  reference {ref * 1e3:8.2f} ms  " + "  ".join(
            f"{name} {t * 1e3:8.2f} ms (reference/{name} = {ref / t:.2f}x)" for name, t in best.items()
            if name != "reference"))


if __name__ == "__main__":
    main()
