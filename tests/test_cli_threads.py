"""`--threads` below 1 is a one-line error with exit code 2 in every command that takes it, before any work."""

from __future__ import annotations

import pytest

from camworld.cli import main
from camworld.cli.threads import set_threads


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--preset", "tiny", "--stage", "1", "--data", "NOWHERE", "--tokenizer", "NOWHERE", "--out", "OUT",
         "--threads", "0"],
        ["vae", "train", "--out", "OUT", "--steps", "1", "--threads", "0"],
        ["vae", "eval", "--checkpoint", "NOWHERE", "--threads", "-1"],
        ["bench", "--threads", "0", "--out", "OUT"],
        ["generate", "--action", "w-4", "--threads", "0", "--output_dir", "OUT"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_bad_thread_count_is_a_one_line_error(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--threads must be >= 1" in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_set_threads_sets_torch_threads():
    import torch

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)  # leaves the current setting
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
