"""The start of an interactive session: the user's image, or a render of a seeded procedural world (camworld's
embedded default, as in `camworld generate`), with intrinsics from a horizontal field of view and the world's
caption as the default prompt."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camworld.data.make import intrinsics_for_fov
from camworld.errors import UserError
from camworld.world import World


@dataclass(frozen=True)
class FirstFrame:
    """image uint8 [H, W, 3], K [3, 3] in its pixels, and the prompt to use when the user gives none."""

    image: np.ndarray
    K: np.ndarray
    default_prompt: str


def first_frame(image: np.ndarray | None, world_seed: int, fov_deg: float, model_hw: tuple[int, int]) -> FirstFrame:
    """`image` (any size) with a `fov_deg` horizontal FOV, or world `world_seed` rendered at the model resolution
    `model_hw` from its start pose (pose 0 = identity)."""
    if not 0 < fov_deg < 180:
        raise UserError(f"the field of view must be in (0, 180) degrees, got {fov_deg}")
    if image is not None:
        image = np.asarray(image)
        return FirstFrame(image, intrinsics_for_fov(fov_deg, *image.shape[:2]), "")
    K = intrinsics_for_fov(fov_deg, *model_hw)
    world = World(int(world_seed))
    return FirstFrame(world.render(np.eye(4), K, *model_hw)[0][0], K, world.caption)
