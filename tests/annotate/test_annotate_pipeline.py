"""The annotator end to end: engines, metric scale, filters, the shard it writes and its one-line failures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from camworld.annotate.pipeline import annotate_frames
from camworld.annotate.vo_opencv import run_opencv_chain
from camworld.annotate.world_clips import path_length, render_world_clip, scale_error
from camworld.camera import pose_errors
from camworld.cli import main
from camworld.data.shards import list_shards, read_clip, validate_shard
from camworld.errors import UserError
from camworld.video import write_mp4


def _k_arg(K) -> str:
    return f"{K[0, 0]},{K[1, 1]},{K[0, 2]},{K[1, 2]}"


def test_opencv_chain_with_true_depth(small_orbit):
    clip = small_orbit
    result = run_opencv_chain(clip.frames, clip.K, clip.depth)
    assert result.registered.all()
    errors = pose_errors(result.c2w, clip.c2w)
    assert errors["RotErr"] < 0.5
    assert errors["TransErr"] < 0.05 * path_length(clip.c2w)
    assert abs(scale_error(result.c2w, clip.c2w)) < 0.05


def test_gt_depth_mode_recovers_metric_poses(small_orbit):
    clip = small_orbit
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="opencv",
                        measured_depth=True)
    assert a.engine == "opencv" and a.registered == len(clip.frames)
    assert a.notes["scale_source"] == "metric_depth_flow" and a.notes["opencv_translations"] == "dense_flow_averaging"
    assert abs(scale_error(a.c2w, clip.c2w)) < 0.05
    np.testing.assert_allclose(a.c2w[0], np.eye(4), atol=1e-6)


def test_gt_pose_mode_takes_the_scale_of_known_poses(small_orbit):
    clip = small_orbit
    half_depth = lambda K: clip.depth / 2  # a wrong metric depth: the known poses must win
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=half_depth, gt_c2w=clip.c2w,
                        engine="opencv")
    assert a.notes["scale_source"] == "gt_poses_sim3"
    assert abs(scale_error(a.c2w, clip.c2w)) < 0.1  # halved depth alone would be 50 % off


def test_unusable_clips_fail_with_reasons(small_orbit):
    clip = small_orbit
    with pytest.raises(UserError, match="too short"):
        annotate_frames(clip.frames[:5], K=clip.K, depth_for=lambda K: clip.depth)
    noise = np.random.default_rng(0).integers(0, 256, clip.frames.shape, dtype=np.uint8)
    with pytest.raises(UserError, match="pose recovery failed, no poses written: opencv"):
        annotate_frames(noise, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="opencv")
    still = np.repeat(clip.frames[:1], 12, axis=0)  # a camera that never moves fixes no metric scale
    with pytest.raises(UserError, match="no poses written: opencv: flow scale: .* the clip fixes no scale"):
        annotate_frames(still, K=clip.K.astype(float), depth_for=lambda K: clip.depth[:1].repeat(12, 0),
                        engine="opencv")
    wide = render_world_clip(10_003, "orbit", 10, height=128, width=224, hfov_deg=125.0)
    with pytest.raises(UserError, match="camera filters: horizontal field of view 125.0°"):
        annotate_frames(wide.frames, K=wide.K.astype(float), depth_for=lambda K: wide.depth, engine="opencv")


def test_cli_writes_a_valid_shard_and_fails_cleanly(small_orbit, tmp_path, capsys):
    clip = small_orbit
    video, depth = tmp_path / "orbit.mp4", tmp_path / "depth.npy"
    write_mp4(video, clip.frames)
    np.save(depth, clip.depth)
    out = tmp_path / "ds"
    args = ["annotate", "clip", str(video), "--out", str(out), "--intrinsics", _k_arg(clip.K),
            "--depth-dir", str(depth), "--engine", "opencv", "--keep-depth", "--caption", "an orbit"]
    assert main(args) == 0
    assert "depth net" not in capsys.readouterr().err  # exact depth given: no caveat about the net
    (shard,) = list_shards(out)
    assert validate_shard(shard) == 1
    stored = read_clip(shard, 0)
    assert stored.caption == "an orbit" and stored.trajectory["engine"] == "opencv"
    assert not stored.trajectory["caption_placeholder"] and stored.depth is not None
    assert pose_errors(stored.c2w, clip.c2w)["RotErr"] < 1.0
    net_args = ["annotate", "clip", str(video), "--out", str(tmp_path / "net"), "--intrinsics", _k_arg(clip.K),
                "--engine", "opencv"]
    assert main(net_args) == 0
    err = capsys.readouterr().err
    assert "comes from camworld's small depth net" in err and "estimated by COLMAP" not in err

    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    short = tmp_path / "short.mp4"
    write_mp4(short, clip.frames[:4])
    capsys.readouterr()
    for path, reason in [(bad, "cannot read video"), (short, "too short"), (tmp_path / "missing.mp4", "not found")]:
        rc = main(["annotate", "clip", str(path), "--out", str(out), "--intrinsics", _k_arg(clip.K),
                   "--depth-dir", str(depth), "--engine", "opencv"])
        err = capsys.readouterr().err
        assert rc == 2 and reason in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert len(list_shards(out)) == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_depth_dir_counts_as_measured_depth_and_the_net_does_not(small_orbit, tmp_path, monkeypatch, capsys):
    """`--depth-dir` is SANA-WM's GT-depth mode: the pipeline is told the depth is measured (so the chain wins a
    disagreement with COLMAP); the depth net's depth is predicted."""
    import camworld.annotate.to_shard as to_shard

    clip = small_orbit
    video, depth = tmp_path / "orbit.mp4", tmp_path / "depth.npy"
    write_mp4(video, clip.frames)
    np.save(depth, clip.depth)
    seen = []

    def spy(frames, **kwargs):
        seen.append(kwargs["measured_depth"])
        raise UserError("stopped by the test")

    monkeypatch.setattr(to_shard, "annotate_frames", spy)
    common = ["annotate", "clip", str(video), "--out", str(tmp_path / "ds"), "--intrinsics", _k_arg(clip.K)]
    assert main([*common, "--depth-dir", str(depth)]) == 2
    assert main(common) == 2
    assert seen == [True, False] and "stopped by the test" in capsys.readouterr().err


def test_short_orbit_through_colmap(tmp_path):
    """The default engines on a 16-frame orbit at 256x448 with given depth. COLMAP split this short clip into two
    models when measured, so its check rejected it and the OpenCV chain took over; either way the poses must hold."""
    clip = render_world_clip(10_004, "orbit", 16)
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth)
    errors = pose_errors(a.c2w, clip.c2w)
    assert a.engine == "colmap" or "colmap" in a.notes["rejected_engines"][0], a.notes
    assert errors["RotErr"] <= 1.0
    assert errors["TransErr"] <= 0.05 * path_length(clip.c2w)
    assert abs(scale_error(a.c2w, clip.c2w)) <= 0.1


def test_colmap_scale_comes_from_the_depth_chain(small_orbit, monkeypatch):
    """A COLMAP model in a gauge 7 times smaller than metres gets its scale from the Sim(3) onto the metric
    depth-PnP chain, or, when the chain registers too few frames, from SANA-WM's per-frame structure scale; a
    model whose trajectory the chain does not fit, or whose rotations it does not share, is rejected."""
    import camworld.annotate.pipeline as pipeline

    clip = small_orbit
    metric = run_opencv_chain(clip.frames, clip.K.astype(float), clip.depth)
    model = dataclasses.replace(metric, c2w=metric.c2w.copy(), engine="colmap",
                                observations=[(uv, d / 7.0) for uv, d in metric.observations])
    model.c2w[:, :3, 3] /= 7.0
    monkeypatch.setattr(pipeline, "run_colmap", lambda frames, K: dataclasses.replace(model))
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="colmap",
                        measured_depth=True)
    assert a.notes["scale_source"] == "metric_depth_pnp_chain_sim3"
    assert a.scale == pytest.approx(7.0, rel=1e-3)
    # predicted depth: the dense flow scale, the chain only checking the trajectory (its scale in the notes)
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="colmap")
    assert a.notes["scale_source"] == "metric_depth_flow" and a.notes["chain_scale"] == pytest.approx(7.0, rel=1e-3)
    assert a.scale == pytest.approx(7.0, rel=0.1) and a.scale != pytest.approx(7.0, rel=1e-3)

    lost = dataclasses.replace(metric, registered=np.arange(len(clip.frames)) < 5)
    monkeypatch.setattr(pipeline, "run_opencv_chain", lambda *args: lost)
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="colmap",
                        measured_depth=True)
    assert a.notes["scale_source"] == "metric_depth_structure"
    assert "registered 5/20" in a.notes["chain_unused"]
    assert a.scale == pytest.approx(7.0, rel=0.05)

    wrong = dataclasses.replace(metric, c2w=metric.c2w.copy())
    order = np.random.default_rng(0).permutation(len(clip.frames))
    wrong.c2w[:, :3, 3] = metric.c2w[order, :3, 3]  # the chain visits the path's points out of order
    monkeypatch.setattr(pipeline, "run_opencv_chain", lambda *args: wrong)
    with pytest.raises(UserError, match="does not fit the depth-PnP chain .*; so the OpenCV chain is not trusted"):
        annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="auto")

    turned = dataclasses.replace(metric, c2w=metric.c2w.copy())
    yaw = np.radians(3.0)
    turn = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    turned.c2w[1:, :3, :3] = turn @ metric.c2w[1:, :3, :3]  # same path, every camera but the first turned 3°
    monkeypatch.setattr(pipeline, "run_opencv_chain", lambda *args: turned)
    with pytest.raises(UserError, match=r"disagrees with the depth-PnP chain \(mean rotation gap 2\.\d\d°"):
        annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="auto")
    # with measured depth (GT-depth mode) the chain is taken instead
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="auto",
                        measured_depth=True)
    assert a.engine == "opencv" and "disagrees with the depth-PnP chain" in a.notes["rejected_engines"][0]
    np.testing.assert_allclose(a.c2w[:, :3, :3], turned.c2w[:, :3, :3], atol=1e-5)


def test_cli_says_when_the_intrinsics_were_estimated(small_orbit, tmp_path, monkeypatch, capsys):
    """Without --intrinsics COLMAP's estimate is used, and the user is told how far off it was measured to be."""
    import camworld.annotate.to_shard as to_shard

    clip = small_orbit
    video = tmp_path / "orbit.mp4"
    write_mp4(video, clip.frames)
    known = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: clip.depth, engine="opencv")
    seen = []

    def estimated(frames, **kwargs):
        seen.append(kwargs["K"])
        return known

    monkeypatch.setattr(to_shard, "annotate_frames", estimated)
    assert main(["annotate", "clip", str(video), "--out", str(tmp_path / "ds"), "--engine", "opencv"]) == 0
    assert seen == [None]
    assert f"estimated by COLMAP (fx {known.K[0, 0]:.1f})" in capsys.readouterr().err
