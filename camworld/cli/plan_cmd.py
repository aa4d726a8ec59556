"""`camworld plan`: predicted peak memory per phase of a generation run, and whether (and how) it fits on N GiB."""

from __future__ import annotations

import argparse
from dataclasses import replace

from camworld.cli import add_override_args
from camworld.config import RunConfig, apply_overrides, load_config
from camworld.errors import UserError
from camworld.plan.memory import DEVICES, DTYPE_BYTES, GIB, MODES, MemoryPlan, PlanRequest, fit_on, plan_memory
from camworld.presets import get_preset


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("plan", help="predict peak memory per phase; say which offload flags make it fit",
                              description=__doc__)
    add_override_args(p)
    p.add_argument("--num_frames", type=int, default=961, help="raw frames at 16 fps (stride*k + 1); 961 = 60 s")
    p.add_argument("--dtype", choices=list(DTYPE_BYTES), default="bf16")
    p.add_argument("--mode", choices=MODES, default="bidirectional")
    p.add_argument("--gpu-gib", "--gpu_gib", dest="gpu_gib", type=float, default=None,
                   help="device memory in GiB: answer whether the run fits and with which flags")
    p.add_argument("--offload_vae", action="store_true", help="keep the VAE on the host except while decoding")
    p.add_argument("--offload_refiner", action="store_true", help="keep the refiner on the host except while refining")
    p.add_argument("--no_refiner", action="store_true", help="skip the refiner")
    p.add_argument("--weights", default=None,
                   help="a weights folder: plan its dit/config.json, with the guidance scale packaged there")
    guidance = p.add_mutually_exclusive_group()
    guidance.add_argument("--cfg_scale", type=float, default=None,
                          help="text guidance scale; 1 runs one branch (default: the weights' or the preset's)")
    guidance.add_argument("--no_cfg", dest="cfg_scale", action="store_const", const=1.0,
                          help="no classifier-free guidance: --cfg_scale 1")
    p.add_argument("--student", action="store_true",
                   help="stage 1 is the distilled 4-step student (--mode ar, one branch; a second DiT copy resident)")
    p.add_argument("--device", choices=DEVICES, default="cuda",
                   help="cpu: host memory is device memory (decoded frames and CPU-only terms count)")
    p.set_defaults(func=run)


def _gib(n: int) -> str:
    return f"{n / GIB:8.2f}"


def format_plan(plan: MemoryPlan, title: str) -> list[str]:
    lines = [title, f"text encoder: {plan.text_encoder}", "",
             f"{'phase':8s} {'weights':>8s} {'activ.':>8s} {'total':>8s}  GiB   (largest activation term)"]
    for phase in plan.phases:
        weights, total = sum(phase.weights.values()), phase.total
        largest = max(phase.terms, key=phase.terms.get) if phase.terms else "-"
        lines.append(f"{phase.name:8s} {_gib(weights)} {_gib(total - weights)} {_gib(total)}        ({largest})")
    peak = plan.peak_phase
    name, size = plan.dominant()
    lines.append(f"peak: {plan.peak / GIB:.2f} GiB in phase {peak.name}; largest item: {name} ({size / GIB:.2f} GiB)")
    items = {**{f"{k} weights": v for k, v in peak.weights.items()}, **peak.terms}
    for key in sorted(items, key=items.get, reverse=True):
        lines.append(f"    {key:40s} {_gib(items[key])}")
    return lines


def _config(args: argparse.Namespace) -> RunConfig:
    """The preset's config, or the one packaged in --weights (dit/config.json), with --set overrides applied."""
    if args.weights is None:
        return apply_overrides(get_preset(args.preset), args.overrides)
    return apply_overrides(load_config(f"{args.weights}/dit/config.json"), args.overrides)


def run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    scale = 1.0 if args.student else cfg.sampling.cfg_scale if args.cfg_scale is None else args.cfg_scale
    request = PlanRequest(args.num_frames, args.dtype, args.mode, args.offload_vae, args.offload_refiner,
                          args.no_refiner, guidance=scale != 1.0, device=args.device, student=args.student)
    plan = plan_memory(cfg, request)
    flags = " ".join(request.flags()) or "no offload flags"
    title = f"camworld plan: preset {cfg.preset}, {args.num_frames} frames, {args.dtype}, {args.mode}, {flags}, " \
            f"guidance scale {scale:g} ({'two branches' if request.guidance else 'one branch'}), " \
            f"device {args.device} (CUDA context and allocator fragmentation not included)"
    print("\n".join(format_plan(plan, title)))
    if args.gpu_gib is None:
        return 0
    if args.gpu_gib <= 0:
        raise UserError(f"--gpu-gib must be positive, got {args.gpu_gib}")
    fitting, smallest = fit_on(cfg, request, args.gpu_gib * GIB)
    print()
    if fitting is None:
        name, size = smallest.dominant()
        with_flags = " ".join(smallest.request.flags()) or "no flags"
        print(f"does not fit on {args.gpu_gib:g} GiB: the smallest peak is {smallest.peak / GIB:.2f} GiB "
              f"(with {with_flags}, phase {smallest.peak_phase.name}), dominated by {name} ({size / GIB:.2f} GiB)")
        if request.mode == "bidirectional":
            ar_fit, ar_smallest = fit_on(cfg, replace(request, mode="ar"), args.gpu_gib * GIB)
            chosen = ar_fit or ar_smallest
            verdict = "fits" if ar_fit else "does not fit either"
            print(f"--mode ar {verdict}: peak {chosen.peak / GIB:.2f} GiB with "
                  f"{' '.join(chosen.request.flags()) or 'no flags'}")
    elif fitting.request == request:
        print(f"fits on {args.gpu_gib:g} GiB as asked (peak {fitting.peak / GIB:.2f} GiB)")
    else:
        print(f"fits on {args.gpu_gib:g} GiB with {' '.join(fitting.request.flags())} "
              f"(peak {fitting.peak / GIB:.2f} GiB in phase {fitting.peak_phase.name})")
    return 0
