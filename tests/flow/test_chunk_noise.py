"""SANA-WM's per-chunk noise mixture: monotonicity of each mode and exact uniformity of the monotone draws."""

import itertools
from collections import Counter

import pytest
import torch

from camworld.flow.chunk_noise import (
    MODES,
    ChunkNoiseMixture,
    anchored_levels,
    chunk_levels,
    sample_chunk_sigma,
    uniform_nondecreasing,
)
from camworld.ops.chunks import chunk_bounds


def _nondecreasing(seq):
    return all(a <= b for a, b in zip(seq, seq[1:]))


@pytest.mark.parametrize("mode", MODES)
def test_modes_are_monotone_in_chunk_order(mode):
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 5, 9):
        for _ in range(50):
            levels = chunk_levels(mode, n, g)
            assert len(levels) == n and _nondecreasing(levels)
            assert all(0 <= x <= 999 for x in levels)
            if mode == "same_t":
                assert len(set(levels)) == 1
            if mode == "teacher_forcing_clean" and n > 1:
                assert levels[0] == 0


def test_teacher_forcing_prefix_lengths_cover_one_to_n_minus_one():
    g = torch.Generator().manual_seed(1)
    n = 5
    clean = Counter()
    for _ in range(400):
        levels = chunk_levels("teacher_forcing_clean", n, g)
        clean[min(i for i in range(n) if levels[i] != 0 or i == n - 1)] += 1
    assert set(clean) >= {1, 2, 3, 4} - {n}


def test_uniform_nondecreasing_is_uniform_on_a_small_case():
    length, low, high = 3, 2, 5
    support = [s for s in itertools.product(range(low, high + 1), repeat=length) if _nondecreasing(s)]
    assert len(support) == 20  # C(3 + 4 - 1, 3)
    g = torch.Generator().manual_seed(2)
    n = 20000
    counts = Counter(tuple(uniform_nondecreasing(length, low, high, g)) for _ in range(n))
    assert set(counts) == set(support)
    expected = n / len(support)
    chi2 = sum((counts[s] - expected) ** 2 / expected for s in support)
    assert chi2 < 43.8  # 99.9th percentile of chi-square with 19 degrees of freedom


def test_anchor_constraint_holds():
    g = torch.Generator().manual_seed(3)
    for anchor in range(4):
        levels = anchored_levels(4, anchor, 500, g)
        assert levels[anchor] == 500 and _nondecreasing(levels)


def test_frames_of_a_chunk_share_sigma_and_mode_frequencies():
    bounds = chunk_bounds(10, 4, 3)
    g = torch.Generator().manual_seed(4)
    modes = Counter()
    for _ in range(1000):
        sigma, mode = sample_chunk_sigma(bounds, 3.0, g)
        modes[mode] += 1
        assert sigma.shape == (10,) and _nondecreasing(sigma.tolist())
        for start, end in bounds:
            assert (sigma[start:end] == sigma[start]).all()
    p = ChunkNoiseMixture().probabilities()
    for m, prob in zip(MODES, p.tolist()):
        assert abs(modes[m] / 1000 - prob) < 0.05
