"""The play page's JavaScript against a live server: node runs the page's script with the few browser objects it uses
stubbed (tests/serve/play_page_harness.js), starts a session, holds "w" for a step and plays its frames."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra: pip install 'camworld[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra: pip install 'camworld[serve]'")
if shutil.which("node") is None:
    pytest.skip("node runs the page's script", allow_module_level=True)

from camworld.serve.app import make_app  # noqa: E402

PAGE = Path(__file__).parents[2] / "camworld" / "serve" / "static" / "play.html"
HARNESS = Path(__file__).with_name("play_page_harness.js")


@pytest.fixture
def server_url(world_model):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(world_model), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_the_page_starts_a_session_steps_while_a_key_is_held_and_plays_the_frames(server_url, world_model):
    run = subprocess.run(["node", str(HARNESS), str(PAGE), server_url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    h, w = world_model.image_hw
    assert shown["canvas"] == [4 * w, 4 * h]
    assert shown["stepStatus"].startswith("keys w, poses 0-12, ")  # the first step holds frame 0 too
    assert shown["first"] == {"src": "data:image/png;base64,", "w": 4 * w, "h": 4 * h, "smooth": False}
    assert shown["afterStart"] == 1 and shown["draws"] >= 14  # the first frame, then at least the step's 13
    assert shown["video"].endswith("/video") and "/sessions/" in shown["video"]
    assert shown["steps"] == shown["stepsAfterRelease"] >= 1  # no request once the key is up
