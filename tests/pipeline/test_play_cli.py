"""`camworld play` end to end with random tiny weights: scripted and interactive sessions, the recorded generate
command remaking the same video byte for byte, and bad input (one line, exit code 2, nothing written)."""

from __future__ import annotations

import io
import json
import shlex

import numpy as np
import pytest
from PIL import Image

from camworld.camera import action_string_to_c2w
from camworld.cli import main
from camworld.cli.play_cmd import parse_steps
from camworld.errors import UserError
from camworld.video import read_video


@pytest.fixture
def first_png(tmp_path):
    path = tmp_path / "first.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 200, 3), dtype=np.uint8)).save(path)
    return path


def test_parse_steps_repeats_and_names_the_bad_token():
    assert parse_steps("w*3, dw none") == ["w", "w", "w", "dw", "none"]
    assert parse_steps(" . ") == ["none"] and parse_steps("") == []
    with pytest.raises(UserError, match="'wq'"):
        parse_steps("w wq")
    with pytest.raises(UserError, match="repeat"):
        parse_steps("w*0")


@pytest.mark.parametrize("handoff", [[], ["--segment_refine_handoff"]])
def test_scripted_session_and_its_generate_command_make_the_same_video(weights_dir, first_png, tmp_path, capsys,
                                                                       handoff):
    out = tmp_path / "play"
    rc = main(["play", "--checkpoint", str(weights_dir), "--image", str(first_png), "--actions", "w*2,dw",
               "--step", "2", "--segment_frames", "25", "--prompt-text", "a field", "--output_dir", str(out), *handoff])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["c2w.npy", "intrinsics.npy", "latest.png", "play.json",
                                                    "steps.png", "video.mp4"]
    video = read_video(out / "video.mp4")
    assert video.shape == (37, 32, 64, 3)  # 13 + 12 + 12 frames, the second segment starting at pose 24
    info = json.loads((out / "play.json").read_text())
    assert info["action_string"] == "w-24,dw-12" and info["num_frames"] == 37 and info["segments"] == 2
    assert [s["keys"] for s in info["steps"]] == ["w", "w", "dw"]
    np.testing.assert_array_equal(np.load(out / "c2w.npy"), action_string_to_c2w("w-24,dw-12"))
    assert np.asarray(Image.open(out / "latest.png")).shape == (128, 256, 3)
    assert "step 3: dw" in capsys.readouterr().err

    remake = shlex.split(info["same_frames_as"])
    assert remake[:2] == ["camworld", "generate"]
    assert info["segment_refine_handoff"] == bool(handoff) and ("--segment_refine_handoff" in remake) == bool(handoff)
    assert main([*remake[1:], "--output_dir", str(tmp_path / "gen")]) == 0
    assert (tmp_path / "gen" / "video.mp4").read_bytes() == (out / "video.mp4").read_bytes()


def test_interactive_session_repeats_empty_lines_and_skips_bad_ones(weights_dir, first_png, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("w\n\nwxz\nnone\nq\nw\n"))
    out = tmp_path / "play"
    rc = main(["play", "--checkpoint", str(weights_dir), "--image", str(first_png), "--step", "1",
               "--output_dir", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "camworld play: step 'wxz'" in err and "line skipped" in err
    info = json.loads((out / "play.json").read_text())
    assert [s["keys"] for s in info["steps"]] == ["w", "w", "none"]  # the empty line repeated "w"; q ended it
    assert read_video(out / "video.mp4").shape[0] == 37


@pytest.mark.parametrize(("extra", "message"), [
    (["--actions", "w,jump"], "step 'jump'"),
    (["--actions", " , "], "no steps"),
    (["--fov", "190", "--actions", "w"], "--fov"),
    (["--segment_frames", "10", "--actions", "w"], "segment_frames"),
    (["--image", "missing.png", "--actions", "w"], "missing.png"),
])
def test_bad_input_is_one_line_and_writes_nothing(weights_dir, first_png, tmp_path, capsys, extra, message):
    out = tmp_path / "play"
    image = [] if "--image" in extra else ["--image", str(first_png)]
    rc = main(["play", "--checkpoint", str(weights_dir), *image, *extra, "--output_dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_ctrl_c_keeps_the_finished_steps_consistent(weights_dir, first_png, tmp_path, capsys, monkeypatch):
    from camworld.play import PlaySession

    real_step, calls = PlaySession.step, []

    def step_then_interrupt(self, keys):
        calls.append(keys)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, keys)

    monkeypatch.setattr(PlaySession, "step", step_then_interrupt)
    out = tmp_path / "play"
    rc = main(["play", "--checkpoint", str(weights_dir), "--image", str(first_png), "--actions", "w,dw,a,a",
               "--step", "1", "--output_dir", str(out)])
    assert rc == 130
    info = json.loads((out / "play.json").read_text())
    assert info["action_string"] == "w-12,dw-12" and info["num_frames"] == 25
    assert read_video(out / "video.mp4").shape[0] == 25 and np.load(out / "c2w.npy").shape == (25, 4, 4)
    assert not (out / "video.streaming.mp4").exists()


def test_live_keys_are_the_letters_typed_since_the_last_step():
    import os
    import signal

    from camworld.cli.live_keys import keys_from_presses, live_steps

    assert keys_from_presses("wwwddd") == "dw" and keys_from_presses("W") == "w"
    assert keys_from_presses("  ") == "none" and keys_from_presses("xz") == "" and keys_from_presses("wq") is None
    def hung(*_):
        raise TimeoutError("live_steps blocked on input that was already typed")

    master, slave = os.openpty()
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with os.fdopen(slave, "rb", buffering=0) as terminal:
            os.write(master, b"wwwd")
            steps = live_steps(terminal)
            assert next(steps) == "dw"
            os.write(master, b"x.")  # x is no step; "." is a step with no key
            assert next(steps) == "none"
            os.write(master, b"q")
            assert list(steps) == []
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.close(master)


def test_live_needs_a_terminal(weights_dir, first_png, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("w\n"))
    rc = main(["play", "--checkpoint", str(weights_dir), "--image", str(first_png), "--live",
               "--output_dir", str(tmp_path / "play")])
    assert rc == 2 and "not one" in capsys.readouterr().err


def test_a_failing_step_leaves_nothing_behind(weights_dir, first_png, tmp_path, monkeypatch):
    from camworld.play import PlaySession

    real_step, calls = PlaySession.step, []

    def step_then_fail(self, keys):
        calls.append(keys)
        if len(calls) == 2:
            raise RuntimeError("the machine ran out of memory")
        return real_step(self, keys)

    monkeypatch.setattr(PlaySession, "step", step_then_fail)
    out = tmp_path / "play"
    with pytest.raises(RuntimeError, match="memory"):
        main(["play", "--checkpoint", str(weights_dir), "--image", str(first_png), "--actions", "w,dw",
              "--step", "1", "--output_dir", str(out)])
    assert list(out.iterdir()) == []
