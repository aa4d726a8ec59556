"""Named presets: `tiny` trains on 2 CPU cores, `small` on one GPU, `full` is SANA-WM's 2.6B stage-1 architecture."""

from __future__ import annotations

from camworld.config import ModelConfig, RunConfig, TextConfig, TokenizerConfig, TrainConfig
from camworld.errors import UserError


def tiny() -> RunConfig:
    """~10M-parameter DiT on a 9x16 latent grid (72x128 video, tokenizer stride (4, 8, 8))."""
    return RunConfig(preset="tiny", model=ModelConfig(), tokenizer=TokenizerConfig(), text=TextConfig(),
                     train=tiny_train())


def tiny_train() -> TrainConfig:
    """Stage-1 training values of the tiny preset (stages scale them, `camworld.train.stages`).

    shift 4.0: `camworld.flow.schedule.resolution_shift(9 * 16)` = 9.95·√(144 / 880) ≈ 4.0, SANA-WM's 9.95 moved
    from its 22×40 latent grid to the tiny 9×16 one by the √(tokens per frame) rule (fewer redundant tokens per
    frame keep more signal at a given σ, so less of the schedule needs to sit at high noise). lr 3e-4: trained from
    scratch rather than fine-tuned from SANA-Video, a 10M-parameter model needs the usual from-scratch AdamW lr.
    Clips: 17 raw frames (5 latent) for stages 1-2, 49 (13 latent, chunk plan 4+3+3+3) for stages 3-4.
    """
    return TrainConfig(lr=3e-4, batch_size=4, steps=3000, log_every=10, checkpoint_every=250, ema_decay=0.999,
                       clip_frames=17, long_clip_frames=49, shift=4.0)


def small() -> RunConfig:
    return RunConfig(
        preset="small",
        model=ModelConfig(in_channels=32, dim=512, depth=12, heads=8, ffn_ratio=3, text_dim=384, temporal_stride=4),
        tokenizer=TokenizerConfig(
            temporal_stride=4, spatial_stride=8, latent_channels=32, base_channels=64, height=144, width=256
        ),
        text=TextConfig(max_tokens=64, dim=384),
    )


def full() -> RunConfig:
    """SANA-WM stage-1: 20 blocks, width 2240, 20 heads x 112, FFN ratio 3, 128 latent channels, softmax at
    blocks 3, 7, 11, 15, 19, Gemma-2-2B text width 2304, LTX-2 VAE temporal stride 8 (48 Plücker channels)."""
    return RunConfig(
        preset="full",
        model=ModelConfig(
            in_channels=128, dim=2240, depth=20, heads=20, ffn_ratio=3, text_dim=2304, temporal_stride=8
        ),
        # LTX-2's shape (stride (8, 32, 32), 128 channels, 704x1280); our own VAE architecture, not its weights.
        tokenizer=TokenizerConfig(
            temporal_stride=8,
            spatial_stride=32,
            latent_channels=128,
            base_channels=128,
            channel_mults=(1, 2, 4, 4, 4),
            res_blocks=2,
            height=704,
            width=1280,
            chunk_latents=4,
        ),
        # Gemma-2-2B-IT hidden states, 300 tokens: set text.encoder_path to a local copy (never downloaded).
        text=TextConfig(encoder_path="", max_tokens=300, dim=2304),
    )


PRESETS = {"tiny": tiny, "small": small, "full": full}


def get_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()
