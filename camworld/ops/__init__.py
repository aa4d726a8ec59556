"""Numerical kernels of the model: the frame-wise gated delta rule, softmax attention, chunk plans and KV caches."""

from camworld.ops.attention import attention, chunk_causal_mask
from camworld.ops.chunks import chunk_bounds, chunk_index, reverse_gate_mask
from camworld.ops.gdn import cumulative_linear_scan, frame_delta_scan, key_scale
from camworld.ops.kv_cache import SinkWindowKVCache

__all__ = [
    "SinkWindowKVCache",
    "attention",
    "chunk_bounds",
    "chunk_causal_mask",
    "chunk_index",
    "cumulative_linear_scan",
    "frame_delta_scan",
    "key_scale",
    "reverse_gate_mask",
]
