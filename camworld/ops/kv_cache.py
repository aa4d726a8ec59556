"""A streaming KV cache for softmax layers: an attention sink (the first chunks) plus a window of recent chunks.

SANA-WM's streaming student attends to chunk 0 (the sink) + the last `num_cached_blocks = 2` chunks + the current
chunk (sana_wm.md §2.4, §6.5); GDN layers carry their recurrent state instead and need no cache. The cache holds
only past chunks: a caller attends to `keys_values(current=(k, v))` and appends the chunk after its KV-save pass.
The cache is a value: `append_chunk` returns a new cache and leaves this one unchanged, so a sampler can retry a
chunk from the same cache.
"""

from __future__ import annotations

import torch

from camworld.errors import UserError


class SinkWindowKVCache:
    """Keys and values of the first `sink_chunks` chunks and of the last `window_chunks` chunks after them."""

    def __init__(self, sink_chunks: int = 1, window_chunks: int = 2):
        if sink_chunks < 0 or window_chunks < 0:
            raise UserError(f"sink and window chunk counts must be >= 0, got {sink_chunks}, {window_chunks}")
        self.sink_chunks = sink_chunks
        self.window_chunks = window_chunks
        self._sink: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
        self._window: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
        self.chunks_seen = 0

    def __len__(self) -> int:
        """Number of chunks held (at most sink_chunks + window_chunks)."""
        return len(self._sink) + len(self._window)

    def append_chunk(self, k: torch.Tensor, v: torch.Tensor) -> SinkWindowKVCache:
        """A new cache with this chunk's k [B, H, N, D] and v [B, H, N, Dv] added, the oldest window chunk dropped."""
        if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
            raise UserError(f"chunk keys/values must be [B, H, N, D] with matching B, H, N, got {k.shape}, {v.shape}")
        new = SinkWindowKVCache(self.sink_chunks, self.window_chunks)
        new.chunks_seen = self.chunks_seen + 1
        if len(self._sink) < self.sink_chunks:
            new._sink, new._window = (*self._sink, (k, v)), self._window
        else:
            window = (*self._window, (k, v))
            new._sink, new._window = self._sink, window[len(window) - self.window_chunks :]
        return new

    def keys_values(
        self, current: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(k, v) over sink chunks, then window chunks, then `current` if given, concatenated along N
        ([B, H, N_total, D]); None when the cache is empty and no current chunk is given."""
        chunks = [*self._sink, *self._window, *([current] if current is not None else [])]
        if not chunks:
            return None
        return torch.cat([c[0] for c in chunks], dim=2), torch.cat([c[1] for c in chunks], dim=2)
