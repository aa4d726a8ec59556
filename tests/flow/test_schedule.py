"""The flow time convention: schedule endpoints and monotonicity, shift identity, oracle Euler step."""

import pytest
import torch

from camworld.errors import UserError
from camworld.flow.schedule import (
    add_noise,
    euler_step,
    resolution_shift,
    sample_train_sigma,
    shift_sigma,
    sigmas,
    velocity_target,
)


@pytest.mark.parametrize("shift", [1.0, 3.0, 9.95, 0.5])
def test_sigmas_endpoints_and_monotone(shift):
    s = sigmas(17, shift)
    assert s.shape == (18,)
    assert s[0] == 1.0 and s[-1] == 0.0
    assert (s[1:] < s[:-1]).all()


def test_shift_one_is_identity_and_shift_moves_towards_noise():
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert torch.equal(shift_sigma(grid, 1.0), grid)
    assert (shift_sigma(grid[1:-1], 3.0) > grid[1:-1]).all()
    assert torch.allclose(shift_sigma(grid, 3.0)[[0, -1]], grid[[0, -1]])
    with pytest.raises(UserError):
        shift_sigma(grid, 0.0)


def test_oracle_velocity_one_euler_step_recovers_x0():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 4, 5, 6, generator=g)
    eps = torch.randn(x0.shape, generator=g)
    one = torch.ones(2, 3)
    x1 = add_noise(x0, eps, one)
    assert torch.equal(x1, eps)
    s = sigmas(1)
    out = euler_step(x1, velocity_target(x0, eps), s[0] * one, s[1] * one)
    assert torch.allclose(out, x0, atol=1e-6)


def test_oracle_velocity_many_steps_stays_on_the_straight_path():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 2, 3, 3, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    s = sigmas(8, 9.95).double()
    x = add_noise(x0, eps, torch.ones(1, 2, dtype=torch.float64))
    for a, b in zip(s[:-1], s[1:]):
        x = euler_step(x, eps - x0, a, b)
        assert torch.allclose(x, add_noise(x0, eps, torch.full((1, 2), float(b), dtype=torch.float64)))
    assert torch.allclose(x, x0)


def test_train_sigma_shapes_and_range():
    g = torch.Generator().manual_seed(0)
    shared = sample_train_sigma(64, 5, 3.0, g)
    assert shared.shape == (64, 5) and (shared == shared[:, :1]).all()
    per_frame = sample_train_sigma(64, 5, 3.0, g, per_frame=True)
    assert not (per_frame == per_frame[:, :1]).all()
    assert (per_frame >= 0).all() and (per_frame < 1).all()
    # shift 3 moves the logit-normal median 0.5 to 0.75
    big = sample_train_sigma(20000, 1, 3.0, g)
    assert abs(float(big.median()) - 0.75) < 0.02


def test_resolution_shift_recovers_the_reference():
    assert resolution_shift(22 * 40) == pytest.approx(9.95)
    assert resolution_shift(4) == 1.0
    assert resolution_shift(9 * 16) == pytest.approx(4.02, abs=0.01)  # the tiny preset's shift
