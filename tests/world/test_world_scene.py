"""The seeded world description: determinism, seeds and styles, layout, captions and collisions (no rendering)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from camworld.errors import UserError
from camworld.world import STYLES, World
from camworld.world.scene import CLEAR_RADIUS, PRIMITIVE_KINDS, style_for_seed

MOTION_WORDS = {
    "move", "moves", "moving", "walk", "walks", "walking", "turn", "turns", "turning", "pan", "pans", "panning",
    "zoom", "zooms", "zooming", "rotate", "rotates", "rotating", "fly", "flies", "flying", "forward", "forwards",
    "backward", "backwards", "left", "right", "camera", "approach", "approaches", "approaching", "tilt", "tilting",
    "orbit", "orbiting", "travel", "travels", "travelling", "toward", "towards", "then", "pov",
}


def test_same_seed_same_world():
    a, b = World(11), World(11)
    assert a.style == b.style and a.caption == b.caption
    assert a.landmarks == b.landmarks
    for key, value in a.scene.primitives.items():
        assert np.array_equal(value, b.scene.primitives[key])


def test_different_seeds_differ():
    a, b = World(1, "meadow"), World(2, "meadow")
    pa = np.array([lm.position for lm in a.landmarks])
    pb = np.array([lm.position for lm in b.landmarks])
    assert pa.shape != pb.shape or not np.allclose(pa, pb)
    assert a.scene.look.salt != b.scene.look.salt


def test_seed_picks_every_style():
    assert {style_for_seed(seed) for seed in range(40)} == set(STYLES)
    assert World(9).style == style_for_seed(9)


@pytest.mark.parametrize("style", STYLES)
def test_style_layout(style):
    w = World(3, style)
    assert w.style == style and w.ground_y > 0
    assert len(w.landmarks) >= 200, "hundreds of landmarks"
    shapes = {lm.shape for lm in w.landmarks}
    assert len(shapes) >= 5
    assert len({lm.colour for lm in w.landmarks}) > 0.9 * len(w.landmarks), "colours are jittered per landmark"
    assert set(w.scene.primitives["kind"].tolist()) <= set(range(len(PRIMITIVE_KINDS)))
    # the start is free: a camera may stand anywhere within the clear radius at eye height
    ang = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    ring = np.stack([np.cos(ang), np.zeros_like(ang), np.sin(ang)], 1)
    near = np.concatenate([ring * r for r in np.linspace(0, CLEAR_RADIUS - 0.5, 5)])
    assert not w.collides(near).any()
    # populated within a minute's walk (24 m) in every direction: each quadrant holds landmarks
    pos = np.array([lm.position for lm in w.landmarks])
    r = np.hypot(pos[:, 0], pos[:, 2])
    quadrant = (pos[:, 0] > 0).astype(int) * 2 + (pos[:, 2] > 0)
    for q in range(4):
        assert ((r < 24) & (quadrant == q)).sum() >= 3, f"quadrant {q} of {style} is empty near the origin"


@pytest.mark.parametrize("seed", range(12))
def test_caption_is_scene_static(seed):
    w = World(seed)
    words = set(re.findall(r"[a-z]+", w.caption.lower()))
    assert not words & MOTION_WORDS, f"motion words in caption: {words & MOTION_WORDS}"
    assert w.caption == World(seed).caption
    assert len(w.caption) > 80


def test_captions_depend_on_content():
    assert len({World(seed, "meadow").caption for seed in range(3)}) > 1
    assert len({World(0, style).caption for style in STYLES}) == len(STYLES)


def test_collides():
    w = World(4, "city")
    assert not w.collides(np.zeros((1, 3)))[0]
    assert not w.collides([0.0, 0.0, 0.0]).any()
    box = next(i for i, k in enumerate(w.scene.primitives["kind"]) if k == PRIMITIVE_KINDS.index("box"))
    centre = w.scene.primitives["center"][box]
    half = w.scene.primitives["half"][box]
    yaw = float(w.scene.primitives["yaw"][box])
    assert w.collides(centre[None])[0], "inside a landmark"
    # along the box's local +x axis: just outside the face but inside the margin, then beyond it
    axis = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    assert w.collides((centre + axis * (half[0] + 0.2))[None], margin=0.3)[0]
    far_out = centre + axis * (half[0] + 0.5)
    if not w.collides(far_out[None], margin=0.0)[0]:  # unless another landmark stands right there
        assert not w.collides(far_out[None], margin=0.3)[0]
    below = np.array([[0.0, w.ground_y + 0.1, 0.0], [0.0, w.ground_y - 0.1, 0.0]])
    assert w.collides(below, margin=0.3).all(), "under or too near the ground"


def test_bad_input():
    with pytest.raises(UserError):
        World(0, "moon")
    with pytest.raises(UserError):
        World(-1)
    w = World(0)
    with pytest.raises(UserError):
        w.render(np.eye(3), np.eye(3), 8, 8)
    with pytest.raises(UserError):
        w.render(np.eye(4), np.eye(3), 0, 8)
    with pytest.raises(UserError):
        w.render(np.eye(4), np.eye(3), 8, 8, backend="vulkan")
    with pytest.raises(UserError):
        w.collides(np.zeros((2, 2)))
