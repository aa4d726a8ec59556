"""3D RoPE: Wan's axis split, interleaved pairs, scores that depend only on position offsets, the half-size table."""

import pytest
import torch

from camworld.errors import UserError
from camworld.modules.rope import Rotary, axis_pairs, rotary_tables


def test_axis_split_matches_wan():
    assert axis_pairs(112) == (20, 18, 18)  # 40 / 36 / 36 channels (sana_wm.md §2.5)
    assert axis_pairs(56) == (10, 9, 9)  # the camera branch's half RoPE
    assert axis_pairs(64) == (12, 10, 10)
    assert axis_pairs(32) == (6, 5, 5)
    with pytest.raises(UserError):
        axis_pairs(15)


def test_table_values_follow_the_wan_formula():
    rot = rotary_tables(torch.tensor([0, 3]), 2, 5, 32, theta=10000.0)
    assert rot.cos.shape == (2, 10, 16)
    angles = torch.atan2(rot.sin, rot.cos)
    # frame 3, token (row 1, col 4) = index 9: t pair 1 of 6, h pair 0, w pair 2 of 5
    assert angles[1, 9, 1].item() == pytest.approx(3 * 10000 ** (-1 / 6), rel=1e-5)
    assert angles[1, 9, 6].item() == pytest.approx(1.0, rel=1e-5)
    assert angles[1, 9, 11 + 2].item() == pytest.approx(4 * 10000 ** (-2 / 5), rel=1e-5)
    assert torch.all(angles[0, 0] == 0)


def test_half_table_takes_the_first_pairs_of_each_axis():
    frames = torch.tensor([0, 1, 5])
    full = rotary_tables(frames, 3, 4, 64)
    half = rotary_tables(frames, 3, 4, 64, rotary_dim=32)
    t, h, w = axis_pairs(64)
    ht, hh, hw = axis_pairs(32)
    pick = [*range(ht), *range(t, t + hh), *range(t + h, t + h + hw)]
    torch.testing.assert_close(half.cos, full.cos[..., pick])
    torch.testing.assert_close(half.sin, full.sin[..., pick])


def _scores(q, k, q_pos, k_pos, head_dim=32):
    positions = torch.tensor([q_pos, k_pos])
    frames = positions[:, 0]
    # tables over a grid big enough to hold both positions; pick the two tokens out
    full = rotary_tables(torch.arange(int(frames.max()) + 1), 8, 8, head_dim)
    qi = q_pos[1] * 8 + q_pos[2]
    ki = k_pos[1] * 8 + k_pos[2]
    rot_q = Rotary(full.cos[q_pos[0], qi][None, None], full.sin[q_pos[0], qi][None, None])
    rot_k = Rotary(full.cos[k_pos[0], ki][None, None], full.sin[k_pos[0], ki][None, None])
    return (rot_q.apply(q) * rot_k.apply(k)).sum()


def test_scores_depend_only_on_position_offsets():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 1, 1, 32, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 1, 1, 1, 32, generator=gen, dtype=torch.float64)
    base = _scores(q, k, (2, 1, 3), (0, 4, 1))
    shifted = _scores(q, k, (5, 3, 7), (3, 6, 5))  # both moved by (3, 2, 4)
    assert shifted.item() == pytest.approx(base.item(), abs=1e-5)
    other = _scores(q, k, (2, 1, 3), (1, 4, 1))  # a different time offset
    assert abs(other.item() - base.item()) > 1e-3


def test_rotation_preserves_norm_and_inverts():
    rot = rotary_tables(torch.arange(3), 2, 3, 32)
    x = torch.randn(2, 3, 6, 2, 32, dtype=torch.float64)
    y = rot.apply(x)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rot.apply(y, inverse=True), x)
    # interleaved pairs: channels (0, 1) rotate together by the first t frequency (1 rad per frame)
    c, s = rot.cos[1, 0, 0].double(), rot.sin[1, 0, 0].double()
    torch.testing.assert_close(y[:, 1, 0, :, 0], c * x[:, 1, 0, :, 0] - s * x[:, 1, 0, :, 1])
