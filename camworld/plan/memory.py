"""Predicted peak memory of a generation run, phase by phase, for any preset, length, dtype, mode and offload flags.

A run is four phases in order (sana_wm.md §1 pipeline, §5 refiner, §9 memory aids): `text` (the text encoder
encodes the prompt and the empty CFG prompt, then is freed), `denoise` (stage-1 DiT, CFG-doubled batch), `refine`
(a second `WorldDiT` of the same config over [clean sink latent; clip], batch 1, as SANA-WM's distilled
"sink-bidirectional" refiner) and `decode` (the causal VAE, chunk by chunk, frames leaving as uint8). A phase needs
the weights resident on the device in it plus its activation peak. Weights stay resident from load to the end
unless offloaded: `offload_vae` / `offload_refiner` keep that model on the host except during its own phase
(SANA-WM's `--offload_vae --offload_refiner`); `no_refiner` skips the refiner.

Weights are counted exactly: parameters and buffers of the real modules built on the meta device (no allocation).
Activations are the live set at the peak of one forward under no_grad, not a sum over blocks. In a GDN block that
peak sits in the camera branch's reverse scan (gdn_mixer.py): the residual stream, block input and Plücker
embedding, the qkv output, q/k/numerator/out of the main branch and the camera q/k/v before and after UCPE are
live at once, plus the chunked backend's copies and its per-frame transitions and states [T, B·H, K, K] in fp32
(ops/gdn_chunked.py). So the model is linear in a few features, each a byte count:

    tokens       N·C·e          activation-dtype token tensors (N = tokens per forward, e = dtype bytes)
    tokens_fp32  N·C·4          fp32 tensors of the scans and the camera branch
    scan         B·T·H·K²·4     GDN transitions/states of one scan
    overhead_*   1              allocator and runtime slack on the CPU, per phase (0 on a GPU: not measured there)
    ffn_broadcast B·T·h·C²·e    CPU only: F.linear on the non-contiguous frame slices of GLUConvFFN's temporal conv
                                makes oneDNN broadcast the C×C weight over the batch dims (modules/ffn.py
                                `_temporal`; measured: 72 MiB for one small-preset bf16 chunk); cuBLAS copies
                                the input instead, so a GPU plan leaves it out

    stream_state (AR)           the carried `StreamState` as the code holds it (`stream_state_bytes`): the KV cache
                                of (sink + window) chunks × S × C per softmax block, GDN states H·K·K and conv
                                tails per GDN block, FFN tails; tails and cached values are views that keep their
                                whole source buffers alive, and the old and new state overlap during a step

with constants fitted per group (stage-1/refiner forward per mode, VAE decode per mode) by
benchmarks/plan_calibration.py, plus exact terms for the camera inputs and latents. The VAE decode is one feature,
`decoder_live_elements` per latent of a chunk plus two copies of the chunk's float frames, in fp32. The constants
come from the tiny and small presets only (head dim 64 in both, decoder of the same shape), so the full preset
is an extrapolation along the features' formulas. SDPA never
materialises score matrices here: torch's CPU flash kernel serves every call (measured: 12 MiB for 8 heads × 4096²
where the math path would take 512 MiB), as do the GPU kernels, so there is no N² term. In AR mode a forward sees
one chunk (plus its cache), so the peak does not grow with the length (§6.5).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from camworld.config import ModelConfig, RunConfig, TextConfig, TokenizerConfig
from camworld.errors import UserError
from camworld.models.block import is_softmax_block
from camworld.models.dit import WorldDiT
from camworld.ops.chunks import chunk_bounds
from camworld.tokenizer.vae import CausalVideoVAE

DTYPE_BYTES = {"fp32": 4, "bf16": 2}
MODES = ("bidirectional", "ar")
DEVICES = ("cuda", "cpu")
GIB = 2**30

# Gemma-2-2B-IT (the full preset's encoder, sana_wm.md §2.2/§2.6): 2.61B parameters per its model card; used only
# when no local copy is configured to count from.
ASSUMED_TEXT_ENCODER = ("Gemma-2-2B-IT", 2_614_341_888, 2304)
BUNDLED_TEXT_WIDTH = 384  # all-MiniLM-L6-v2
BUNDLED_TEXT_PARAMS = 22_713_728  # its safetensors, counted (tests/test_plan.py checks the two agree)

# Fitted by benchmarks/plan_calibration.py (non-negative least squares on the relative error of the measured phase
# peaks of `python3 -m camworld.plan.measure` runs: tiny 17/49/97 and small 17/33 frames, fp32 and bf16, both
# modes, one thread, peak resident set above the post-import baseline, on the 2-core Sapphire Rapids CPU of
# feasibility_cpu.md, torch 2.13). Whole-run peaks of all 20 runs within -13%..+13% after the fit; single phases
# within 28% (tiny's small decode/refine phases, where glibc keeps a few tens of MiB of freed heap after AR).
# Values multiply the feature byte counts above; overheads are bytes.
CALIBRATION: dict[str, dict[str, float]] = {
    "dit/bidirectional": {"tokens": 0.04192, "tokens_fp32": 35.55, "scan": 0.0, "ffn_broadcast": 0.6008,
                          "overhead_denoise": 9.031e6, "overhead_refine": 2.85e7},
    "dit/ar": {"tokens": 0.0, "tokens_fp32": 82.97, "scan": 16.59, "ffn_broadcast": 0.0, "stream_state": 1.75,
               "overhead_denoise": 0.0, "overhead_refine": 2.49e7},
    "decode/bidirectional": {"vae_activations": 1.696, "overhead": 2.723e7},
    "decode/ar": {"vae_activations": 2.209, "overhead": 2.955e7},
    "text": {"overhead": 1.272e7},
}


# How `camworld plan` names the features when it prints them.
TERM_LABELS = {
    "tokens": "token activations (dtype)",
    "tokens_fp32": "token activations (fp32 scans, camera)",
    "scan": "GDN scan transitions",
    "ffn_broadcast": "FFN temporal weight broadcast",
    "stream_state": "stream state (KV cache, tails)",
    "vae_activations": "VAE decode activations",
}


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: `num_frames` raw frames (16 fps), weights/activations `dtype`, stage-1 `mode`, offload flags.

    `guidance`: classifier-free guidance doubles the stage-1 batch. `device`: "cuda" (decoded frames go to the
    host) or "cpu" (host = device: the frames and the CPU-only terms count). `student`: stage 1 is the distilled
    student (ar only, one branch), a second copy of the DiT resident beside it (`WorldModel.student` merges its
    LoRA into a copy and keeps the DiT)."""

    num_frames: int
    dtype: str = "bf16"
    mode: str = "bidirectional"
    offload_vae: bool = False
    offload_refiner: bool = False
    no_refiner: bool = False
    guidance: bool = True
    device: str = "cuda"
    student: bool = False

    def __post_init__(self):
        if self.dtype not in DTYPE_BYTES:
            raise UserError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}")
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.student and (self.mode != "ar" or self.guidance):
            raise UserError("the distilled student samples in ar mode with one branch (no guidance)")

    def flags(self) -> list[str]:
        names = ("offload_vae", "offload_refiner", "no_refiner", "student")
        return [f"--{n}" for n in names if getattr(self, n)]


@dataclass(frozen=True)
class Phase:
    """One phase's device memory: resident `weights` and activation `terms`, bytes by name."""

    name: str
    weights: dict[str, int]
    terms: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.weights.values()) + sum(self.terms.values())


@dataclass(frozen=True)
class MemoryPlan:
    request: PlanRequest
    phases: tuple[Phase, ...]
    text_encoder: str  # which encoder was assumed and how its size was found

    @property
    def peak(self) -> int:
        return max(p.total for p in self.phases)

    @property
    def peak_phase(self) -> Phase:
        return max(self.phases, key=lambda p: p.total)

    def dominant(self) -> tuple[str, int]:
        """The largest single item (a model's weights or an activation term) of the peak phase."""
        items = {**{f"{k} weights": v for k, v in self.peak_phase.weights.items()}, **self.peak_phase.terms}
        name = max(items, key=items.get)
        return name, items[name]


def _count(module: torch.nn.Module) -> int:
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())


@functools.lru_cache(maxsize=32)
def _meta_count(kind: str, cfg_json: str) -> int:
    data = json.loads(cfg_json)
    with torch.device("meta"):
        if kind == "dit":
            return _count(WorldDiT(ModelConfig(**data)))
        return _count(CausalVideoVAE(TokenizerConfig(**{**data, "channel_mults": tuple(data["channel_mults"])})))


def dit_parameters(cfg: ModelConfig) -> int:
    """Parameters + buffers of `WorldDiT(cfg)`, counted on the meta device."""
    return _meta_count("dit", json.dumps(asdict(cfg)))


def vae_parameters(cfg: TokenizerConfig) -> int:
    return _meta_count("vae", json.dumps(asdict(cfg)))


def text_encoder_size(cfg: TextConfig) -> tuple[int, str, bool]:
    """(parameters, description, counted in fp32?) of the configured text encoder, without loading its weights.

    A local `encoder_path` is built from its config on the meta device; the bundled MiniLM is counted from its
    safetensors header and loads in fp32 (what `TextEncoder` does); otherwise Gemma-2-2B-IT is assumed."""
    if cfg.encoder_path:
        from transformers import AutoConfig, AutoModel

        path = Path(cfg.encoder_path)
        try:
            config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read a text encoder config from {path}: {str(exc).splitlines()[0]}") from None
        with torch.device("meta"):
            count = _count(AutoModel.from_config(config))
        return count, f"{path.name} ({count / 1e9:.2f}B params, counted from its config)", False
    if cfg.dim == BUNDLED_TEXT_WIDTH:
        from safetensors import safe_open

        from camworld.text.encoder import bundled_minilm_path

        try:
            path = bundled_minilm_path()
        except UserError:  # planning needs only the size, e.g. on a GPU machine without the encoder's package
            label = f"all-MiniLM-L6-v2 assumed ({BUNDLED_TEXT_PARAMS / 1e6:.1f}M params, fp32)"
            return BUNDLED_TEXT_PARAMS, label, True
        with safe_open(str(path / "model.safetensors"), "pt") as f:
            names = f.keys()
            count = sum(math.prod(f.get_slice(k).get_shape()) for k in names)
        return count, f"all-MiniLM-L6-v2 ({count / 1e6:.1f}M params, fp32, bundled)", True
    name, count, width = ASSUMED_TEXT_ENCODER
    return count, f"{name} assumed ({count / 1e9:.2f}B params, width {width}; set text.encoder_path to count)", False


def latent_shape(cfg: RunConfig, num_frames: int) -> tuple[int, int, int]:
    """(T, h, w) of a clip of `num_frames` raw frames."""
    st, s = cfg.tokenizer.temporal_stride, cfg.tokenizer.spatial_stride
    if num_frames < 1 or (num_frames - 1) % st:
        raise UserError(f"num_frames must be {st}*k + 1 for the {cfg.preset} preset, got {num_frames}")
    return (num_frames - 1) // st + 1, cfg.tokenizer.height // s, cfg.tokenizer.width // s


def dit_features(cfg: ModelConfig, batch: int, frames: int, h: int, w: int, e: int, device: str) -> dict[str, int]:
    """The calibrated features of one `WorldDiT` forward over `frames` latent frames of batch `batch`."""
    n, c, k = batch * frames * h * w, cfg.dim, cfg.dim // cfg.heads
    features = {"tokens": n * c * e, "tokens_fp32": n * c * 4, "scan": batch * frames * cfg.heads * k * k * 4}
    if device == "cpu":
        features["ffn_broadcast"] = batch * frames * h * c * c * e
    return features


def stream_state_bytes(cfg: ModelConfig, batch: int, frames: int, h: int, w: int, e: int, chunks: int) -> int:
    """Bytes a `StreamState` keeps alive after `chunks` chunks of `frames` frames, as the code holds them: the GDN conv
    tails and FFN tails are views that keep their whole [B, k-1+T, S, C] history and [B, T, S, C] FFN output alive,
    a cached chunk's main values are a view into the [B, T, S, 3C] qkv output, and the camera cache is fp32."""
    s, c, k = h * w, cfg.dim, cfg.dim // cfg.heads
    softmax = sum(is_softmax_block(cfg, i) for i in range(cfg.depth))
    gdn = cfg.depth - softmax
    chunk = batch * frames * s * c
    history = 2 * batch * (frames + max(cfg.conv_kernel - 1, 0)) * s * c * e if cfg.conv_kernel else 0
    cached_chunks = min(cfg.kv_sink_chunks + cfg.kv_window_chunks, chunks)
    per_cached_chunk = chunk * (4 * e + 2 * 4)  # rotated k + qkv buffer (main), k and v in fp32 (camera)
    return gdn * (history + batch * cfg.heads * k * (2 * k + 1) * 4) + cfg.depth * chunk * e + (
        softmax * cached_chunks * per_cached_chunk
    )


def dit_exact_terms(cfg: ModelConfig, batch: int, frames: int, h: int, w: int, e: int) -> dict[str, int]:
    """Terms computed exactly: latents in and out (and the CFG combination) and the camera inputs."""
    s = h * w
    return {
        "latents": 3 * batch * frames * s * cfg.in_channels * e,
        "camera inputs": batch * frames * s * (6 * cfg.temporal_stride * e + 2 * 16 * 4),
    }


def decoder_live_elements(cfg: TokenizerConfig) -> int:
    """Largest live feature-map elements per latent in `GroupDecoder`: over its res blocks (input, two
    intermediates, output) and upsampling steps (input, upsampled, conv output), at each level's resolution."""
    widths = [cfg.base_channels * m for m in cfg.channel_mults]
    levels = len(widths)
    h, w = cfg.height // cfg.spatial_stride, cfg.width // cfg.spatial_stride
    best = 0
    for i in reversed(range(levels)):
        pixels = h * w * 4 ** (levels - 1 - i)
        best = max(best, 4 * pixels * widths[i])
        if i > 0:
            best = max(best, pixels * widths[i] * 5 + 4 * pixels * widths[i - 1])
    return best


@dataclass(frozen=True)
class PhaseModel:
    """A phase before calibration: resident `weights`, the `features` scaled by CALIBRATION[`group`], and the
    `exact` terms (bytes by name)."""

    name: str
    weights: dict[str, int]
    group: str
    features: dict[str, int]
    exact: dict[str, int]

    def calibrated(self) -> Phase:
        coefficients = CALIBRATION[self.group]
        terms = {TERM_LABELS.get(k, k): round(coefficients[k] * v) for k, v in self.features.items()
                 if round(coefficients[k] * v)}
        return Phase(self.name, self.weights, {**terms, **self.exact})


def _dit_phase(name: str, cfg: RunConfig, request: PlanRequest, weights, batch: int, frames: int) -> PhaseModel:
    """A DiT phase (stage-1 or refiner) over `frames` latent frames; AR forwards see one chunk at a time."""
    _, h, w = latent_shape(cfg, request.num_frames)
    e = DTYPE_BYTES[request.dtype]
    ar = request.mode == "ar"
    call_frames = min(frames, max(cfg.model.chunk_first, cfg.model.chunk_size)) if ar else frames
    features = dit_features(cfg.model, batch, call_frames, h, w, e, request.device)
    if ar:
        # the last chunk's forward sees the most cached chunks: all earlier ones, up to sink + window
        earlier = len(chunk_bounds(frames, cfg.model.chunk_first, cfg.model.chunk_size)) - 1
        features["stream_state"] = stream_state_bytes(cfg.model, batch, call_frames, h, w, e, earlier)
    if request.device == "cpu":
        features[f"overhead_{name}"] = 1
    exact = dit_exact_terms(cfg.model, batch, call_frames, h, w, e)
    return PhaseModel(name, weights, f"dit/{request.mode}", features, exact)


def _decode_phase(cfg: RunConfig, request: PlanRequest, weights) -> PhaseModel:
    t, _, _ = latent_shape(cfg, request.num_frames)
    tok = cfg.tokenizer
    n = min(tok.chunk_latents or t, t)
    # fp32 whatever the dtype: on the CPU a bf16 decode peaks as high as an fp32 one (measured); the float frames
    # of a chunk and a temporary of `to_uint8` are live with the last feature maps
    frames = tok.temporal_stride * tok.height * tok.width * 3
    features = {"vae_activations": n * (decoder_live_elements(tok) + 2 * frames) * 4}
    exact = {}
    if request.device == "cpu":
        features["overhead"] = 1
        exact["decoded frames (uint8)"] = request.num_frames * tok.height * tok.width * 3
    return PhaseModel("decode", weights, f"decode/{request.mode}", features, exact)


def parameter_bytes(cfg: RunConfig, dtype: str) -> dict[str, int]:
    """Device bytes of each model's weights in `dtype` (the bundled text encoder always loads in fp32)."""
    e = DTYPE_BYTES[dtype]
    text_params, _, text_fp32 = text_encoder_size(cfg.text)
    dit = dit_parameters(cfg.model) * e
    return {
        "text encoder": text_params * (4 if text_fp32 else e),
        "dit": dit,
        "refiner": dit,
        "vae": vae_parameters(cfg.tokenizer) * e,
    }


def phase_models(cfg: RunConfig, request: PlanRequest) -> list[PhaseModel]:
    """The phases of the run `request` describes, in order, before calibration."""
    t, _, _ = latent_shape(cfg, request.num_frames)
    weights = parameter_bytes(cfg, request.dtype)
    _, _, text_fp32 = text_encoder_size(cfg.text)
    refine = not request.no_refiner
    resident = {"dit": weights["dit"]}
    if request.student:
        resident["student"] = weights["dit"]
    if not request.offload_vae:
        resident["vae"] = weights["vae"]
    if refine and not request.offload_refiner:
        resident["refiner"] = weights["refiner"]

    text_bytes = 4 if text_fp32 else DTYPE_BYTES[request.dtype]
    width = BUNDLED_TEXT_WIDTH if text_fp32 else cfg.text.dim
    # the prompt and the empty CFG prompt × max_tokens hidden states, a few live per layer
    text_exact = {"encoder activations": 8 * 2 * cfg.text.max_tokens * width * text_bytes}
    text_features = {"overhead": 1} if request.device == "cpu" else {}
    phases = [PhaseModel("text", {"text encoder": weights["text encoder"]}, "text", text_features, text_exact)]
    phases.append(_dit_phase("denoise", cfg, request, dict(resident), 2 if request.guidance else 1, t))
    if refine:
        phases.append(_dit_phase("refine", cfg, request, {**resident, "refiner": weights["refiner"]}, 1, t + 1))
    phases.append(_decode_phase(cfg, request, {**resident, "vae": weights["vae"]}))
    return phases


def plan_memory(cfg: RunConfig, request: PlanRequest) -> MemoryPlan:
    """The per-phase memory of generating `request.num_frames` frames with `cfg`."""
    phases = tuple(p.calibrated() for p in phase_models(cfg, request))
    return MemoryPlan(request, phases, text_encoder_size(cfg.text)[1])


# The offload flags by what they cost: a VAE round trip is small, the refiner's is large, no refiner loses quality.
FLAG_COSTS = {"offload_vae": 1, "offload_refiner": 2, "no_refiner": 4}


def flag_combinations(request: PlanRequest) -> list[PlanRequest]:
    """Every combination of offload flags that includes the requested ones, cheapest first."""
    options = []
    for mask in range(8):
        chosen = {name: bool(mask >> i & 1) for i, name in enumerate(FLAG_COSTS)}
        chosen = {name: on or getattr(request, name) for name, on in chosen.items()}
        if chosen["no_refiner"] and chosen["offload_refiner"]:
            continue  # offloading a refiner that never runs is no flag at all
        options.append(replace(request, **chosen))
    options = list(dict.fromkeys(options))
    return sorted(options, key=lambda r: sum(cost for name, cost in FLAG_COSTS.items() if getattr(r, name)))


def fit_on(cfg: RunConfig, request: PlanRequest, budget_bytes: float) -> tuple[MemoryPlan | None, MemoryPlan]:
    """(the cheapest plan that fits in `budget_bytes`, or None; the plan with the smallest peak of all)."""
    plans = [plan_memory(cfg, r) for r in flag_combinations(request)]
    fitting = next((p for p in plans if p.peak <= budget_bytes), None)
    return fitting, min(plans, key=lambda p: p.peak)
