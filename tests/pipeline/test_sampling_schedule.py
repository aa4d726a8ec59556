"""The DiT's sampling schedule in `generate`: an explicit σ list equals the same steps at the same shift; with
`interval_k = 1` (chunk by chunk) a longer video starts with exactly the shorter one, which SANA-WM's default
stagger (1/#chunks) does not give; a schedule packaged with the weights is what ar mode runs when the caller names
none; invalid schedules are one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from camworld.camera import action_string_to_c2w
from camworld.errors import UserError
from camworld.flow.schedule import sigmas as shifted_sigmas
from camworld.pipeline import WorldModel


def _inputs(world):
    c2w = action_string_to_c2w("w-24,dw-24")
    K = np.repeat(np.array([[40.0, 0, 31.5], [0, 40.0, 15.5], [0, 0, 1]])[None], len(c2w), axis=0)
    image = np.random.default_rng(1).integers(0, 256, (*world.image_hw, 3), dtype=np.uint8)
    return image, c2w, K


@pytest.mark.parametrize("mode", ["bidirectional", "ar"])
def test_explicit_sigmas_equal_steps_at_shift(world_model, mode):
    image, c2w, K = _inputs(world_model)
    kwargs = {"num_frames": 13, "mode": mode, "refiner": False, "progress": False, "cfg_scale": 1.0}
    by_steps = world_model.generate(image, "a hall", c2w, K, steps=3, flow_shift=4.0, **kwargs)
    listed = shifted_sigmas(3, 4.0).tolist()
    by_list = world_model.generate(image, "a hall", c2w, K, sigmas=listed, steps=50, flow_shift=1.0, **kwargs)
    assert torch.equal(by_steps.latents, by_list.latents)
    assert "3 steps" in by_list.notes["sigmas"] and "sigmas" not in by_steps.notes


def test_chunk_by_chunk_prefix_is_the_shorter_video(world_model):
    image, c2w, K = _inputs(world_model)
    kwargs = {"mode": "ar", "refiner": False, "progress": False, "cfg_scale": 1.0, "sigmas": [1.0, 0.9, 0.7, 0.4, 0.0]}
    runs = {(n, k): world_model.generate(image, "", c2w, K, num_frames=n, interval_k=k, **kwargs).latents
            for n in (25, 37) for k in (None, 1.0)}
    # 7 and 10 latent frames: chunks of 4 + 3 and 4 + 3 + 3 (a prefix holds at chunk boundaries only, since frames
    # within a chunk see each other)
    short = runs[25, 1.0].shape[1]
    assert (short, runs[37, 1.0].shape[1]) == (7, 10)
    torch.testing.assert_close(runs[37, 1.0][:, :short], runs[25, 1.0], rtol=0, atol=1e-6)
    # the default stagger depends on the number of chunks (4 steps: chunk 1 starts at step 2 of 2 chunks, at step 1
    # of 3), so the longer video's start is sampled differently
    assert (runs[37, None][:, 1:short] - runs[25, None][:, 1:]).abs().max() > 1e-3


def test_packaged_ar_schedule_applies_when_the_caller_names_none(weights_dir, tmp_path):
    path = tmp_path / "tiny"
    shutil.copytree(weights_dir, path)
    config = json.loads((path / "dit" / "config.json").read_text())
    config["sampling"].update(ar_sigmas=[1.0, 0.8, 0.3, 0.0], ar_interval_k=1.0)
    (path / "dit" / "config.json").write_text(json.dumps(config))
    world = WorldModel(path)
    image, c2w, K = _inputs(world)
    kwargs = {"num_frames": 25, "refiner": False, "progress": False, "cfg_scale": 1.0}
    packaged = world.generate(image, "", c2w, K, mode="ar", **kwargs)
    named = world.generate(image, "", c2w, K, mode="ar", sigmas=[1.0, 0.8, 0.3, 0.0], interval_k=1.0, **kwargs)
    assert torch.equal(packaged.latents, named.latents) and "packaged" in packaged.notes["schedule"]
    own_steps = world.generate(image, "", c2w, K, mode="ar", steps=3, **kwargs)  # any schedule flag overrides it
    assert "schedule" not in own_steps.notes and not torch.equal(own_steps.latents, packaged.latents)
    bidirectional = world.generate(image, "", c2w, K, mode="bidirectional", **{**kwargs, "num_frames": 9})
    assert "schedule" not in bidirectional.notes


def test_bad_schedules_are_errors(world_model):
    image, c2w, K = _inputs(world_model)
    kwargs = {"num_frames": 9, "refiner": False, "progress": False}
    with pytest.raises(UserError, match="strictly decreasing"):
        world_model.generate(image, "", c2w, K, sigmas=[1.0, 0.5, 0.7, 0.0], **kwargs)
    with pytest.raises(UserError, match="end at 0"):
        world_model.generate(image, "", c2w, K, sigmas=[1.0, 0.5], **kwargs)
    with pytest.raises(UserError, match="needs mode 'ar'"):
        world_model.generate(image, "", c2w, K, interval_k=1.0, mode="bidirectional", **kwargs)
    with pytest.raises(UserError, match=">= 0"):
        world_model.generate(image, "", c2w, K, interval_k=-1.0, mode="ar", **kwargs)
