"""Keys held in a terminal, read without Enter, for `camworld play --live`: one step's keys are the letters typed
while the step before it was being made.

A terminal reports key presses, not key releases: holding a key sends it again at the keyboard's repeat rate, and
when a second key joins the first, only the newer one repeats. So the keys of a step are the set of letters that
arrived since the last step ("wwwddd" holds w and d). With nothing typed, play waits for the next key instead of
making steps no one asked for. Space or "." makes a step with no key held; "q" ends the session.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator

from camworld.camera.dsl import ACTION_KEYS

QUIT = "q"
NO_KEY = " ."
GATHER_SECONDS = 0.05  # after a first key, wait this long for the rest of a burst (two keys pressed together)


def keys_from_presses(chars: str) -> str | None:
    """The characters typed since the last step -> that step's held keys ("dw", "none"), "" when none of them is a
    step (nothing to do yet), None to quit."""
    chars = chars.lower()
    if QUIT in chars:
        return None
    held = "".join(sorted(set(chars) & ACTION_KEYS))
    if held:
        return held
    return "none" if set(chars) & set(NO_KEY) else ""


def _read_pending(fd: int, wait: float | None) -> str:
    """Everything typed on `fd` so far, waiting up to `wait` seconds (None: forever) for the first character."""
    chars = ""
    while select.select([fd], [], [], wait)[0]:
        data = os.read(fd, 1024)
        if not data:
            break
        chars += data.decode(errors="ignore")
        wait = 0.0 if chars else wait
    return chars


def live_steps(stream=None) -> Iterator[str]:
    """Held keys, one string per step, from a terminal in cbreak mode (restored on exit); ends on "q" or end of
    input."""
    import termios
    import tty

    fd = (stream or sys.stdin).fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)  # keep keys typed before the session started
    try:
        while True:
            chars = _read_pending(fd, 0.0)
            if not chars:
                chars = _read_pending(fd, None)
                if not chars:
                    return
                chars += _read_pending(fd, GATHER_SECONDS)
            keys = keys_from_presses(chars)
            if keys is None:
                return
            if keys:
                yield keys
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
