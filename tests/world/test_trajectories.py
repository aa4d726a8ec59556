"""Trajectories through a World: speed and turn limits, revisits, collisions, determinism, and the curve maths."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.camera import action_string_to_c2w
from camworld.errors import UserError
from camworld.world import World
from camworld.world.curves import (
    catmull_rom,
    quat_from_matrix,
    quat_from_yaw_pitch,
    quat_to_matrix,
    resample_in_time,
    slerp,
    squad,
    squad_controls,
    step_times,
)
from camworld.world.trajectories import (
    REVISIT_TEMPLATES,
    random_keypress_trajectory,
    revisit_trajectory,
    waypoint_trajectory,
)


@pytest.fixture(scope="module")
def worlds():
    return [World(seed) for seed in (0, 1, 2)]


def speeds(c2w: np.ndarray, fps: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Per-step speed (m/s) and angular speed (°/s) of c2w [F, 4, 4]."""
    c2w = c2w.astype(np.float64)
    speed = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=-1) * fps
    rel = np.einsum("nji,njk->nik", c2w[:-1, :3, :3], c2w[1:, :3, :3])
    cos = (np.trace(rel, axis1=1, axis2=2) - 1) / 2
    return speed, np.degrees(np.arccos(np.clip(cos, -1, 1))) * fps


def check_common(world, c2w, num_frames):
    assert c2w.shape == (num_frames, 4, 4) and c2w.dtype == np.float32
    assert np.array_equal(c2w[0], np.eye(4, dtype=np.float32))
    rot = c2w[:, :3, :3].astype(np.float64)
    assert np.abs(np.swapaxes(rot, 1, 2) @ rot - np.eye(3)).max() < 1e-5
    assert not world.collides(c2w[:, :3, 3], margin=0.3).any()


SMOOTH = [("waypoint", None)] + [("revisit", name) for name in REVISIT_TEMPLATES]


def build(kind, template, world, num_frames, seed):
    if kind == "waypoint":
        return waypoint_trajectory(world, num_frames, seed)
    return revisit_trajectory(world, num_frames, seed, template)


@pytest.mark.parametrize("kind,template", SMOOTH)
@pytest.mark.parametrize("num_frames", [9, 161])
def test_smooth_trajectories_respect_limits(worlds, kind, template, num_frames):
    for seed, world in enumerate(worlds):
        c2w, meta = build(kind, template, world, num_frames, seed)
        check_common(world, c2w, num_frames)
        speed, turn = speeds(c2w)
        # float32 poses: allow rounding in the last digits
        assert speed.max() <= 0.4 + 1e-4 and turn.max() <= 12.0 + 0.05, (speed.max(), turn.max())
        assert speed.max() > 0.05, "the camera should actually move"
        assert meta["kind"] == kind and meta["num_frames"] == num_frames


def test_long_loop_turns_with_the_path(worlds):
    c2w, meta = revisit_trajectory(worlds[0], 961, 0, "loop")
    check_common(worlds[0], c2w, 961)
    speed, turn = speeds(c2w)
    assert speed.max() <= 0.4 + 1e-4 and turn.max() <= 12.0 + 0.05
    assert meta["orientation"] == "heading"
    # a full loop looking along the path: the optical axis sweeps all directions
    yaw = np.degrees(np.arctan2(c2w[:, 0, 2], c2w[:, 2, 2]))
    assert yaw.max() - yaw.min() > 300


@pytest.mark.parametrize("template", sorted(REVISIT_TEMPLATES))
def test_revisit_templates_carry_revisit_pairs(worlds, template):
    c2w, meta = revisit_trajectory(worlds[1], 161, 4, template)
    pairs = meta["revisit_pairs"]
    assert meta["template"] == template and pairs
    for i, j in pairs:
        assert j - i >= meta["revisit_min_gap"]
        assert np.linalg.norm(c2w[i, :3, 3] - c2w[j, :3, 3]) < 0.5
        cos = float(c2w[i, :3, 2] @ c2w[j, :3, 2])
        assert np.degrees(np.arccos(min(1.0, cos))) < 20


def test_random_keypress_policy(worlds):
    for seed, world in enumerate(worlds):
        c2w, meta = random_keypress_trajectory(world, 241, seed)
        check_common(world, c2w, 241)
        assert np.array_equal(c2w, action_string_to_c2w(meta["action"]))
        segments = [s.rsplit("-", 1) for s in meta["action"].split(",")]
        assert sum(int(n) for _, n in segments) == 240
        assert len(segments) >= 3


@pytest.mark.parametrize("kind,template", [("random", None)] + SMOOTH)
def test_deterministic_by_seed(worlds, kind, template):
    def make(seed):
        if kind == "random":
            return random_keypress_trajectory(worlds[2], 97, seed)
        return build(kind, template, worlds[2], 97, seed)

    (a, meta_a), (b, meta_b), (c, _) = make(11), make(11), make(12)
    assert np.array_equal(a, b) and meta_a == meta_b
    assert not np.array_equal(a, c)


class Walled:
    """A world where every position but the start collides (or the start too, with blocked_start)."""

    seed = 99

    def __init__(self, blocked_start: bool = False):
        self.blocked_start = blocked_start

    def collides(self, positions, margin=0.3):
        return (np.linalg.norm(np.asarray(positions), axis=-1) > 1e-9) | self.blocked_start


@pytest.mark.parametrize("make", [
    lambda w: waypoint_trajectory(w, 33, 0),
    lambda w: revisit_trajectory(w, 33, 0, "loop"),
])
def test_gives_up_with_a_clear_error(make):
    with pytest.raises(UserError, match="no collision-free .* trajectory in world seed 99 after 16 attempts"):
        make(Walled())


@pytest.mark.parametrize("make", [random_keypress_trajectory, waypoint_trajectory, revisit_trajectory])
def test_blocked_start_is_an_error(make):
    with pytest.raises(UserError, match="the start .* world seed 99"):
        make(Walled(blocked_start=True), 33, 0)


def test_random_policy_only_turns_when_walled_in():
    c2w, meta = random_keypress_trajectory(Walled(), 97, 3)
    assert np.abs(c2w[:, :3, 3]).max() < 1e-9
    assert meta["attempts"] > len(meta["action"].split(","))
    keys = {seg.rsplit("-", 1)[0] for seg in meta["action"].split(",")}
    assert keys <= {"a", "d", "i", "k", "none"}


def test_unknown_template():
    with pytest.raises(UserError, match="unknown revisit template"):
        revisit_trajectory(Walled(), 9, 0, "spiral")


def test_quaternion_helpers():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    rot = quat_to_matrix(q)
    assert np.allclose(np.swapaxes(rot, 1, 2) @ rot, np.eye(3), atol=1e-12)
    assert np.allclose(np.abs(np.sum(quat_from_matrix(rot) * q, axis=-1)), 1, atol=1e-12)
    yaw, pitch = 0.4, -0.3
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    assert np.allclose(quat_to_matrix(quat_from_yaw_pitch(yaw, pitch)), ry @ rx)
    a, b = quat_from_yaw_pitch(0.0, 0.0), quat_from_yaw_pitch(1.0, 0.0)
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    assert np.allclose(slerp(a, b, 0.25), quat_from_yaw_pitch(0.25, 0.0))
    # the shorter arc: -b is the same rotation
    assert np.allclose(quat_to_matrix(slerp(a, -b, 0.5)), quat_to_matrix(quat_from_yaw_pitch(0.5, 0.0)))


def test_splines_pass_through_their_keys():
    rng = np.random.default_rng(1)
    points = np.cumsum(rng.uniform(0.2, 1.0, (6, 3)), axis=0)
    positions, segment, t = catmull_rom(points, 8)
    assert np.allclose(positions[::8], points)
    keys = quat_from_yaw_pitch(rng.uniform(-1, 1, 6), rng.uniform(-0.3, 0.3, 6))
    q = squad(keys, squad_controls(keys), segment, t)
    assert np.allclose(np.abs(np.sum(q[::8] * keys, axis=-1)), 1)
    steps = np.abs(np.sum(q[1:] * q[:-1], axis=-1))
    assert steps.min() > 0.99, "Squad must not jump between neighbouring samples"


def test_retiming_meets_both_limits():
    m = 400
    positions = np.column_stack([np.zeros(m), np.zeros(m), np.linspace(0, 2.0, m)])
    quats = quat_from_yaw_pitch(np.concatenate([np.zeros(m // 2), np.linspace(0, 1.5, m // 2)]), np.zeros(m))
    dt = step_times(positions, quats, 0.4, 12.0, smooth_radius=5)
    frames = int(np.ceil(dt.sum() * 16)) + 1
    pos, q = resample_in_time(positions, quats, dt, frames)
    speed, turn = speeds(np.stack([np.block([[quat_to_matrix(r), p[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])
                                   for r, p in zip(q, pos)]))
    assert speed.max() <= 0.4 + 1e-9 and turn.max() <= 12.0 + 1e-6
    assert turn.max() > 11.0, "the turn should run near the angular limit"
