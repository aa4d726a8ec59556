"""Shared pieces of the training tests: a small velocity model, structured latent clips, and a flow loss_fn."""

import torch
from torch import nn

from camworld.config import TrainConfig
from camworld.flow.objective import draw_flow_inputs, flow_matching_loss
from camworld.flow.schedule import sample_train_sigma
from camworld.train.loop import draw_generator

T, H, W, C, L, D = 3, 4, 4, 4, 5, 8


class TinyVelocity(nn.Module):
    """A per-token MLP on (x, σ) plus a caption term; WorldDiT's forward signature, none of its structure."""

    def __init__(self, channels=C, text_dim=D, hidden=32):
        super().__init__()
        self.inp = nn.Linear(channels + 1, hidden)
        self.text = nn.Linear(text_dim, hidden)
        self.blocks = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(2)])
        self.out = nn.Linear(hidden, channels)

    def forward(self, x, sigma, text, text_mask, camera, *, causal=False):
        s = sigma[:, :, None, None, None].expand(*x.shape[:-1], 1)
        m = text_mask.float()[..., None]
        t = (text * m).sum(1) / m.sum(1).clamp_min(1)
        h = self.inp(torch.cat([x, s.to(x.dtype)], -1)) + self.text(t)[:, None, None, None]
        for block in self.blocks:
            h = h + torch.tanh(block(h))
        return self.out(h)


def latent_dataset(n=8, seed=0):
    """Clips whose latents are smooth in space and time, with a caption embedding that predicts them."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        base = torch.randn(1, 1, 1, C, generator=g)
        ramp = torch.linspace(-1, 1, W)[None, None, :, None] * torch.randn(1, 1, 1, C, generator=g)
        lat = base + ramp + 0.1 * torch.arange(T)[:, None, None, None]
        lat = lat.expand(T, H, W, C).contiguous()
        text = torch.cat([base.flatten(), ramp[0, 0, -1]]).repeat(D // (2 * C))
        text = text[None].expand(L, D).contiguous()
        items.append({"latents": lat, "text": text, "text_mask": torch.ones(L, dtype=torch.bool)})
    return items


def flow_loss_fn(seed=0, shift=1.0):
    def loss_fn(model, batch):
        x0 = batch["latents"]
        gens = [draw_generator(seed, int(d)) for d in batch["draw"]]
        inputs = draw_flow_inputs(x0.shape[1:], gens, lambda g: sample_train_sigma(1, x0.shape[1], shift, g)[0])
        fn = lambda x, s, t, m: model(x, s, t, m, None)  # noqa: E731
        return flow_matching_loss(fn, x0, inputs, batch["text"], batch["text_mask"], torch.zeros(L, D),
                                  torch.zeros(L, dtype=torch.bool))
    return loss_fn


def fast_config(**kw):
    return TrainConfig(**{"lr": 3e-3, "batch_size": 4, "steps": 6, "checkpoint_every": 3, "log_every": 1, "bf16": False,
                          "ema_decay": 0.9, "seed": 5, "keep_checkpoints": 10, **kw})


DDP_STEPS = 3
FSDP_STEPS = 4  # trained as 2, then resumed from the step-2 checkpoint for 2 more
CP_SPLIT = (0, 3, 7)  # rank 0 owns frames 0..2, rank 1 frames 3..6


def dist_checks_worker(rank, world, tmp):
    """One rank of a gloo group (torch.multiprocessing.spawn): DDP training into tmp/ddp, then the
    context-parallel scan check into tmp/cp.json. One spawn serves both tests, as starting processes is slow."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        ddp_train_body(rank, world, f"{tmp}/ddp", DDP_STEPS)
        fsdp_resume_body(rank, world, f"{tmp}/fsdp", FSDP_STEPS)
        context_parallel_body(rank, world, f"{tmp}/cp.json", CP_SPLIT)
    finally:
        dist.destroy_process_group()


def ddp_train_body(rank, world, out_dir, steps):
    from camworld.train.dist import DistInfo
    from camworld.train.loop import train

    torch.manual_seed(0)
    cfg = fast_config(steps=steps, checkpoint_every=steps)
    train(TinyVelocity(), flow_loss_fn(), latent_dataset(8), cfg, out_dir, info=DistInfo(rank, world), progress=False)


def fsdp_resume_body(rank, world, out_dir, steps):
    """FSDP2 (`fully_shard`) training for steps / 2 steps, then a fresh model resumed from that checkpoint to
    `steps`: the sharded optimiser and EMA states go through the full-state-dict checkpoint and back."""
    import dataclasses

    import torch.distributed as dist

    from camworld.train.dist import DistInfo
    from camworld.train.loop import latest_checkpoint, train

    info = DistInfo(rank, world)
    half = dataclasses.replace(fast_config(steps=steps // 2, checkpoint_every=steps // 2), fsdp=True)
    torch.manual_seed(0)
    train(TinyVelocity(), flow_loss_fn(), latent_dataset(8), half, out_dir, info=info, progress=False)
    dist.barrier()
    torch.manual_seed(1)  # different initial weights: the resume must replace them
    train(TinyVelocity(), flow_loss_fn(), latent_dataset(8), dataclasses.replace(half, steps=steps), out_dir,
          info=info, progress=False, resume_from=latest_checkpoint(out_dir))


def gdn_inputs(t=7, seed=0, dtype=torch.float64):
    """Random frame-GDN inputs q, k, v, beta, gamma for a clip of t frames (B 2, S 3, H 2, K 4, V 5)."""
    g = torch.Generator().manual_seed(seed)
    b, s, h, dk, dv = 2, 3, 2, 4, 5
    q = torch.randn(b, t, s, h, dk, generator=g, dtype=dtype)
    k = torch.relu(torch.randn(b, t, s, h, dk, generator=g, dtype=dtype)) / (dk * s) ** 0.5
    v = torch.randn(b, t, s, h, dv, generator=g, dtype=dtype)
    beta = torch.rand(b, t, s, h, generator=g, dtype=dtype)
    gamma = 0.5 + 0.5 * torch.rand(b, t, h, generator=g, dtype=dtype)
    return q, k, v, beta, gamma


def context_parallel_body(rank, world, result_path, split):
    """Context-parallel scan of this rank's frames vs the full single-process scan, forward and backward, both
    directions; rank 0 writes the worst max-abs errors over ranks as JSON."""
    import json

    import torch.distributed as dist

    from camworld.ops.gdn import frame_delta_scan
    from camworld.train.context_parallel import context_parallel_delta_scan

    errors = {}
    lo, hi = split[rank], split[rank + 1]
    for reverse in (False, True):
        full = [x.requires_grad_() for x in gdn_inputs(split[-1])]
        weights = torch.randn(full[2].shape, generator=torch.Generator().manual_seed(9), dtype=full[2].dtype)
        ref = frame_delta_scan(*full, reverse=reverse, backend="reference")
        (ref * weights).sum().backward()
        local = [x.detach()[:, lo:hi].clone().requires_grad_() for x in full]
        out = context_parallel_delta_scan(*local, reverse=reverse, backend="chunked")
        (out * weights[:, lo:hi]).sum().backward()
        name = "reverse" if reverse else "forward"
        errors[f"{name}_out"] = float((out - ref[:, lo:hi]).detach().abs().max())
        errors[f"{name}_grad"] = max(float((x.grad - f.grad[:, lo:hi]).abs().max()) for x, f in zip(local, full))
    gathered = [None] * world
    dist.all_gather_object(gathered, errors)
    if rank == 0:
        worst = {key: max(e[key] for e in gathered) for key in errors}
        with open(result_path, "w") as f:
            json.dump(worst, f)
