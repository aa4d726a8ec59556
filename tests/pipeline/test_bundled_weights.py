"""The bundled tiny weights load without pickle, match their configs and run one short generation end to end."""

from __future__ import annotations

import numpy as np
import torch

from camworld.camera import action_string_to_c2w
from camworld.pipeline import BUNDLED_WEIGHTS, WorldModel


def test_bundled_weights_load_and_generate():
    torch.set_num_threads(1)
    assert (BUNDLED_WEIGHTS / "dit" / "model.safetensors").is_file()
    model = WorldModel.from_pretrained()
    h, w = model.image_hw
    image = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    K = np.array([[w / 2, 0, (w - 1) / 2], [0, w / 2, (h - 1) / 2], [0, 0, 1]], dtype=np.float32)
    c2w = action_string_to_c2w("w-8")
    Ks = np.repeat(K[None], len(c2w), 0)
    result = model.generate(image, "a meadow", c2w, Ks, num_frames=9, steps=2, refiner=False, progress=False)
    assert result.frames.shape == (9, h, w, 3) and result.frames.dtype == np.uint8
    assert torch.equal(result.latents[:, :1], model.encode_image(model.prepare_image(image)))
    np.testing.assert_allclose(result.c2w, c2w[:9], atol=1e-6)


def test_bundled_student_loads_and_generates():
    """The distilled student is bundled off by default and fits the bundled DiT (its LoRA names that base)."""
    torch.set_num_threads(1)
    model = WorldModel.from_pretrained()
    assert model.has_student and not model.student_by_default
    h, w = model.image_hw
    image = (np.random.default_rng(1).random((h, w, 3)) * 255).astype(np.uint8)
    K = np.array([[w / 2, 0, (w - 1) / 2], [0, w / 2, (h - 1) / 2], [0, 0, 1]], dtype=np.float32)
    c2w = action_string_to_c2w("dw-8")
    result = model.generate(image, "a meadow", c2w, np.repeat(K[None], len(c2w), 0), num_frames=9, mode="ar",
                            student=True, refiner=False, progress=False)
    assert result.frames.shape == (9, h, w, 3) and "4 steps per chunk" in result.notes["student"]
