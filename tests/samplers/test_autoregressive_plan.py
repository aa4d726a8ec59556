"""The chunk-autoregressive sampler with a recording fake: pyramid call plan, σ per call, committed state, camera
slices, chunk callback; plus the oracle, frame-0 and single-chunk checks of both samplers."""

import pytest
import torch
from sampler_fakes import OracleModel, RecordingModel, random_cameras, text_inputs

from camworld.errors import UserError
from camworld.flow.schedule import sigmas as shifted_sigmas
from camworld.samplers.autoregressive import (
    DISTILLED_SIGMAS,
    pyramid_starts,
    sample_autoregressive,
    sample_autoregressive_reference,
)
from camworld.samplers.bidirectional import sample_bidirectional

B, H, W, C = 2, 2, 3, 4
SIGMAS = [1.0, 0.6, 0.3, 0.0]


def _inputs(frames, seed=0):
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(B, frames, H, W, C, generator=gen)
    image = torch.randn(B, 1, H, W, C, generator=gen)
    text, mask = text_inputs(B, 5, 6, seed)
    return noise, image, text, mask, random_cameras(B, frames, H, W, 2, seed)


def _sigma_row(level, frames, offset):
    return [0.0 if offset + i == 0 else level for i in range(frames)]


def test_pyramid_starts():
    assert pyramid_starts(3, 60) == [0, 20, 40]
    assert pyramid_starts(4, 3) == [0, 0, 1, 2]
    assert pyramid_starts(3, 4, 1.0) == [0, 4, 8]
    assert pyramid_starts(3, 10, 0.1) == [0, 1, 2]
    assert pyramid_starts(3, 4, 0.0) == [0, 0, 0]
    with pytest.raises(UserError):
        pyramid_starts(3, 4, -0.5)


def test_pyramid_call_plan_sigmas_states_and_slices():
    noise, image, text, mask, camera = _inputs(10)
    model = RecordingModel()
    finished = []
    out = sample_autoregressive(model, noise, text, mask, camera, sigmas=SIGMAS, chunk_first=4, chunk_size=3,
                                first_frame=image, on_chunk=lambda i, x: finished.append((i, x.clone())))
    # chunks [0, 4), [4, 7), [7, 10) start at global steps 0, 1, 2; (offset, σ level or "save") per call in order
    expected = [
        (0, 1.0),
        (0, 0.6), (4, 1.0),
        (0, 0.3), (4, 0.6), (7, 1.0), (0, "save"),
        (4, 0.3), (7, 0.6), (4, "save"),
        (7, 0.3),
    ]
    got = [(c["offset"], c["sigma"]) for c in model.calls]
    assert [o for o, _ in got] == [o for o, _ in expected]
    sizes = {0: 4, 4: 3, 7: 3}
    for (offset, sigma), (_, level) in zip(got, expected):
        want = [0.0] * sizes[offset] if level == "save" else _sigma_row(level, sizes[offset], offset)
        assert torch.equal(sigma, torch.tensor([want] * B)), (offset, level)
    # each global step chains from the committed state: only saved chunks, then this step's earlier chunks
    histories = [[h[0] for h in c["history"]] for c in model.calls]
    assert histories == [[], [], [0], [], [0], [0, 4], [], [0], [0, 4], [0], [0, 4]]
    saved = model.calls[6]["history"], model.calls[8]["history"]
    assert saved[1][0] == (0, 4, (0.0,) * 4)  # the save pass, not a noisy pass, is what later chunks build on
    for c in model.calls:
        s, n = c["offset"], c["frames"]
        assert torch.equal(c["c2w"], camera.c2w[:, s : s + n]) and torch.equal(c["text"], text)
    assert [i for i, _ in finished] == [0, 1, 2]
    assert torch.equal(torch.cat([x for _, x in finished], dim=1), out)


def test_interval_one_is_chunk_by_chunk_with_distilled_sigmas():
    noise, image, text, mask, _ = _inputs(7)
    model = RecordingModel()
    sample_autoregressive(model, noise, text, mask, sigmas=DISTILLED_SIGMAS, chunk_first=4, chunk_size=3,
                          interval_k=1.0, first_frame=image)
    offsets = [c["offset"] for c in model.calls]
    assert offsets == [0] * 5 + [4] * 4  # 4 steps + save, then 4 steps (the last chunk is not saved)
    levels = [float(c["sigma"][0, -1]) for c in model.calls]
    assert levels == pytest.approx([1.0, 0.96, 0.889, 0.727, 0.0, 1.0, 0.96, 0.889, 0.727])


@pytest.mark.parametrize("interval_k", [None, 1.0, 0.0, 1.7])
def test_oracle_velocity_recovers_the_clean_latents(interval_k):
    noise, image, text, mask, camera = _inputs(10)
    x0 = torch.randn(B, 10, H, W, C, generator=torch.Generator().manual_seed(5))
    x0[:, :1] = image
    schedule = shifted_sigmas(6, 3.0)
    kwargs = {"sigmas": schedule, "chunk_first": 4, "chunk_size": 3, "interval_k": interval_k, "first_frame": image}
    for sampler in (sample_autoregressive, sample_autoregressive_reference):
        out = sampler(OracleModel(x0), noise, text, mask, camera, **kwargs)
        torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)
    out = sample_bidirectional(OracleModel(x0), noise, text, mask, camera, sigmas=schedule, first_frame=image)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)
    wrong = sample_bidirectional(RecordingModel(), noise, text, mask, camera, sigmas=schedule, first_frame=image)
    assert (wrong - x0).abs().max() > 0.1


def test_frame0_stays_bit_identical_at_sigma_zero():
    noise, image, text, mask, camera = _inputs(7)
    image[0, 0, 0, 0, 0] = -0.0
    runs = [
        sample_bidirectional(model := RecordingModel(nan_frame0=True), noise, text, mask, camera, sigmas=SIGMAS,
                             first_frame=image),
        sample_autoregressive(RecordingModel(nan_frame0=True), noise, text, mask, camera, sigmas=SIGMAS,
                              chunk_first=4, chunk_size=3, first_frame=image),
        sample_autoregressive_reference(RecordingModel(nan_frame0=True), noise, text, mask, camera, sigmas=SIGMAS,
                                        chunk_first=4, chunk_size=3, first_frame=image),
    ]
    for out in runs:
        assert out[:, :1].view(torch.int32).equal(image.view(torch.int32))
        assert torch.isfinite(out).all()
    assert all(float(c["sigma"][:, 0].abs().max()) == 0.0 for c in model.calls)
    assert all(float(c["sigma"][:, 1:].min()) > 0.0 for c in model.calls)


def test_single_chunk_autoregressive_equals_bidirectional():
    noise, image, text, mask, camera = _inputs(4)
    for first in (image, None):
        ar = sample_autoregressive(RecordingModel(), noise, text, mask, camera, sigmas=SIGMAS, chunk_first=4,
                                   chunk_size=3, first_frame=first)
        bi = sample_bidirectional(RecordingModel(), noise, text, mask, camera, sigmas=SIGMAS, first_frame=first)
        assert torch.equal(ar, bi)


def test_bad_sigmas_and_first_frame_are_user_errors():
    noise, image, text, mask, _ = _inputs(4)
    for bad in ([1.0], [1.0, 0.5], [1.0, 0.5, 0.5, 0.0], [1.5, 0.0]):
        with pytest.raises(UserError):
            sample_bidirectional(RecordingModel(), noise, text, mask, sigmas=bad)
    with pytest.raises(UserError):
        sample_bidirectional(RecordingModel(), noise, text, mask, sigmas=SIGMAS, first_frame=image[:, :, :1])
