"""A text-embedding cache: token features [L, D] and mask [L] per prompt, saved and loaded as safetensors.

A dataset's captions are encoded once and stored; training then reads the file instead of running the encoder.
The file records which encoder, token length and width made it, so a cache cannot be mixed with another encoder.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from camworld.errors import UserError
from camworld.fileio import atomic_path


class TextEmbeddingCache:
    """Dict from prompt text to (features float32 [L, D], mask bool [L]), tagged with the encoder that made it."""

    def __init__(self, encoder_id: str, max_tokens: int, dim: int):
        self.encoder_id, self.max_tokens, self.dim = encoder_id, max_tokens, dim
        self._items: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, text: str) -> bool:
        return text in self._items

    def texts(self) -> list[str]:
        return list(self._items)

    def get(self, text: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self._items.get(text)

    def put(self, text: str, features: torch.Tensor, mask: torch.Tensor) -> None:
        if features.shape != (self.max_tokens, self.dim) or mask.shape != (self.max_tokens,):
            raise ValueError(f"expected features [{self.max_tokens}, {self.dim}] and mask [{self.max_tokens}], got "
                             f"{tuple(features.shape)} and {tuple(mask.shape)}")
        self._items[text] = (features.detach().float().cpu(), mask.detach().bool().cpu())

    def save(self, path: str | os.PathLike) -> None:
        """Write features [N, L, D], mask [N, L] and the N texts (JSON metadata) atomically."""
        texts = self.texts()
        if texts:
            features = torch.stack([self._items[t][0] for t in texts])
            mask = torch.stack([self._items[t][1] for t in texts])
        else:
            features = torch.zeros(0, self.max_tokens, self.dim)
            mask = torch.zeros(0, self.max_tokens, dtype=torch.bool)
        meta = {"texts": json.dumps(texts), "encoder_id": self.encoder_id, "max_tokens": str(self.max_tokens),
                "dim": str(self.dim)}
        with atomic_path(path) as tmp:
            save_file({"features": features.contiguous(), "mask": mask.contiguous()}, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextEmbeddingCache:
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                features, mask = f.get_tensor("features"), f.get_tensor("mask")
        except (OSError, SafetensorError) as exc:
            raise UserError(f"cannot read text-embedding cache {path}: {str(exc).splitlines()[0]}") from None
        try:
            texts = json.loads(meta["texts"])
            cache = cls(meta["encoder_id"], int(meta["max_tokens"]), int(meta["dim"]))
        except (KeyError, ValueError):
            raise UserError(f"{path} is not a text-embedding cache (metadata missing)") from None
        if features.shape != (len(texts), cache.max_tokens, cache.dim) or mask.shape != features.shape[:2]:
            raise UserError(f"{path}: features {tuple(features.shape)} do not match its {len(texts)} texts")
        for i, text in enumerate(texts):
            cache.put(text, features[i], mask[i])
        return cache
