"""Training throughput of a preset (tiny by default): tokens/s and model-FLOPs utilisation (MFU), measured side by side.

In one run this script
  1. measures the machine's bf16 (and fp32) matmul peak with square matmuls (best of several repeats),
  2. counts the model FLOPs of one training step: 3 x the forward FLOPs from torch.utils.flop_counter,
  3. times full training steps (flow loss, backward, grad clip, AdamW) of WorldDiT under bf16 autocast and fp32,
and prints tokens/s, achieved TFLOP/s and MFU = achieved / measured bf16 peak. Latents are random with spatial
structure (no tokenizer in the loop), cameras a forward dolly, text a fixed random embedding.

    python3 benchmarks/train_throughput.py --stage 3 --batch 4 --steps 5
    python3 benchmarks/train_throughput.py --preset full --device cuda --batch 1 --gradient-checkpointing  # a GPU
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from camworld.models.dit import WorldDiT
from camworld.presets import get_preset
from camworld.train.stages import apply_stage, get_stage
from camworld.train.world_objective import WorldModelObjective


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 1024, repeats: int = 5) -> float:
    """Best FLOP/s of an n×n×n matmul in `dtype`."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        tic = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - tic)
    return 2 * n**3 / best


def make_batch(cfg, batch: int):
    stride = cfg.model.temporal_stride
    frames = cfg.train.clip_frames
    t = (frames - 1) // stride + 1
    h, w = cfg.tokenizer.height // cfg.tokenizer.spatial_stride, cfg.tokenizer.width // cfg.tokenizer.spatial_stride
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-1, 1, w)[None, None, None, :, None]
    latents = torch.randn(batch, 1, 1, 1, cfg.model.in_channels, generator=g) * ramp
    latents = latents.expand(batch, t, h, w, -1) + 0.1 * torch.randn(batch, t, h, w, cfg.model.in_channels, generator=g)
    c2w = np.tile(np.eye(4, dtype=np.float32), (batch, frames, 1, 1))
    c2w[..., 2, 3] = 0.05 * np.arange(frames)
    H, W = cfg.tokenizer.height, cfg.tokenizer.width
    K = np.array([[W * 0.8, 0, W / 2], [0, W * 0.8, H / 2], [0, 0, 1]], np.float32)
    return {
        "latents": latents.contiguous(), "image_hw": torch.tensor([[H, W]] * batch),
        "c2w": torch.from_numpy(c2w), "intrinsics": torch.from_numpy(np.tile(K, (batch, frames, 1, 1))),
        "caption": ["bench"] * batch, "draw": torch.arange(batch),
    }, batch * t * h * w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per precision (after 1 warm-up step)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "full"])
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--gradient-checkpointing", dest="checkpointing", action="store_true",
                        help="recompute each block's activations in the backward (the full preset needs it on 80 GB)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = apply_stage(get_preset(args.preset), args.stage)
    cfg = replace(cfg, model=replace(cfg.model, gradient_checkpointing=args.checkpointing))
    text_dim = cfg.model.text_dim
    text = torch.randn(1, 8, text_dim, generator=torch.Generator().manual_seed(1))

    def encode_text(captions):
        return text.expand(len(captions), -1, -1), torch.ones(len(captions), 8, dtype=torch.bool)

    stage = get_stage(args.stage)
    objective = WorldModelObjective(encode_text=encode_text, seed=0, shift=cfg.train.shift,
                                    temporal_stride=cfg.model.temporal_stride, camera=stage.camera,
                                    causal=cfg.train.causal, chunk_first=cfg.model.chunk_first,
                                    chunk_size=cfg.model.chunk_size,
                                    plucker_rebase_chunks=cfg.model.plucker_rebase_chunks)
    batch, tokens = make_batch(cfg, args.batch)
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    torch.manual_seed(0)
    with torch.device(device):
        model = WorldDiT(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"threads {torch.get_num_threads()}"
    print(f"{args.preset} preset, stage {args.stage} ({stage.name}): {params / 1e6:.2f}M parameters, "
          f"batch {args.batch}, {tokens // args.batch} tokens/clip, {where}"
          + (", gradient checkpointing" if args.checkpointing else ""))

    n = 8192 if device.type == "cuda" else 1024
    peak = {name: matmul_peak(dt, device, n) for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32))}
    print(f"measured matmul peak: bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s, fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s")

    # Forward FLOPs from flop_counter, times 3 for forward + backward (the usual MFU convention: the backward
    # costs two forwards). The backward is not counted directly because flop_counter's convolution_backward
    # formula ignores groups and overstates the depthwise convs of the FFN and short conv ~1000x.
    with FlopCounterMode(display=False) as counter, torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        objective(model, batch)
    flops = 3 * counter.get_total_flops()
    print(f"model FLOPs per step (3 x forward, flop_counter): {flops / 1e9:.2f} GFLOP "
          f"({flops / tokens / params:.2f} x params x tokens)")

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, eps=cfg.train.eps, weight_decay=0.0)
    results = {}
    for name, bf16 in (("bf16", True), ("fp32", False)):
        times = []
        for i in range(args.steps + 1):
            synchronize(device)
            tic = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss, _ = objective(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            synchronize(device)
            if i:
                times.append(time.perf_counter() - tic)
        step = float(np.median(times))
        results[name] = step
        achieved = flops / step
        own = f" ({100 * achieved / peak[name]:.1f}% of the {name} peak)" if name != "bf16" else ""
        memory = ""
        if device.type == "cuda":
            memory = f", peak allocated {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
            torch.cuda.reset_peak_memory_stats(device)
        print(f"{name}: {step:.3f} s/step (median of {args.steps}), {tokens / step:,.0f} tokens/s, "
              f"{achieved / 1e9:.1f} GFLOP/s, MFU {100 * achieved / peak['bf16']:.1f}% of the bf16 peak{own}{memory}")
    print(f"bf16 autocast speed-up over fp32: {results['fp32'] / results['bf16']:.2f}x")


if __name__ == "__main__":
    main()
