"""Camera file loading and validation, the intrinsics transforms, relativising and the field-of-view check."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.camera import (
    action_string_to_c2w,
    check_fov,
    intrinsics_resize_crop,
    intrinsics_to_grid,
    load_c2w,
    load_intrinsics,
    relativize,
    resize_crop_geometry,
    validate_c2w,
)
from camworld.errors import UserError

K_SRC = np.array([[800.0, 0.0, 640.0], [0.0, 790.0, 360.0], [0.0, 0.0, 1.0]], dtype=np.float32)


def _random_rigid(rng, n):
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q *= np.sign(np.linalg.det(q))[:, None, None]
    pose = np.tile(np.eye(4), (n, 1, 1))
    pose[:, :3, :3] = q
    pose[:, :3, 3] = rng.normal(size=(n, 3))
    return pose


def _save(tmp_path, name, arr):
    path = tmp_path / name
    np.save(path, arr)
    return path


def test_load_c2w_roundtrip(tmp_path):
    c2w = action_string_to_c2w("w-5,d-5")
    out = load_c2w(_save(tmp_path, "cam.npy", c2w.astype(np.float64)))
    assert out.dtype == np.float32 and out.shape == (11, 4, 4)
    np.testing.assert_array_equal(out, c2w)
    npz = tmp_path / "bench.npz"
    np.savez(npz, c2w=c2w, intrinsics=np.repeat(K_SRC[None], 11, axis=0))
    np.testing.assert_array_equal(load_c2w(npz), c2w)
    np.testing.assert_array_equal(load_intrinsics(npz, 11), np.repeat(K_SRC[None], 11, axis=0))


@pytest.mark.parametrize(("arr", "fragment"), [
    (np.zeros((4, 4)), "shape"),
    (np.zeros((3, 3, 4)), "shape"),
    (np.full((2, 4, 4), np.nan), "NaN"),
    (np.stack([np.eye(4), np.diag([2.0, 1.0, 1.0, 1.0])]), "pose 1 is not a rigid"),
    (np.stack([np.diag([1.0, 1.0, -1.0, 1.0])]), "det"),
])
def test_load_c2w_rejects_bad_arrays(tmp_path, arr, fragment):
    path = _save(tmp_path, "bad.npy", arr)
    with pytest.raises(UserError, match=fragment) as info:
        load_c2w(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_load_rejects_missing_garbage_and_pickles(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_c2w(tmp_path / "absent.npy")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy at all")
    with pytest.raises(UserError, match="garbage.npy"):
        load_c2w(garbage)
    pickled = _save(tmp_path, "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="obj.npy"):
        load_intrinsics(pickled, 3)
    with pytest.raises(UserError, match="no 'c2w'"):
        np.savez(tmp_path / "x.npz", poses=np.eye(4)[None])
        load_c2w(tmp_path / "x.npz")


def test_validate_c2w_accepts_float32_rollout_and_names_the_source():
    validate_c2w(action_string_to_c2w("i-90,d-300,w-20"), "demo")
    bad = np.eye(4)
    bad[3, 0] = 0.5
    with pytest.raises(UserError, match="^mine: .*bottom row"):
        validate_c2w(bad[None], "mine")


def test_load_intrinsics_shapes(tmp_path):
    vec = np.array([800.0, 790.0, 640.0, 360.0])
    for name, arr in [("k33.npy", K_SRC), ("k4.npy", vec), ("f4.npy", vec[None]), ("fk.npy", K_SRC[None])]:
        out = load_intrinsics(_save(tmp_path, name, arr), 7)
        assert out.shape == (7, 3, 3) and out.dtype == np.float32
        np.testing.assert_allclose(out, np.repeat(K_SRC[None], 7, axis=0))
    seq = np.stack([vec, vec * [2, 2, 1, 1], vec * [3, 3, 1, 1]])
    trunc = load_intrinsics(_save(tmp_path, "seq.npy", seq), 2)
    np.testing.assert_allclose(trunc[:, 0, 0], [800.0, 1600.0])
    resampled = load_intrinsics(_save(tmp_path, "seq.npy", seq), 5)
    np.testing.assert_allclose(resampled[:, 0, 0], [800.0, 1200.0, 1600.0, 2000.0, 2400.0])
    with pytest.raises(UserError, match=r"\(5, 5\)"):
        load_intrinsics(_save(tmp_path, "bad.npy", np.zeros((5, 5))), 3)
    with pytest.raises(UserError, match="focal"):
        load_intrinsics(_save(tmp_path, "neg.npy", vec * [-1, 1, 1, 1]), 3)


def _project(K, point):
    x = K @ point
    return x[:2] / x[2]


@pytest.mark.parametrize(("src_hw", "dst_hw"), [((720, 1280), (704, 1280)), ((1080, 1440), (352, 640)),
                                                ((480, 480), (64, 96)), ((901, 1603), (22, 40))])
def test_resize_crop_maps_pixels_consistently(src_hw, dst_hw):
    rng = np.random.default_rng(0)
    (res_h, res_w), (top, left) = resize_crop_geometry(src_hw, dst_hw)
    assert res_h >= dst_hw[0] and res_w >= dst_hw[1] and top >= 0 and left >= 0
    K_dst = intrinsics_resize_crop(K_SRC, src_hw, dst_hw).astype(np.float64)
    for point in rng.normal(size=(10, 3)) + [0.0, 0.0, 4.0]:
        u, v = _project(K_SRC.astype(np.float64), point)
        expected = (u * res_w / src_hw[1] - left, v * res_h / src_hw[0] - top)
        np.testing.assert_allclose(_project(K_dst, point), expected, rtol=1e-5, atol=1e-3)


def test_resize_crop_geometry_known_cases():
    assert resize_crop_geometry((720, 1280), (704, 1280)) == ((720, 1280), (8, 0))
    assert resize_crop_geometry((1080, 1440), (352, 640)) == ((480, 640), (64, 0))
    K = intrinsics_resize_crop(K_SRC, (720, 1280), (704, 1280))
    np.testing.assert_allclose(K, [[800.0, 0.0, 640.0], [0.0, 790.0, 352.0], [0.0, 0.0, 1.0]])


def test_intrinsics_to_grid_sana_numbers():
    K = intrinsics_to_grid(np.repeat(K_SRC[None], 2, axis=0), (704, 1280), (22, 40))
    np.testing.assert_allclose(K[0], [[25.0, 0, 20.0], [0, 790 * 22 / 704, 360 * 22 / 704], [0, 0, 1]], rtol=1e-6)


def test_relativize_makes_frame_0_identity_and_is_invariant_to_world_frame():
    rng = np.random.default_rng(1)
    poses = _random_rigid(rng, 6)
    world = _random_rigid(rng, 1)[0]
    rel = relativize(poses)
    np.testing.assert_array_equal(rel[0], np.eye(4))
    np.testing.assert_allclose(relativize(world @ poses), rel, atol=1e-12)
    np.testing.assert_allclose(poses[0] @ rel, poses, atol=1e-12)


def test_check_fov():
    check_fov(K_SRC, (720, 1280))  # ~77° x 49°
    with pytest.raises(UserError, match="horizontal field of view .* outside"):
        check_fov(np.diag([200.0, 790.0, 1.0]), (720, 1280))
    with pytest.raises(UserError, match="vertical field of view"):
        check_fov(np.repeat(np.diag([800.0, 2000.0, 1.0])[None], 3, axis=0), (720, 1280))
