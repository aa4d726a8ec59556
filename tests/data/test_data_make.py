"""Dataset making (resumable, split by seed range), validation, preview, and the clip Dataset round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from camworld.camera import relativize
from camworld.cli import main
from camworld.data import make as make_module
from camworld.data.dataset import ClipDataset, mirror_sample
from camworld.data.make import DatasetSpec, make_dataset, read_manifest, validate_dataset
from camworld.data.shards import list_shards, read_clip, read_shard
from camworld.errors import UserError
from camworld.video import read_video
from camworld.world import World

SPEC = DatasetSpec(num_clips=2, num_frames=9, height=36, width=64, seed_start=5, shard_size=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "ds"
    counts = make_dataset(root, SPEC, progress=False)
    assert counts == {"shards_total": 2, "shards_made": 2, "shards_skipped": 0, "clips_made": 2}
    return root


def test_make_validate_dataset_round_trip(dataset, capsys):
    assert [p.name for p in list_shards(dataset)] == ["shard_00000", "shard_00001"]
    assert read_manifest(dataset) == SPEC
    assert validate_dataset(dataset) == (2, [])
    assert main(["data", "validate", str(dataset)]) == 0
    assert "ok, 2 clips" in capsys.readouterr().out
    clips = [c for shard in list_shards(dataset) for c in read_shard(shard)]
    assert [c.seed for c in clips] == [5, 6]
    for clip in clips:
        world = World(clip.seed)
        assert clip.caption == world.caption and clip.style == world.style and clip.trajectory["kind"]
        assert clip.frames.shape == (9, 36, 64, 3) and clip.depth.shape == (9, 36, 64)
        # stored frames and cameras agree with a fresh render of the same world
        rgb, depth = world.render(clip.c2w[-1], clip.intrinsics[-1], 36, 64)
        assert np.abs(rgb[0].astype(int) - clip.frames[-1]).max() <= 2  # GL renders may differ by 1 LSB
        near = np.isfinite(depth[0]) & (depth[0] < 100)
        assert np.allclose(clip.depth[-1][near], depth[0][near], rtol=2e-3)

    data = ClipDataset(dataset, stride=4, latent_frames=2)
    assert len(data) == 2
    item = data[1]
    assert item["frames"].shape == (9, 36, 64, 3) and item["frames"].dtype == torch.uint8
    assert item["depth"].dtype == torch.float16 and item["caption"] == clips[1].caption
    assert torch.equal(item["frames"], torch.from_numpy(clips[1].frames))
    assert torch.allclose(item["c2w"][0], torch.eye(4))


def test_dataset_random_crops_are_relative(dataset):
    data = ClipDataset(dataset, stride=2, latent_frames=2, with_depth=False)
    clip = read_clip(list_shards(dataset)[0], 0)
    starts = set()
    torch.manual_seed(0)
    for _ in range(30):
        item = data[0]
        s = item["start"]
        starts.add(s)
        assert item["frames"].shape[0] == 5 and "depth" not in item
        assert torch.equal(item["frames"], torch.from_numpy(clip.frames[s:s + 5]))
        assert np.allclose(item["c2w"].numpy(), relativize(clip.c2w[s:s + 5]), atol=1e-6)
    assert starts == set(range(5))
    with pytest.raises(UserError, match="no clip .* has 13 frames"):
        ClipDataset(dataset, stride=4, latent_frames=3)


def _move_pixel(c2w, K, uv, z, src, dst):
    """Pixel uv [2] of frame src at depth z, as seen from frame dst (c2w [F, 4, 4], K [F, 3, 3])."""
    point = c2w[src, :3, :3] @ (z * np.linalg.inv(K[src]) @ np.array([*uv, 1.0])) + c2w[src, :3, 3]
    cam = c2w[dst, :3, :3].T @ (point - c2w[dst, :3, 3])
    proj = K[dst] @ cam
    return proj[:2] / proj[2]


def test_mirrored_sample_is_the_mirror_image_of_the_scene(dataset):
    torch.manual_seed(3)
    plain = ClipDataset(dataset, stride=2, latent_frames=2)[0]
    torch.manual_seed(3)
    flipped = ClipDataset(dataset, stride=2, latent_frames=2, hflip=1.0)[0]
    assert not plain["mirrored"] and flipped["mirrored"] and flipped["start"] == plain["start"]
    assert torch.equal(flipped["frames"], plain["frames"].flip(2))
    assert torch.equal(flipped["depth"], plain["depth"].flip(2))
    c2w, K = plain["c2w"].double().numpy(), plain["intrinsics"].double().numpy()
    c2w_m, K_m = flipped["c2w"].double().numpy(), flipped["intrinsics"].double().numpy()
    assert np.allclose(np.linalg.det(c2w_m[:, :3, :3]), 1.0) and np.allclose(c2w_m[0], np.eye(4))
    width = plain["frames"].shape[2]
    # a scene point moves between frames the same way in the mirror, with u reflected about the image centre
    for uv, z in (((10.0, 12.0), 3.0), ((50.0, 20.0), 7.5), ((31.5, 30.0), 1.2)):
        u, v = _move_pixel(c2w, K, uv, z, 0, 4)
        u_m, v_m = _move_pixel(c2w_m, K_m, (width - 1 - uv[0], uv[1]), z, 0, 4)
        assert np.allclose([u_m, v_m], [width - 1 - u, v], atol=1e-4)
    twice = mirror_sample(flipped)
    assert torch.equal(twice["frames"], plain["frames"]) and torch.allclose(twice["c2w"], plain["c2w"])
    assert torch.allclose(twice["intrinsics"], plain["intrinsics"])
    with pytest.raises(UserError, match="hflip is a probability"):
        ClipDataset(dataset, stride=2, latent_frames=2, hflip=1.5)


def test_resume_after_interruption(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    real = make_module.render_clip

    def dies_on_second_clip(seed, spec):
        if seed == SPEC.seed_start + 1:
            raise KeyboardInterrupt
        return real(seed, spec)

    monkeypatch.setattr(make_module, "render_clip", dies_on_second_clip)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(root, SPEC, progress=False)
    assert [p.name for p in list_shards(root)] == ["shard_00000"]
    monkeypatch.setattr(make_module, "render_clip", real)

    first = root / "shard_00000" / "clips.npz"
    stamp = first.stat().st_mtime_ns
    leftover = root / ".shard_00001.abc123.tmp"  # what a killed atomic_dir leaves
    leftover.mkdir()
    (leftover / "clips.npz").write_bytes(b"partial")
    counts = make_dataset(root, SPEC, progress=False)
    assert counts["shards_made"] == 1 and counts["shards_skipped"] == 1
    assert first.stat().st_mtime_ns == stamp
    assert not leftover.exists()
    assert sorted(p.name for p in root.iterdir()) == ["manifest.json", "shard_00000", "shard_00001"]
    assert validate_dataset(root) == (2, [])


def test_split_across_processes_is_deterministic(tmp_path, dataset):
    root = tmp_path / "ds"
    counts = make_dataset(root, SPEC, shard_index=1, num_shards=2, progress=False)
    assert counts["shards_made"] == 1 and [p.name for p in list_shards(root)] == ["shard_00001"]
    clips, problems = validate_dataset(root)
    assert clips == 1 and problems == [f"missing shard {root / 'shard_00000'} (manifest expects 2)"]
    mine, reference = read_shard(root / "shard_00001")[0], read_shard(dataset / "shard_00001")[0]
    assert np.array_equal(mine.frames, reference.frames) and np.array_equal(mine.c2w, reference.c2w)
    assert mine.trajectory == reference.trajectory
    with pytest.raises(UserError, match="other settings: num_frames 9 \\(asked 17\\)"):
        make_dataset(root, dataclasses.replace(SPEC, num_frames=17), progress=False)
    with pytest.raises(UserError, match="shard-index"):
        make_dataset(root, SPEC, shard_index=2, num_shards=2, progress=False)


def test_validate_cli_reports_a_corrupt_shard(tmp_path, dataset, capsys):
    root = tmp_path / "ds"
    make_dataset(root, SPEC, progress=False)
    npz = root / "shard_00001" / "clips.npz"
    npz.write_bytes(npz.read_bytes()[:500])
    assert main(["data", "validate", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "shard_00001" in err[0] and "corrupt or truncated" in err[0]
    assert err[-1] == f"camworld data: error: 1 problem(s) in {root}"


def test_make_and_show_cli(tmp_path, capsys):
    root, preview = tmp_path / "ds", tmp_path / "preview"
    args = ["data", "make", "--out", str(root), "--num-clips", "1", "--frames", "5", "--size", "36x64",
            "--seed-start", "9", "--trajectory", "revisit", "--no-depth"]
    assert main(args) == 0
    clip = read_clip(root / "shard_00000", 0)
    assert clip.depth is None and clip.trajectory["kind"] == "revisit"
    assert main(["data", "show", str(root), "--out", str(preview)]) == 0
    assert sorted(p.name for p in preview.iterdir()) == ["clip_00_seed9.mp4", "contact_sheet.png"]
    assert len(read_video(preview / "clip_00_seed9.mp4")) == 5
    assert main(args[:-3] + ["--trajectory", "spiral"]) == 2
    assert "unknown --trajectory" in capsys.readouterr().err


@pytest.mark.slow
def test_worker_processes_match_one_process(tmp_path, dataset):
    root = tmp_path / "ds"
    assert make_dataset(root, SPEC, workers=2, progress=False)["shards_made"] == 2
    for name in ("shard_00000", "shard_00001"):
        a, b = read_shard(root / name)[0], read_shard(dataset / name)[0]
        assert np.array_equal(a.c2w, b.c2w) and np.abs(a.frames.astype(int) - b.frames).max() <= 2
