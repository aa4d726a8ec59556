"""The chunk plan: bounds, per-frame chunk numbers and the reverse-scan reset frames."""

from __future__ import annotations

import pytest
import torch

from camworld.errors import UserError
from camworld.ops.chunks import chunk_bounds, chunk_index, rebase_frames, reverse_gate_mask


def test_first_chunk_of_four_then_threes():
    assert chunk_bounds(11) == [(0, 4), (4, 7), (7, 10), (10, 11)]
    assert chunk_bounds(3) == [(0, 3)]
    assert chunk_bounds(0) == []
    assert chunk_bounds(7, first=1, size=2) == [(0, 1), (1, 3), (3, 5), (5, 7)]
    assert chunk_index(8).tolist() == [0, 0, 0, 0, 1, 1, 1, 2]


def test_reverse_gate_mask_marks_interior_starts_and_single_frame_chunks():
    assert torch.nonzero(reverse_gate_mask(11)).flatten().tolist() == [4, 7, 10]
    assert torch.nonzero(reverse_gate_mask(5, first=1, size=2)).flatten().tolist() == [0, 1, 3]
    assert torch.nonzero(reverse_gate_mask(4, first=1, size=1)).flatten().tolist() == [0, 1, 2, 3]
    assert not reverse_gate_mask(4).any()


@pytest.mark.parametrize("offset", [0, 3, 4, 6])
def test_reverse_gate_mask_offset_is_a_window_of_the_global_plan(offset):
    assert torch.equal(reverse_gate_mask(5, offset=offset), reverse_gate_mask(offset + 5)[offset:])


def test_rebase_frames_start_the_chunk_so_many_chunks_back():
    assert rebase_frames(10, back=2) == [0] * 10  # a training clip of 3 chunks: frame 0 everywhere
    assert rebase_frames(14, back=2) == [0] * 10 + [4, 4, 4, 7]
    assert rebase_frames(14, back=0) == [0] * 4 + [4] * 3 + [7] * 3 + [10] * 3 + [13]
    assert rebase_frames(14, back=None) == [0] * 14
    assert rebase_frames(5, first=1, size=2, back=1) == [0, 0, 0, 1, 1]


def test_bad_plan_raises_user_error():
    with pytest.raises(UserError):
        chunk_bounds(5, first=0)
    with pytest.raises(UserError):
        reverse_gate_mask(5, offset=-1)
    with pytest.raises(UserError):
        rebase_frames(5, back=-1)
