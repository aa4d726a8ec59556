"""The sink + window KV cache keeps exactly the first chunks and the most recent ones, as values."""

from __future__ import annotations

import pytest
import torch

from camworld.errors import UserError
from camworld.ops.kv_cache import SinkWindowKVCache


def _chunk(i, tokens=2):
    k = torch.full((1, 2, tokens, 4), float(i))
    return k, -k[..., :3]


def test_keeps_exactly_sink_and_window_chunks():
    cache = SinkWindowKVCache(sink_chunks=1, window_chunks=2)
    for i in range(6):
        cache = cache.append_chunk(*_chunk(i))
        kept = [0, *range(max(1, i - 1), i + 1)]
        k, v = cache.keys_values()
        assert len(cache) == len(kept)
        assert k[0, 0, ::2, 0].tolist() == kept
        assert torch.equal(v, -k[..., :3])
    assert cache.chunks_seen == 6


def test_current_chunk_goes_last_and_empty_cache_gives_none():
    cache = SinkWindowKVCache(sink_chunks=2, window_chunks=1)
    assert cache.keys_values() is None
    k, _ = cache.keys_values(current=_chunk(9))
    assert k[0, 0, :, 0].tolist() == [9.0, 9.0]
    for i in range(4):
        cache = cache.append_chunk(*_chunk(i))
    k, _ = cache.keys_values(current=_chunk(9))
    assert k[0, 0, ::2, 0].tolist() == [0, 1, 3, 9]


def test_append_returns_a_new_cache_and_leaves_the_old_one():
    empty = SinkWindowKVCache()
    one = empty.append_chunk(*_chunk(0))
    two = one.append_chunk(*_chunk(1))
    assert len(empty) == 0 and len(one) == 1 and len(two) == 2
    assert one.keys_values()[0].shape[2] == 2


def test_bad_chunk_raises_user_error():
    with pytest.raises(UserError):
        SinkWindowKVCache().append_chunk(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 5, 4))
    with pytest.raises(UserError):
        SinkWindowKVCache(sink_chunks=-1)
