"""The DMD losses: the generator loss's gradient is the normalised score difference on generated frames and zero on
held ones; with exact Gaussian denoisers it moves a generator's mean toward the data's; the critic loss is the flow
matching MSE; DMD noise levels stay in their shifted range."""

import torch

from camworld.flow.dmd import (
    critic_loss,
    denoised,
    dmd_direction,
    dmd_loss,
    frame_levels,
    sample_dmd_sigma,
)
from camworld.flow.schedule import add_noise, shift_sigma


def test_generator_gradient_is_the_direction_over_the_count_on_generated_frames():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 3, 5, 6, generator=gen, requires_grad=True)
    direction = torch.randn(2, 4, 3, 5, 6, generator=gen)
    hold = torch.tensor([True, False, False, False])
    dmd_loss(x0, direction, hold).backward()
    count = direction[:, 1:].numel()
    torch.testing.assert_close(x0.grad[:, 1:], direction[:, 1:] / count)
    assert torch.equal(x0.grad[:, 0], torch.zeros_like(x0.grad[:, 0]))


def test_direction_is_normalised_per_clip_and_zero_when_the_scores_agree():
    gen = torch.Generator().manual_seed(1)
    x0, real, fake = (torch.randn(2, 3, 2, 2, 4, generator=gen) for _ in range(3))
    assert torch.equal(dmd_direction(x0, real, real), torch.zeros_like(x0))
    d = dmd_direction(x0, real, fake)
    for b in range(2):
        scale = (x0[b] - real[b]).abs().mean()
        torch.testing.assert_close(d[b], (fake[b] - real[b]) / scale)


def _gaussian_denoiser(x_sigma, sigma, mean):
    """E[x₀ | x_σ] for x₀ ~ N(mean, 1), x_σ = (1 − σ) x₀ + σ ε."""
    a = 1 - sigma
    return mean + a * (x_sigma - a * mean) / (a**2 + sigma**2)


def test_dmd_moves_a_generator_toward_the_teacher_distribution():
    """Generator x₀ = θ + z; teacher data N(2, 1); the critic is the exact denoiser of the generator's N(θ, 1). Plain
    gradient descent on the DMD loss carries θ from −1 to near 2."""
    theta = torch.tensor(-1.0, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=0.5)
    gen = torch.Generator().manual_seed(2)
    hold = torch.zeros(1, dtype=torch.bool)
    for _ in range(200):
        x0 = (theta + torch.randn(64, 1, 1, 1, 1, generator=gen))
        sigma = frame_levels(sample_dmd_sigma(64, gen, low=0.02, high=0.98, shift=1.0), 1, hold)
        noisy = add_noise(x0.detach(), torch.randn(x0.shape, generator=gen), sigma)
        s = sigma[:, :, None, None, None]
        real = _gaussian_denoiser(noisy, s, 2.0)
        fake = _gaussian_denoiser(noisy, s, theta.detach())
        opt.zero_grad()
        dmd_loss(x0, dmd_direction(x0.detach(), real, fake), hold).backward()
        opt.step()
    assert abs(float(theta.detach()) - 2.0) < 0.1


def test_denoised_inverts_the_noising_at_the_true_velocity():
    gen = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(2, 3, 2, 2, 4, generator=gen), torch.randn(2, 3, 2, 2, 4, generator=gen)
    sigma = torch.rand(2, 3, generator=gen)
    torch.testing.assert_close(denoised(add_noise(x0, eps, sigma), eps - x0, sigma), x0)


def test_critic_loss_is_the_flow_matching_mse_on_generated_frames():
    gen = torch.Generator().manual_seed(4)
    x0, eps = torch.randn(1, 3, 2, 2, 4, generator=gen), torch.randn(1, 3, 2, 2, 4, generator=gen)
    hold = torch.tensor([True, False, False])
    target = eps - x0
    assert float(critic_loss(target, x0, eps, hold)) == 0.0
    wrong = target.clone()
    wrong[:, 0] += 5.0  # a held frame: not scored
    assert float(critic_loss(wrong, x0, eps, hold)) == 0.0
    wrong[:, 1] += 1.0
    torch.testing.assert_close(critic_loss(wrong, x0, eps, hold), torch.tensor(0.5))


def test_dmd_sigma_stays_in_the_shifted_range():
    gen = torch.Generator().manual_seed(5)
    sigma = sample_dmd_sigma(10_000, gen, low=0.02, high=0.98, shift=4.0)
    assert float(sigma.min()) >= shift_sigma(0.02, 4.0) - 1e-6
    assert float(sigma.max()) <= shift_sigma(0.98, 4.0) + 1e-6
    levels = frame_levels(sigma[:3], 4, torch.tensor([True, False, False, False]))
    assert torch.equal(levels[:, 0], torch.zeros(3)) and torch.equal(levels[:, 1], sigma[:3])
