"""Plücker rays and the packing of raw-frame rays behind each latent frame (sana_wm.md §3.1, §3.3, §10.2.6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camworld.camera import (
    action_string_to_c2w,
    latent_cameras,
    latent_raw_indices,
    level_frame,
    pack_plucker,
    plucker_rays,
    relativize,
)
from camworld.errors import UserError

K_GRID = np.array([[25.0, 0.0, 20.0], [0.0, 24.0, 11.0], [0.0, 0.0, 1.0]], dtype=np.float32)


def test_directions_unit_and_moments_orthogonal():
    c2w = action_string_to_c2w("w-10,dl-10,i-5").copy()
    c2w[:, :3, 3] += [0.3, -1.2, 2.0]
    rays = plucker_rays(c2w, K_GRID, 22, 40)
    assert rays.shape == (26, 22, 40, 6) and rays.dtype == torch.float32
    d, m = rays[..., :3], rays[..., 3:]
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(26, 22, 40))
    assert (d * m).sum(-1).abs().max() < 1e-5
    # Every ray passes through the camera centre: o x d == m.
    origin = torch.as_tensor(c2w[:, None, None, :3, 3]).expand_as(d)
    torch.testing.assert_close(torch.linalg.cross(origin, d, dim=-1), m, atol=1e-5, rtol=1e-5)


def test_identity_pose_gives_zero_moments_and_pixel_directions():
    rays = plucker_rays(np.eye(4), K_GRID, 22, 40)
    assert rays[..., 3:].abs().max() == 0
    centre = rays[11, 20, :3]  # pixel (u=20, v=11) is the principal point: no +0.5 offset
    torch.testing.assert_close(centre, torch.tensor([0.0, 0.0, 1.0]))
    corner = rays[0, 0, :3]
    expected = torch.tensor([-20 / 25, -11 / 24, 1.0], dtype=torch.float64)
    torch.testing.assert_close(corner, (expected / expected.norm()).float())


def test_torch_and_numpy_inputs_agree_and_broadcast():
    c2w = action_string_to_c2w("dw-7")
    a = plucker_rays(c2w, K_GRID, 4, 5)
    b = plucker_rays(torch.from_numpy(c2w), torch.from_numpy(K_GRID)[None].expand(8, 3, 3), 4, 5)
    torch.testing.assert_close(a, b)


def test_latent_raw_indices_rule():
    assert latent_raw_indices(0, 8) == list(range(8))
    assert latent_raw_indices(1, 8) == list(range(1, 9))
    assert latent_raw_indices(5, 8) == list(range(33, 41))
    assert latent_raw_indices(3, 4) == [9, 10, 11, 12]
    assert latent_raw_indices(2, 1) == [2]
    with pytest.raises(ValueError):
        latent_raw_indices(-1, 8)


def test_pack_channel_order_and_padding():
    num_raw, stride = 10, 4  # T = 3; latent 0 uses 0..3, 1 uses 1..4, 2 uses 5..8
    c2w = np.tile(np.eye(4, dtype=np.float32), (num_raw, 1, 1))
    c2w[:, 0, 3] = np.arange(num_raw)  # distinct centres so every frame's moments differ
    K = np.repeat(K_GRID[None], num_raw, axis=0)
    packed = pack_plucker(c2w, K, stride, (22, 40))
    assert packed.shape == (3, 22, 40, 24)
    per_frame = plucker_rays(c2w, K, 22, 40)
    for k in range(3):
        for j, raw in enumerate(latent_raw_indices(k, stride)):
            torch.testing.assert_close(packed[k, ..., 6 * j:6 * j + 6], per_frame[raw])
    # Fewer raw frames than one stride: pad with the last pose.
    short = pack_plucker(c2w[:3], K[:3], 8, (2, 3))
    assert short.shape == (1, 2, 3, 48)
    last = plucker_rays(c2w[2], K_GRID, 2, 3)
    for j in range(3, 8):
        torch.testing.assert_close(short[0, ..., 6 * j:6 * j + 6], last)


def test_latent_cameras_take_last_raw_frame():
    c2w = action_string_to_c2w("w-16")  # 17 raw frames -> T = 3 with stride 8
    K = np.repeat(K_GRID[None], 17, axis=0)
    K[:, 0, 0] = np.arange(17)
    lat_c2w, lat_K = latent_cameras(c2w, K, 8)
    np.testing.assert_array_equal(lat_c2w, c2w[[0, 8, 16]])
    np.testing.assert_array_equal(lat_K[:, 0, 0], [0, 8, 16])
    t_c2w, _ = latent_cameras(torch.from_numpy(c2w), torch.from_numpy(K), 8)
    assert isinstance(t_c2w, torch.Tensor) and t_c2w.shape == (3, 4, 4)


def test_rebased_rays_are_those_of_the_trajectory_started_at_the_base():
    c2w = relativize(action_string_to_c2w("w-12,dw-12,d-12"))  # 37 raw frames, T = 10 with stride 4
    K = np.repeat(K_GRID[None], len(c2w), axis=0)
    bases = [0, 0, 0, 0, 4, 4, 4, 7, 7, 7]
    packed = pack_plucker(c2w, K, 4, (5, 6), bases)
    torch.testing.assert_close(packed[:4], pack_plucker(c2w, K, 4, (5, 6))[:4])
    for base, end in ((4, 7), (7, 10)):
        # Started at raw frame 4·base (the base camera), a clip's latent k − base holds latent k's raw frames.
        restarted = pack_plucker(relativize(c2w[4 * base:]), K[4 * base:], 4, (5, 6))
        torch.testing.assert_close(packed[base + 1:end], restarted[1:end - base], atol=1e-5, rtol=1e-5)
        assert packed[base, ..., -3:].abs().max() < 1e-5  # the base camera is the origin: its rays have no moment
    assert pack_plucker(c2w, K, 4, (5, 6), [0] * 10).equal(pack_plucker(c2w, K, 4, (5, 6)))


def test_rebasing_keeps_frame_0_up_direction():
    c2w = relativize(action_string_to_c2w("i-20,dw-16,j-8"))  # pitch up, then yaw while walking, then strafe
    K = np.repeat(K_GRID[None], len(c2w), axis=0)
    plain, rebased = pack_plucker(c2w, K, 4, (5, 6)), pack_plucker(c2w, K, 4, (5, 6), [0] * 7 + [7] * 5)
    d_plain, d_rebased = plain.unflatten(-1, (4, 6)), rebased.unflatten(-1, (4, 6))
    # Turned only about the vertical axis: every ray keeps its vertical component, pitch and horizon included...
    torch.testing.assert_close(d_rebased[..., 1], d_plain[..., 1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(d_rebased[7:, ..., 0], d_plain[7:, ..., 0], atol=1e-3)  # ...but not its heading
    assert d_rebased[7, ..., -1, 3:].abs().max() < 1e-5  # the base camera (raw frame 28, mid-turn) is the origin
    pitched = torch.as_tensor(c2w[28])
    frame = level_frame(pitched)
    torch.testing.assert_close(frame[:3, 3], pitched[:3, 3])
    assert abs(float(frame[1, 2])) < 1e-12 and abs(float(pitched[1, 2])) > 0.1  # level, though the camera is not


@pytest.mark.parametrize("bases", [[0] * 9, [0, 0, 3] + [0] * 7, [-1] + [0] * 9])
def test_bad_plucker_bases_raise_user_error(bases):
    c2w = action_string_to_c2w("w-36")
    with pytest.raises(UserError):
        pack_plucker(c2w, np.repeat(K_GRID[None], 37, axis=0), 4, (2, 3), bases)
