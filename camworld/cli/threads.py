"""The `--threads` flag of the commands that run torch on the CPU: checked once, the same way everywhere."""

from __future__ import annotations

from camworld.errors import UserError


def check_threads(threads: int | None) -> None:
    """UserError unless `threads` is None (keep torch's default) or >= 1."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")


def set_threads(threads: int | None) -> None:
    """Check `threads`, then give torch that many CPU threads (None: leave torch's default)."""
    import torch

    check_threads(threads)
    if threads is not None:
        torch.set_num_threads(threads)
