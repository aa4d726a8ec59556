"""The camera-following measurement end to end on random-init tiny weights: report keys, windows, the repeated
first frame on a static trajectory, the no-camera ablation and the phase-correlation sign convention."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from camworld.camera import action_string_to_c2w
from camworld.errors import UserError
from camworld.eval.camera_following import (
    CEILING,
    SYSTEMS,
    CameraBlind,
    FollowingResult,
    FollowingSettings,
    camera_blind,
    frame_windows,
    horizontal_motion,
    horizontal_shift,
    markdown_table,
    run_following,
    trajectory,
    write_report,
)


def test_static_trajectory_report(world_model, tmp_path):
    settings = FollowingSettings(seeds=[10000, 10001], num_frames=9, action="none-8", yaw_seeds=[10002], steps=2)
    result = run_following(world_model, settings, progress=False)
    paths = write_report(result, tmp_path)
    assert sorted(p.name for p in paths) == ["frames.png", "results.json", "scores.png", "yaw.png"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert {"settings", "windows", "per_seed", "summary", "beats", "yaw", "camera_ablation"} <= set(data)
    assert data["windows"] == {"first fifth": [1, 1], "last fifth": [8, 8]}
    assert data["settings"]["refiner_used"] == world_model.refiner_by_default  # the default is generate's
    assert data["settings"]["cfg_scale"] == world_model.default_cfg_scale
    assert set(data["summary"]) == {*SYSTEMS, CEILING} and len(data["per_seed"]) == 2
    for window in data["windows"]:
        assert set(data["beats"][window]) == {"repeat_first_frame", "no_camera", "both"}
        for row in data["per_seed"]:  # the world is static, so the conditioning image is every true frame
            assert row["repeat_first_frame"][window]["psnr"] >= 40
            assert row["repeat_first_frame"][window]["ssim"] > 0.99
    assert {f"{who}_{measure}_{side}" for who in ("truth", "model") for measure in ("motion", "dx")
            for side in ("left", "right")} <= set(data["yaw"]["per_seed"][0])
    # the sign convention holds on real renders, by both measures
    assert data["yaw"]["truth_agreement"] == data["yaw"]["truth_agreement_end_to_end"] == 1.0
    assert set(data["yaw"]["motion_ratio"]) == {"left", "right"}
    assert data["yaw"]["model_agreement_strong"] <= data["yaw"]["model_agreement"]
    table = markdown_table(result)
    assert "| no_camera |" in table and f"| {CEILING} |" in table


def test_camera_blind_drops_the_cameras_and_restores(world_model):
    c2w = action_string_to_c2w("dw-8")
    K = np.repeat(np.array([[40.0, 0, 31.5], [0, 40.0, 15.5], [0, 0, 1]])[None], len(c2w), axis=0)
    image = np.random.default_rng(0).integers(0, 256, (*world_model.image_hw, 3), dtype=np.uint8)
    dit = world_model.dit
    camera_params = [p for name, p in dit.named_parameters() if "plucker" in name]
    saved = [p.clone() for p in camera_params]
    with torch.no_grad():  # with its zero-init Plücker projections nudged, the DiT depends on the camera
        for p in camera_params:
            p.add_(0.05)
    try:
        kwargs = {"steps": 2, "refiner": False, "progress": False}
        seen = world_model.generate(image, "", c2w, K, **kwargs).latents
        with camera_blind(world_model):
            assert isinstance(world_model.dit, CameraBlind)
            blind = world_model.generate(image, "", c2w, K, **kwargs).latents
        static = world_model.generate(image, "", np.repeat(np.eye(4)[None], len(c2w), 0), K, **kwargs).latents
        with camera_blind(world_model):
            blind_static = world_model.generate(image, "", np.repeat(np.eye(4)[None], len(c2w), 0), K,
                                                **kwargs).latents
    finally:
        with torch.no_grad():
            for p, value in zip(camera_params, saved, strict=True):
                p.copy_(value)
    assert world_model.dit is dit and "refiner" not in vars(world_model)
    assert not torch.equal(seen, static)  # the cameras matter to the model...
    torch.testing.assert_close(blind, blind_static, rtol=0, atol=0)  # ...and not to the blind one


def test_phase_correlation_sign_and_windows():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)
    assert horizontal_shift(image, np.roll(image, 6, axis=1)) == pytest.approx(6, abs=0.5)
    assert horizontal_shift(image, np.roll(image, -6, axis=1)) == pytest.approx(-6, abs=0.5)
    # motion past half the width: the frame-to-frame sum follows it, first against last wraps around
    clip = np.stack([np.roll(image, 3 * t, axis=1) for t in range(31)])
    assert horizontal_motion(clip) == pytest.approx(90, abs=1.5)
    assert horizontal_motion(clip[::-1]) == pytest.approx(-90, abs=1.5)
    assert horizontal_shift(clip[0], clip[-1]) == pytest.approx(90 - 96, abs=0.5)
    assert frame_windows(961) == {"0-5 s": [1, 80], "50-60 s": [800, 960]}
    assert frame_windows(81) == {"first fifth": [1, 16], "last fifth": [65, 80]}
    assert len(trajectory("w-3", 11)) == 11 and np.allclose(trajectory("w-3", 11)[:4], action_string_to_c2w("w-3"))
    with pytest.raises(UserError, match="10000"):
        FollowingSettings(seeds=[5]).check()


def test_more_than_two_windows_draw_a_drift_figure(tmp_path):
    windows = {f"poses {a}-{a + 15}": [a, a + 15] for a in (1, 17, 33)}
    stats = {w: {"psnr_mean": 20.0 - i, "psnr_std": 0.5, "ssim_mean": 0.6 - 0.1 * i, "ssim_std": 0.05}
             for i, w in enumerate(windows)}
    result = FollowingResult(settings={}, windows=windows, systems=["model", "no_camera"],
                             per_seed=[{"seed": 10000}], summary={"model": stats, "no_camera": stats})
    names = {p.name for p in write_report(result, tmp_path)}
    assert names == {"results.json", "scores.png", "drift.png"}
    with Image.open(tmp_path / "drift.png") as image:
        assert image.width > 600 and len(image.getcolors(1 << 16) or range(1 << 16)) > 8  # drawn, not blank
    two = FollowingResult(settings={}, windows=dict(list(windows.items())[:2]), systems=["model"],
                          per_seed=[{"seed": 10000}], summary={"model": stats})
    assert "drift.png" not in {p.name for p in write_report(two, tmp_path / "two")}
