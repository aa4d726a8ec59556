"""Is flash-linear-attention's forward gap on CUDA the size of TF32 rounding? Prints, for the six shapes of
tests/ops/test_gdn_equivalence.py::test_fla_forward_equals_reference_on_cuda (1 / 5 / 7 frames, one token per frame,
both directions, fp32), the largest absolute error against the float64 per-frame loop on the CPU of:
  - `fla` (its Triton kernels, whose fp32 dot products default to TF32),
  - our chunked scan and the per-frame loop on the same GPU with TF32 matmuls off, then on.
If fla's error is about that of our own scans with TF32 on, TF32 explains it; if it is far larger, it does not.

    python3 benchmarks/gdn_tf32_gap.py
"""

from __future__ import annotations

import torch

from camworld.ops.gdn import frame_delta_scan
from camworld.ops.gdn_fla import fla_available


def _inputs(frames: int, seed: int) -> tuple[torch.Tensor, ...]:
    """The tests' recipe: keys scaled 1/sqrt(D*S), gates in (0, 1); B 2, S 1, H 2, K = V = 16, float64."""
    gen = torch.Generator().manual_seed(seed)
    shape = (2, frames, 1, 2, 16)
    q = torch.randn(shape, generator=gen, dtype=torch.float64)
    k = torch.rand(shape, generator=gen, dtype=torch.float64) * 16**-0.5
    v = torch.randn(shape, generator=gen, dtype=torch.float64)
    beta = torch.rand(shape[:4], generator=gen, dtype=torch.float64)
    gamma = 0.5 + 0.5 * torch.rand(2, frames, 2, generator=gen, dtype=torch.float64)
    state = torch.randn(2, 2, 16, 16, generator=gen, dtype=torch.float64)
    return q, k, v, beta, gamma, state


def _error(inputs, backend: str, reverse: bool, truth) -> float:
    cuda = [x.to("cuda", torch.float32) for x in inputs]
    with torch.no_grad():
        o, s = frame_delta_scan(*cuda[:5], reverse=reverse, initial_state=cuda[5], return_state=True, backend=backend)
    return max((o.double().cpu() - truth[0]).abs().max().item(), (s.double().cpu() - truth[1]).abs().max().item())


def main() -> None:
    runs = [("chunked", False), ("reference", False), ("chunked", True), ("reference", True)]
    if fla_available():
        runs.insert(0, ("fla", None))
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| frames | reverse | " + " | ".join(f"{b}{'' if tf32 is None else ' tf32 ' + ('on' if tf32 else 'off')}"
                                          for b, tf32 in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    saved = torch.backends.cuda.matmul.allow_tf32
    for frames in (1, 5, 7):
        for reverse in (False, True):
            inputs = _inputs(frames, seed=frames)
            truth = frame_delta_scan(*inputs[:5], reverse=reverse, initial_state=inputs[5], return_state=True,
                                     backend="reference")
            errors = []
            for backend, tf32 in runs:
                torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
                errors.append(_error(inputs, backend, reverse, truth))
            torch.backends.cuda.matmul.allow_tf32 = saved
            print(f"| {frames} | {reverse} | " + " | ".join(f"{e:.1e}" for e in errors) + " |", flush=True)


if __name__ == "__main__":
    main()
