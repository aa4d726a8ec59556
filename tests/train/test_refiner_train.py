"""Training the refiner LoRA: the run config and model (sink plan, frozen base), the objective on latents and on
frames (finite, learns a fixed batch, only the adapters move), resume through the loop, and bad input."""

import dataclasses

import numpy as np
import pytest
import torch
from train_fixtures import TinyVelocity, fast_config, flow_loss_fn, latent_dataset

from camworld.cli import main
from camworld.config import ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from camworld.errors import UserError
from camworld.flow.refiner_objective import SINK_SPAN
from camworld.models.dit import WorldDiT
from camworld.modules.lora import LoRALinear, lora_state_dict
from camworld.tokenizer.vae import CausalVideoVAE
from camworld.train.checkpoint import list_checkpoints, load_checkpoint
from camworld.train.loop import latest_checkpoint, train
from camworld.train.refiner_train import (
    REFINER_LR,
    RefinerObjective,
    build_refiner,
    is_refiner_state,
    refiner_run_config,
)

STRIDE, LAT_T, GRID, CH, TEXT_DIM, IMAGE = 2, 4, 4, 4, 8, 32


def base_config(**model):
    cfg = RunConfig(model=ModelConfig(in_channels=CH, dim=32, depth=2, heads=2, ffn_ratio=2, softmax_every=2,
                                      text_dim=TEXT_DIM, temporal_stride=STRIDE, gdn_backend="chunked", **model),
                    train=TrainConfig(batch_size=2, steps=4, checkpoint_every=2, log_every=1, bf16=False,
                                      ema_decay=0.9, seed=5, shift=2.0, keep_checkpoints=5))
    cfg.refiner.lora_rank = 4
    return cfg


def base_state(cfg, seed=0):
    torch.manual_seed(seed)
    return WorldDiT(cfg.model).state_dict()


def clips(n=4, seed=0):
    """Latent pairs (x_l = x_h blurred in time + noise) with cameras moving forward and a text embedding."""
    g = torch.Generator().manual_seed(seed)
    frames = STRIDE * (LAT_T - 1) + 1
    K = np.array([[IMAGE, 0, IMAGE / 2], [0, IMAGE, IMAGE / 2], [0, 0, 1]], np.float32)
    items = []
    for i in range(n):
        x_h = torch.randn(LAT_T, GRID, GRID, CH, generator=g)
        x_l = 0.5 * (x_h + x_h.roll(1, 0)) + 0.2 * torch.randn(LAT_T, GRID, GRID, CH, generator=g)
        c2w = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
        c2w[:, 2, 3] = 0.1 * np.arange(frames) * (1 + i % 2)
        items.append({"latents": x_h, "coarse_latents": x_l, "image_hw": torch.tensor([IMAGE, IMAGE]),
                      "c2w": torch.from_numpy(c2w), "intrinsics": torch.from_numpy(np.stack([K] * frames)),
                      "text": torch.randn(3, TEXT_DIM, generator=g), "text_mask": torch.ones(3, dtype=torch.bool)})
    return items


def collate(items, first_draw=0):
    batch = {k: torch.stack([d[k] for d in items]) for k in items[0]}
    batch["draw"] = torch.arange(first_draw, first_draw + len(items))
    return batch


def no_text(captions):
    return torch.zeros(len(captions), 3, TEXT_DIM), torch.ones(len(captions), 3, dtype=torch.bool)


def objective(**kw):
    return RefinerObjective(encode_text=no_text, seed=1, shift=2.0, temporal_stride=STRIDE, **kw)


def test_run_config_replans_after_overrides_and_the_model_freezes_its_base():
    base = base_config()
    cfg = refiner_run_config(base, ["refiner.window_chunks=5", "refiner.lora_rank=2"])
    assert (cfg.model.chunk_first, cfg.model.chunk_size, cfg.model.kv_window_chunks) == (1, SINK_SPAN, 5)
    assert cfg.train.lr == REFINER_LR and not cfg.train.causal and base.model.chunk_first == 4
    assert refiner_run_config(base, ["train.lr=3e-4"]).train.lr == 3e-4
    state = base_state(base)
    model = build_refiner(cfg, state)
    assert all(m.rank == 2 for m in model.modules() if isinstance(m, LoRALinear))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items()) and is_refiner_state(own)
    with pytest.raises(UserError, match="camera"):
        refiner_run_config(base_config(ucpe=False))
    with pytest.raises(UserError, match="refiner checkpoint"):
        build_refiner(cfg, own)
    with pytest.raises(UserError, match="lacks"):
        build_refiner(cfg, {k: v for k, v in state.items() if "final" not in k})


def test_objective_is_finite_and_a_few_steps_fit_a_fixed_batch():
    cfg = refiner_run_config(base_config())
    model = build_refiner(cfg, base_state(cfg))
    base_before = {k: v.clone() for k, v in model.state_dict().items() if "lora" not in k}
    batch, obj = collate(clips(2)), objective()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(8):  # the same draws every step: the same noise and σ_t, so the loss must go down
        loss, logs = obj(model, batch)
        assert torch.isfinite(loss) and 0 < logs["sigma_mean"] <= cfg.refiner.sigmas[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in base_before.items())
    assert any(float(v.abs().max()) > 0 for k, v in lora_state_dict(model).items() if k.endswith("lora_B"))


def test_objective_on_frames_encodes_the_clip_and_its_degraded_copy():
    torch.manual_seed(0)
    tok = TokenizerConfig(latent_channels=CH, base_channels=8, channel_mults=(1, 1, 1), height=IMAGE, width=IMAGE,
                          temporal_stride=STRIDE)
    vae = CausalVideoVAE(tok).eval().requires_grad_(False)
    seen = []

    def encode(frames):
        seen.append(frames)
        return vae.encode(frames)

    cfg = refiner_run_config(base_config())
    model = build_refiner(cfg, base_state(cfg))
    g = torch.Generator().manual_seed(0)
    items = clips(2)
    frames = torch.randint(0, 256, (2, STRIDE * (LAT_T - 1) + 1, IMAGE, IMAGE, 3), generator=g, dtype=torch.uint8)
    batch = {"frames": frames, "c2w": torch.stack([d["c2w"] for d in items]),
             "intrinsics": torch.stack([d["intrinsics"] for d in items]), "caption": ["a", "b"],
             "draw": torch.arange(2)}
    loss, _ = objective(encode_video=encode, degrade_scale=4)(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and len(seen) == 2 and torch.equal(seen[0], frames)
    assert not torch.equal(seen[1], frames) and seen[1].dtype == torch.uint8  # down- then up-sampled
    no_coarse = {k: v for k, v in collate(clips(1)).items() if k != "coarse_latents"}
    with pytest.raises(UserError, match="coarse_latents"):
        objective()(model, no_coarse)


def test_loop_trains_only_the_adapters_and_resumes_exactly(tmp_path):
    cfg = refiner_run_config(base_config())
    state, data = base_state(cfg), clips(4)

    def run(out, steps, resume=None):
        torch.manual_seed(0)  # the adapters' A is random: the same seed gives both runs the same start
        model = build_refiner(cfg, None if resume else state)
        return train(model, objective(), data, dataclasses.replace(cfg.train, steps=steps), out,
                     run_config={}, resume_from=resume, progress=False)

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    ckpt = latest_checkpoint(tmp_path / "b")
    assert is_refiner_state(ckpt.model) and set(ckpt.optimizer["state"]) == {
        k for k in ckpt.model if k.endswith(("lora_A", "lora_B"))}
    resumed = run(tmp_path / "b", 4, resume=ckpt)
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight[2:]]
    last = load_checkpoint(list_checkpoints(tmp_path / "a")[-1]).model
    assert all(torch.equal(last[k], v) for k, v in state.items())  # the base never moves


def test_cli_refiner_needs_a_dit_init_and_matching_resume(tmp_path, capsys):
    args = ["train", "--refiner", "--data", "d", "--tokenizer", "t", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pass --init" in err and err.count("\n") == 1
    assert main([*args, "--init", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1
    cfg = refiner_run_config(base_config())
    one_step = dataclasses.replace(cfg.train, steps=1, checkpoint_every=1)
    train(build_refiner(cfg, base_state(cfg)), objective(), clips(2), one_step, tmp_path / "r", progress=False)
    train(TinyVelocity(), flow_loss_fn(), latent_dataset(2), fast_config(steps=1), tmp_path / "s", progress=False)
    for run, flag, problem in (("r", [], "resume it with --refiner"), ("s", ["--refiner"], "not a refiner run")):
        code = main(["train", *flag, "--data", "d", "--tokenizer", "t", "--out", str(tmp_path / run), "--resume"])
        err = capsys.readouterr().err
        assert code == 2 and problem in err and err.count("\n") == 1
