"""Set-up shared by `camworld train` (DiT stages), `--refiner` and `--distill`: the `--steps` override, reading
`--init`, the frozen tokenizer with the clip dataset it must fit, and the closing report line."""

from __future__ import annotations

from pathlib import Path

from camworld.errors import UserError


def override_steps(cfg, steps: int | None) -> None:
    """Set cfg.train.steps from `--steps` when given (a resumed run may be extended this way)."""
    if steps is None:
        return
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    cfg.train.steps = steps


def read_init(path: str, ema: bool):
    """(RunConfig, state dict) of `--init`: a checkpoint folder (its EMA weights when `ema`) or a weights folder
    (config.json + model.safetensors without a trainer state, e.g. the bundled dit/, which holds packaged EMA
    weights, so `ema` asks for nothing more there)."""
    from camworld.config import RunConfig, from_dict
    from camworld.train.checkpoint import STATE_FILE, load_checkpoint
    from camworld.weights_dirs import read_weights_dir

    folder = Path(path)
    if not (folder / STATE_FILE).is_file() and (folder / "model.safetensors").is_file():
        cfg, state = read_weights_dir(folder)
    else:
        ckpt = load_checkpoint(folder)
        cfg, state = from_dict(RunConfig, ckpt.config), ckpt.ema if ema else ckpt.model
    return restore_tuples(cfg), state


def restore_tuples(cfg):
    """JSON gives lists where the config has tuples; restore the ones code relies on (returns cfg)."""
    cfg.train.betas = tuple(cfg.train.betas)
    cfg.tokenizer.channel_mults = tuple(cfg.tokenizer.channel_mults)
    cfg.refiner.sigmas = tuple(cfg.refiner.sigmas)
    cfg.distill.sigmas = tuple(cfg.distill.sigmas)
    return cfg


def tokenizer_and_clips(cfg, tokenizer: str, data: str):
    """(frozen VAE from `tokenizer`, ClipDataset of cfg.train.clip_frames raw frames from `data`); a UserError names
    the mismatch when the VAE's channels or stride differ from the model's or the clip length is not stride·k + 1."""
    from camworld.data.dataset import ClipDataset
    from camworld.tokenizer.vae import load_vae

    vae = load_vae(tokenizer)
    tok = vae.cfg
    if (tok.latent_channels, tok.temporal_stride) != (cfg.model.in_channels, cfg.model.temporal_stride):
        raise UserError(f"the tokenizer has {tok.latent_channels} channels and stride {tok.temporal_stride}, the "
                        f"model wants {cfg.model.in_channels} and {cfg.model.temporal_stride}")
    stride = tok.temporal_stride
    if (cfg.train.clip_frames - 1) % stride or cfg.train.clip_frames <= stride:
        raise UserError(f"train.clip_frames {cfg.train.clip_frames} is not {stride}·k + 1 with k >= 1")
    dataset = ClipDataset(data, stride=stride, latent_frames=(cfg.train.clip_frames - 1) // stride, with_depth=False,
                          hflip=cfg.train.hflip)
    return vae.requires_grad_(False), dataset


def report_last(records: list[dict], what: str, out: str) -> None:
    """Print the last logged loss of a finished run and where its checkpoints are."""
    if records:
        last = records[-1]
        print(f"{what} step {last['step']}: loss {last['loss']:.4f}; checkpoints in {Path(out) / 'checkpoints'}")
