"""scripts/train_bundled.sh, run with `python3` and `torchrun` replaced by a recorder: the phases run in order, each
stage starts from the last checkpoint of the one before, the step counts are the documented ones, packaging and the
student write into WEIGHTS_OUT, and a rerun skips the finished tokenizer. Nothing is trained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Stands in for python3 and torchrun: logs its arguments and makes the folders the recipe reads next.
RECORDER = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["RECIPE_LOG"], "a") as log:
    log.write(json.dumps([Path(sys.argv[0]).name] + args) + "\\n")
def value(flag):
    return args[args.index(flag) + 1] if flag in args else None
out = value("--out")
if "vae" in args and "train" in args:
    (Path(out) / "checkpoint").mkdir(parents=True, exist_ok=True)
    (Path(out) / "checkpoint" / "model.safetensors").touch()
elif "train" in args and out:
    (Path(out) / "checkpoints" / f"step_{{int(value('--steps')):07d}}").mkdir(parents=True, exist_ok=True)
"""


def run_recipe(tmp_path: Path, *extra: str) -> list[list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("python3", "torchrun"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECIPE_LOG": str(log)}
    done = subprocess.run(["bash", "scripts/train_bundled.sh", str(tmp_path / "run"), *extra], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def flag(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_budget_recipe_phases_steps_and_hand_overs(tmp_path):
    run = tmp_path / "run"
    weights = tmp_path / "weights"
    calls = run_recipe(tmp_path, "budget", str(weights))
    vae, data, s1, s2, s3, s4, refiner, package, student, package_student = calls
    assert vae[:4] == ["python3", "-m", "camworld", "vae"] and flag(vae, "--steps") == "6000"
    assert flag(vae, "--threads") == "2"
    assert data[3:5] == ["data", "make"] and flag(data, "--num-clips") == "240"
    for call, stage, steps in ((s1, "1", "120"), (s2, "2", "120"), (s3, "3", "160"), (s4, "4", "1750")):
        assert call[0] == "torchrun" and flag(call, "--nproc-per-node") == "2"
        assert flag(call, "--stage") == stage and flag(call, "--steps") == steps
        assert flag(call, "--tokenizer") == str(run / "vae")
    assert flag(s2, "--init") == str(run / "s1" / "checkpoints" / "step_0000120")
    assert flag(s3, "--init") == str(run / "s2" / "checkpoints" / "step_0000120")
    assert flag(s4, "--init") == str(run / "s3" / "checkpoints" / "step_0000160")
    assert "train.hflip=0.5" in s3 and "train.hflip=0.5" in s4
    assert "--refiner" in refiner and flag(refiner, "--steps") == "100" and "--init-ema" in refiner
    assert flag(refiner, "--init") == str(run / "s4" / "checkpoints" / "step_0001750")
    assert package[1] == "scripts/package_weights.py" and flag(package, "--out") == str(weights)
    assert flag(package, "--dit") == flag(refiner, "--init")
    assert flag(student, "--init") == str(weights / "dit") and flag(student, "--steps") == "450"
    assert flag(package_student, "--weights") == str(weights)

    again = run_recipe(tmp_path, "budget", str(weights))
    assert again[0][3:5] == ["data", "make"] and again[1:] == calls[2:]  # the finished tokenizer is kept


def test_quick_recipe_continues_stage_4_twice_with_mirroring(tmp_path):
    calls = run_recipe(tmp_path, "quick", str(tmp_path / "weights"))
    stage4 = [call for call in calls if "--stage" in call and flag(call, "--stage") == "4"]
    assert [flag(call, "--steps") for call in stage4] == ["900", "450", "600"]
    mirroring = [next(item for item in call if item.startswith("train.hflip=")) for call in stage4]
    assert mirroring == ["train.hflip=0.0", "train.hflip=0.5", "train.hflip=0.5"]
    assert flag(stage4[2], "--init").endswith("s4m/checkpoints/step_0000450")
    refiner = next(call for call in calls if "--refiner" in call)
    assert flag(refiner, "--init").endswith("s4m2/checkpoints/step_0000600")


@pytest.mark.parametrize("mode", ["nope", "Budget"])
def test_unknown_mode_is_one_line_and_exit_2(tmp_path, mode):
    done = subprocess.run(["bash", "scripts/train_bundled.sh", str(tmp_path / "run"), mode], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "budget, quick or full" in done.stderr
    assert not (tmp_path / "run").exists()
