"""The flow-matching loss: oracle loss is zero, I2V frame 0 is clean and out of the loss, text dropout."""

import torch

from camworld.flow.objective import draw_flow_inputs, flow_matching_loss
from camworld.flow.schedule import sample_train_sigma

B, T, H, W, C, L, D = 6, 4, 3, 3, 5, 7, 8


def _setup(seed=0, image_cond_prob=0.9, text_dropout=0.1):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(B, T, H, W, C, generator=g)
    text = torch.randn(B, L, D, generator=g)
    mask = torch.ones(B, L, dtype=torch.bool)
    gens = [torch.Generator().manual_seed(100 + i) for i in range(B)]
    inputs = draw_flow_inputs(
        (T, H, W, C), gens, lambda gg: sample_train_sigma(1, T, 3.0, gg)[0],
        image_cond_prob=image_cond_prob, text_dropout=text_dropout,
    )
    return x0, text, mask, inputs


def _null():
    return torch.zeros(L, D), torch.zeros(L, dtype=torch.bool)


def _oracle(x0, inputs):
    def fn(x, sigma, text, text_mask):
        return inputs.noise - x0
    return fn


def test_oracle_loss_is_zero_and_wrong_velocity_is_not():
    x0, text, mask, inputs = _setup()
    loss, logs = flow_matching_loss(_oracle(x0, inputs), x0, inputs, text, mask, *_null())
    assert float(loss) == 0.0
    bad, _ = flow_matching_loss(lambda x, s, t, m: torch.zeros_like(x), x0, inputs, text, mask, *_null())
    assert float(bad) > 0.5
    assert 0 <= logs["sigma_mean"] <= 1


def test_image_condition_frame_zero_is_clean_and_masked():
    x0, text, mask, inputs = _setup(image_cond_prob=1.0)
    seen = {}

    def wrong_on_frame0(x, sigma, text, text_mask):
        seen["x"], seen["sigma"] = x, sigma
        v = inputs.noise - x0
        v[:, 0] += 100.0
        return v

    loss, logs = flow_matching_loss(wrong_on_frame0, x0, inputs, text, mask, *_null())
    assert float(loss) == 0.0 and logs["image_cond"] == 1.0
    assert torch.equal(seen["x"][:, 0], x0[:, 0])
    assert (seen["sigma"][:, 0] == 0).all() and (seen["sigma"][:, 1:] > 0).all()

    x0, text, mask, inputs = _setup(image_cond_prob=0.0)
    loss, _ = flow_matching_loss(wrong_on_frame0, x0, inputs, text, mask, *_null())
    assert float(loss) > 1.0


def test_image_condition_probability_and_text_dropout():
    gens = [torch.Generator().manual_seed(i) for i in range(2000)]
    inputs = draw_flow_inputs((2, 1, 1, 1), gens, lambda g: torch.full((2,), 0.5))
    assert abs(float(inputs.image_cond.float().mean()) - 0.9) < 0.03
    assert abs(float(inputs.drop_text.float().mean()) - 0.1) < 0.03


def test_dropped_captions_become_the_empty_prompt():
    x0, text, mask, inputs = _setup(text_dropout=0.5)
    null_text, null_mask = torch.full((L, D), 7.0), torch.zeros(L, dtype=torch.bool)
    null_mask[0] = True
    got = {}

    def record(x, sigma, t, m):
        got["t"], got["m"] = t, m
        return torch.zeros_like(x)

    flow_matching_loss(record, x0, inputs, text, mask, null_text, null_mask)
    d = inputs.drop_text
    assert d.any() and (~d).any()
    assert (got["t"][d] == 7.0).all() and torch.equal(got["t"][~d], text[~d])
    assert torch.equal(got["m"][d], null_mask.expand(int(d.sum()), L))


def test_frame_mask_and_per_clip_randomness_independent_of_batching():
    x0, text, mask, inputs = _setup()
    gens = [torch.Generator().manual_seed(100 + i) for i in range(2, 4)]
    part = draw_flow_inputs((T, H, W, C), gens, lambda gg: sample_train_sigma(1, T, 3.0, gg)[0])
    assert torch.equal(part.noise, inputs.noise[2:4]) and torch.equal(part.sigma, inputs.sigma[2:4])
    fm = torch.zeros(B, T, dtype=torch.bool)
    loss, _ = flow_matching_loss(lambda x, s, t, m: torch.zeros_like(x), x0, inputs, text, mask, *_null(), fm)
    assert float(loss) == 0.0
