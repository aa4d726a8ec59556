"""Self-forcing distillation: the three models (student = teacher + zero LoRA, trainable critic, frozen teacher), which
parameters each kind of step reaches, the alternation, exact resume through the training loop, and `camworld train
--distill` errors."""

import numpy as np
import pytest
import torch

from camworld.cli import main
from camworld.config import ModelConfig, RunConfig, TrainConfig
from camworld.errors import UserError
from camworld.models.dit import WorldDiT
from camworld.train.distill import DistillModels, DistillObjective, distill_run_config, student_lora
from camworld.train.loop import latest_checkpoint, train

STRIDE, LAT_T, GRID, CH, TEXT_DIM, IMAGE = 2, 5, 4, 4, 8, 32


def teacher_config() -> RunConfig:
    return RunConfig(model=ModelConfig(in_channels=CH, dim=32, depth=2, heads=2, ffn_ratio=2, softmax_every=2,
                                       text_dim=TEXT_DIM, temporal_stride=STRIDE, gdn_backend="chunked",
                                       chunk_first=2, chunk_size=2),
                     train=TrainConfig(batch_size=2, steps=4, checkpoint_every=2, log_every=1, bf16=False, seed=5,
                                       shift=2.0, keep_checkpoints=5))


def run_config(**distill) -> RunConfig:
    overrides = ["distill.lora_rank=4", "distill.lora_alpha=4.0", "distill.generator_every=2", "train.ema_decay=0.9"]
    return distill_run_config(teacher_config(), overrides + [f"distill.{k}={v}" for k, v in distill.items()])


def teacher_state(cfg, seed=0):
    torch.manual_seed(seed)
    return WorldDiT(cfg.model).state_dict()


def clips(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = STRIDE * (LAT_T - 1) + 1
    K = np.array([[IMAGE, 0, IMAGE / 2], [0, IMAGE, IMAGE / 2], [0, 0, 1]], np.float32)
    items = []
    for i in range(n):
        c2w = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
        c2w[:, 2, 3] = 0.1 * np.arange(frames) * (1 + i % 2)
        items.append({"latents": torch.randn(LAT_T, GRID, GRID, CH, generator=g),
                      "image_hw": torch.tensor([IMAGE, IMAGE]), "c2w": torch.from_numpy(c2w),
                      "intrinsics": torch.from_numpy(np.stack([K] * frames)),
                      "text": torch.randn(3, TEXT_DIM, generator=g), "text_mask": torch.ones(3, dtype=torch.bool)})
    return items


def batch_of(items, draws):
    out = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    out["draw"] = torch.tensor(draws)
    return out


def objective(cfg):
    def no_text(captions):
        raise AssertionError("batches carry their text")

    return DistillObjective(cfg, encode_text=lambda c: (torch.zeros(1, 3, TEXT_DIM), torch.ones(1, 3, dtype=bool))
                            if c == [""] else no_text(c), encode_video=None, global_batch=2)


def test_models_start_as_the_teacher_and_only_the_right_parts_train():
    cfg = run_config()
    models = DistillModels(cfg, teacher_state(cfg))
    trainable = {n for n, p in models.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("critic.") or n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert not any(n.startswith("teacher.") for n in trainable)
    assert any(n.startswith("critic.") for n in trainable)
    x = torch.randn(1, LAT_T, GRID, GRID, CH)
    sigma, text, mask = torch.full((1, LAT_T), 0.5), torch.randn(1, 3, TEXT_DIM), torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        outs = [m(x, sigma, text, mask, causal=True) for m in (models.generator, models.critic, models.teacher)]
    assert torch.equal(outs[0], outs[2]) and torch.equal(outs[1], outs[2])
    lora = student_lora(models.state_dict())
    assert lora and all(not k.startswith("generator.") for k in lora)


@pytest.mark.parametrize("step, student_moves", [(0, False), (1, True)])
def test_each_step_reaches_the_critic_and_every_second_one_the_student(step, student_moves):
    cfg = run_config()
    models = DistillModels(cfg, teacher_state(cfg))
    with torch.no_grad():  # a critic that has left the teacher, so the DMD direction is not zero
        for p in models.critic.final_linear.parameters():
            p.add_(0.1 * torch.randn_like(p))
    loss, logs = objective(cfg)(models, batch_of(clips(2), [2 * step, 2 * step + 1]))
    loss.backward()
    moved = {n for n, p in models.named_parameters() if p.grad is not None and p.grad.abs().max() > 0}
    assert logs["generator_step"] == float(student_moves)
    assert any(n.startswith("critic.") for n in moved)
    assert not any(n.startswith("teacher.") for n in moved)
    assert not any(n.startswith("generator.") and not n.endswith(("lora_A", "lora_B")) for n in moved)
    assert any(n.startswith("generator.") for n in moved) == student_moves
    if student_moves:
        assert logs["real_fake_gap"] > 0 and np.isfinite(logs["dmd_loss"])


def test_resume_continues_with_the_same_losses(tmp_path):
    cfg = run_config()
    data = clips(4)
    groups = DistillModels.optimizer_groups
    whole = train(DistillModels(cfg, teacher_state(cfg)), objective(cfg), data, cfg.train, tmp_path / "a",
                  progress=False, param_groups=groups)
    cfg.train.steps = 2
    train(DistillModels(cfg, teacher_state(cfg)), objective(cfg), data, cfg.train, tmp_path / "b", progress=False,
          param_groups=groups)
    cfg.train.steps = 4
    resumed = train(DistillModels(cfg), objective(cfg), data, cfg.train, tmp_path / "b", progress=False,
                    resume_from=latest_checkpoint(tmp_path / "b"), param_groups=groups)
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole[2:]]
    lrs = [g["lr"] for g in latest_checkpoint(tmp_path / "b").optimizer["param_groups"]]
    assert lrs == [cfg.train.lr * cfg.distill.student_lr_scale, cfg.train.lr]
    assert [r["generator_step"] for r in whole] == [0.0, 1.0, 0.0, 1.0]


def test_bad_settings_and_missing_teacher_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(UserError, match="generator_every"):
        run_config(generator_every=0)
    with pytest.raises(UserError, match="sigma_low"):
        run_config(sigma_low=0.9, sigma_high=0.5)
    code = main(["train", "--distill", "--data", str(tmp_path), "--tokenizer", str(tmp_path), "--out",
                 str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "--init" in err and err.count("\n") == 1
