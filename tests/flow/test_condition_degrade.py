"""Degraded conditioning frames (camworld.flow.condition_degrade): the blur keeps constant fields, strength 0 is the
identity, only I2V clips' frame 0 changes, the loss is untouched, and the other random decisions stay those of a run
without degradation."""

import torch

from camworld.flow.condition_degrade import blur_latent, degrade_first_latent
from camworld.flow.objective import draw_flow_inputs, flow_matching_loss
from camworld.flow.schedule import add_noise, sample_train_sigma

B, T, H, W, C = 6, 4, 3, 5, 2


def _draw(prob, image_cond_prob=0.5):
    gens = [torch.Generator().manual_seed(100 + i) for i in range(B)]
    return draw_flow_inputs((T, H, W, C), gens, lambda g: sample_train_sigma(1, T, 3.0, g)[0],
                            image_cond_prob=image_cond_prob, cond_degrade_prob=prob)


def test_blur_keeps_constant_fields_and_smooths_a_spike():
    flat = torch.full((2, H, W, C), 0.7)
    torch.testing.assert_close(blur_latent(flat), flat)
    spike = torch.zeros(1, H, W, C)
    spike[0, 1, 2] = 9.0
    blurred = blur_latent(spike)
    assert blurred[0, 1, 2, 0] == 1.0 and blurred[0, 0, 1, 0] == 1.0 and blurred.sum() == spike.sum()


def test_strength_zero_is_the_identity_and_strength_blends():
    z = torch.randn(3, H, W, C, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(3, H, W, C, generator=torch.Generator().manual_seed(1))
    out = degrade_first_latent(z, torch.tensor([0.0, 0.5, 0.999]), noise, noise_frac=0.0)
    assert torch.equal(out[0], z[0])
    torch.testing.assert_close(out[1], 0.5 * z[1] + 0.5 * blur_latent(z)[1:2][0])
    noised = degrade_first_latent(z, torch.tensor([0.0, 0.5, 0.999]), noise, noise_frac=0.2)
    assert torch.equal(noised[0], z[0]) and not torch.allclose(noised[1], out[1])


def test_other_decisions_equal_a_run_without_degradation():
    plain, degraded = _draw(0.0), _draw(1.0)
    assert plain.cond_strength is None and plain.cond_noise is None
    for name in ("noise", "sigma", "image_cond", "drop_text"):
        assert torch.equal(getattr(plain, name), getattr(degraded, name))
    # only I2V clips are degraded; with probability 1 every one of them is
    assert ((degraded.cond_strength > 0) == degraded.image_cond).all()
    assert 0 < int(degraded.image_cond.sum()) < B


def test_only_frame_zero_of_degraded_clips_reaches_the_model_changed_and_the_loss_is_the_same():
    x0 = torch.randn(B, T, H, W, C, generator=torch.Generator().manual_seed(2))
    text, mask = torch.randn(B, 7, 8), torch.ones(B, 7, dtype=torch.bool)
    null = (torch.zeros(7, 8), torch.zeros(7, dtype=torch.bool))
    inputs = _draw(1.0)
    seen = {}

    def oracle(x, sigma, txt, m):
        seen["x"] = x
        return inputs.noise - x0

    loss, logs = flow_matching_loss(oracle, x0, inputs, text, mask, *null)
    assert float(loss) == 0.0 and logs["cond_degraded"] == float(inputs.image_cond.float().mean())
    plain = add_noise(x0, inputs.noise, inputs.sigma)
    assert torch.equal(seen["x"][:, 1:], plain[:, 1:])
    changed = (seen["x"][:, 0] != plain[:, 0]).flatten(1).any(1)
    assert torch.equal(changed, inputs.image_cond)
