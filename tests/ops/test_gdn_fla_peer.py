"""Peer check against flash-linear-attention's own pure-PyTorch gated delta rule (one token per frame).

fla's `fla/ops/__init__` needs triton, so `fla/ops/gated_delta_rule/naive.py` is loaded by file path; the test
skips when fla-core is not installed. Conventions there: g is the log-decay, `scale` multiplies q (we pass 1),
the state is [B, H, K, V] as ours, and the argument order is (beta, g) in the recurrent form, (g, beta) in the chunk
form. The chunk form also drives our fla backend's glue (`token_kernel_frame_scan`), which checks that mapping,
reverse scans included, on the CPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from camworld.errors import UserError
from camworld.ops.gdn import frame_delta_scan
from camworld.ops.gdn_fla import token_kernel_frame_scan


def _fla_naive():
    spec = importlib.util.find_spec("fla")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("flash-linear-attention (fla-core) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "ops" / "gated_delta_rule" / "naive.py"
    if not path.exists():
        pytest.skip(f"{path} is missing from this fla version")
    module_spec = importlib.util.spec_from_file_location("fla_gated_delta_rule_naive", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", ["reference", "chunked"])
def test_one_token_per_frame_equals_fla_naive_recurrent(gdn_inputs, backend):
    naive = _fla_naive()
    q, k, v, beta, gamma, state = gdn_inputs(frames=9, tokens=1, dk=8, dv=6, dtype=torch.float32)
    o, final = frame_delta_scan(q, k, v, beta, gamma, initial_state=state, return_state=True, backend=backend)
    o_fla, final_fla = naive.naive_recurrent_gated_delta_rule(
        q[:, :, 0], k[:, :, 0], v[:, :, 0], beta[:, :, 0], gamma.log(),
        scale=1.0, initial_state=state, output_final_state=True,
    )
    torch.testing.assert_close(o[:, :, 0], o_fla, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final, final_fla, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reverse", [False, True])
def test_fla_glue_with_naive_chunk_kernel_equals_reference(gdn_inputs, reverse):
    naive = _fla_naive()
    inputs = gdn_inputs(frames=7, tokens=1, dk=8, dv=6, dtype=torch.float32)
    o, final = token_kernel_frame_scan(
        naive.naive_chunk_gated_delta_rule, *inputs[:5], reverse=reverse, initial_state=inputs[5]
    )
    o_ref, final_ref = frame_delta_scan(
        *inputs[:5], reverse=reverse, initial_state=inputs[5], return_state=True, backend="reference"
    )
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final, final_ref, atol=1e-5, rtol=1e-5)


def test_fla_glue_refuses_several_tokens_per_frame(gdn_inputs):
    inputs = gdn_inputs(tokens=3)
    with pytest.raises(UserError, match="S == 1"):
        token_kernel_frame_scan(None, *inputs[:5], reverse=False, initial_state=inputs[5])
