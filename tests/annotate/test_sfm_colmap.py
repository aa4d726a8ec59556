"""The COLMAP engine gives the same model on every run of a clip (single-threaded, seeded), which is what lets
`run_colmap` keep and reuse models."""

from __future__ import annotations

import numpy as np

from camworld.annotate.sfm_colmap import reconstruct, run_colmap


def test_colmap_repeats_run_to_run(small_orbit):
    frames, K = small_orbit.frames[:12], small_orbit.K.astype(float)
    first, second = reconstruct(frames, K), reconstruct(frames, K)
    assert first.registered.sum() >= 6, first.notes  # a model to compare, not two empty ones
    np.testing.assert_array_equal(first.registered, second.registered)
    np.testing.assert_array_equal(first.c2w, second.c2w)
    for (uv_a, d_a), (uv_b, d_b) in zip(first.observations, second.observations):
        np.testing.assert_array_equal(uv_a, uv_b)
        np.testing.assert_array_equal(d_a, d_b)

    kept = run_colmap(frames, K)
    np.testing.assert_array_equal(kept.c2w, first.c2w)
    kept.c2w[:] = 0  # callers get a copy: the kept model is unchanged
    np.testing.assert_array_equal(run_colmap(frames, K).c2w, first.c2w)
