"""The benchmark's image metrics and frame bookkeeping: SANA-WM's uniform-window SSIM against a direct computation,
the capped uint8 PSNR, drift windows and the frames the pose metric visits."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.eval.bench import drift_windows, tracked_poses, uint8_psnr, uniform_ssim


def _direct_ssim(a: np.ndarray, b: np.ndarray, size: int = 11) -> float:
    """Per-pixel loops over explicitly reflected borders (edge repeated: numpy "symmetric" = scipy's
    `uniform_filter` default "reflect", which upstream uses), per channel, then the channel mean."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    half = size // 2
    out = []
    for ch in range(3):
        x = np.pad(a[..., ch].astype(np.float64), half, mode="symmetric")
        y = np.pad(b[..., ch].astype(np.float64), half, mode="symmetric")
        values = []
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                wx, wy = x[i : i + size, j : j + size], y[i : i + size, j : j + size]
                mx, my = wx.mean(), wy.mean()
                vx, vy = (wx * wx).mean() - mx * mx, (wy * wy).mean() - my * my
                cov = (wx * wy).mean() - mx * my
                values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
        out.append(np.mean(values))
    return float(np.mean(out))


def test_uniform_ssim_equals_direct_computation():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (14, 19, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    assert uniform_ssim(a, b) == pytest.approx(_direct_ssim(a, b), abs=1e-9)
    assert uniform_ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert uniform_ssim(a, 255 - a) < 0.2


def test_psnr_windows_and_tracked_frames():
    a = np.full((4, 5, 3), 100, np.uint8)
    assert uint8_psnr(a, a) == 100.0
    assert uint8_psnr(a, a + 10) == pytest.approx(10 * np.log10(255**2 / 100))
    assert drift_windows(960) == [(k * 160, (k + 1) * 160) for k in range(6)]
    assert drift_windows(961) == drift_windows(960)  # a trailing partial window is dropped, as upstream
    assert drift_windows(81) == [(0, 40), (40, 80)]
    visited, scored = tracked_poses(17, refined=False)
    assert visited.tolist() == scored.tolist() == [0, 4, 8, 12, 16]
    visited, scored = tracked_poses(17, refined=True)
    assert visited.tolist() == [0, 4, 8, 12, 16] and scored.tolist() == [4, 8, 12, 16]
