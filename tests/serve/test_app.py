"""`camworld serve`'s app on random tiny weights: a play session over HTTP gives the frames `PlaySession` gives,
its video, one-shot generation, and bad input as 400 / 404 with a one-line message."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra: pip install 'camworld[serve]'")
pytest.importorskip("httpx", reason="FastAPI's test client needs httpx")

from fastapi.testclient import TestClient  # noqa: E402

from camworld.play import PlaySession  # noqa: E402
from camworld.serve.app import make_app  # noqa: E402
from camworld.serve.first_frame import first_frame  # noqa: E402
from camworld.video import read_video  # noqa: E402


def _png(array) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _frame(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.fixture(scope="module")
def client(world_model):
    return TestClient(make_app(world_model, max_sessions=2))


def test_session_over_http_equals_a_play_session(client, world_model, tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (40, 90, 3), dtype=np.uint8)
    reply = client.post("/sessions", json={"image_base64": _png(image), "prompt": "a hill", "seed": 7})
    assert reply.status_code == 200, reply.text
    key = reply.json()["session"]
    assert reply.json()["frames_next_step"] == 12 and reply.json()["image_hw"] == list(world_model.image_hw)
    steps = [client.post(f"/sessions/{key}/step", json={"keys": keys}).json() for keys in ("w", "dw")]
    served = np.stack([_frame(f) for step in steps for f in step["frames"]])

    start = first_frame(image, 0, 70.0, world_model.image_hw)
    session = PlaySession(world_model, start.image, "a hill", start.K, seed=7)
    local = np.concatenate([session.step(keys).frames for keys in ("w", "dw")])
    np.testing.assert_array_equal(served, local)
    assert steps[1]["first_pose"] == 13 and steps[1]["action_string"] == "w-12,dw-12"
    np.testing.assert_allclose(steps[1]["c2w"], session.c2w[13:], atol=1e-6)

    video = client.get(f"/sessions/{key}/video")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "v.mp4").write_bytes(video.content)
    assert read_video(tmp_path / "v.mp4").shape == (25, *world_model.image_hw, 3)
    assert client.delete(f"/sessions/{key}").status_code == 200
    assert client.post(f"/sessions/{key}/step", json={"keys": "w"}).status_code == 404


def test_bad_input_is_a_one_line_400_and_old_sessions_are_evicted(client):
    image = _png(np.zeros((20, 20, 3), dtype=np.uint8))
    bad = client.post("/sessions", json={"image_base64": "not an image"})
    assert bad.status_code == 400 and "image_base64" in bad.json()["detail"]
    assert client.post("/sessions", json={"image_base64": image, "fov": 200}).status_code == 400
    keys = [client.post("/sessions", json={"image_base64": image}).json()["session"] for _ in range(3)]
    assert client.get("/health").json()["sessions"] == 2
    assert client.post(f"/sessions/{keys[0]}/step", json={"keys": "w"}).status_code == 404  # evicted
    reply = client.post(f"/sessions/{keys[2]}/step", json={"keys": "wq"})
    assert reply.status_code == 400 and "unknown keys" in reply.json()["detail"]
    assert client.get(f"/sessions/{keys[2]}/video").status_code == 409


def test_generate_returns_the_video_of_the_action_string(client, world_model, tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    reply = client.post("/generate", json={"action": "w-8,a-8", "image_base64": _png(image), "mode": "ar",
                                           "prompt": "a lake"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-camworld-frames"] == "16"  # 17 poses; the random weights' refiner drops frame 0
    (tmp_path / "g.mp4").write_bytes(reply.content)
    assert read_video(tmp_path / "g.mp4").shape[0] == 16
    bad = client.post("/generate", json={"action": "w-8,x-2", "image_base64": _png(image)})
    assert bad.status_code == 400 and "unknown keys" in bad.json()["detail"]
    assert client.get("/").headers["content-type"].startswith("text/html")


def test_an_upload_is_read_as_generate_reads_the_same_file(tmp_path):
    from camworld.errors import UserError
    from camworld.pipeline_inputs import load_image
    from camworld.serve.app import decode_image

    image = Image.fromarray(np.arange(24, dtype=np.uint8).reshape(2, 4, 3))
    exif = image.getexif()
    exif[0x0112] = 6  # a phone photo: shown rotated 90° clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    data = buffer.getvalue()
    (tmp_path / "photo.png").write_bytes(data)
    upload = decode_image(base64.b64encode(data).decode())
    assert upload.shape == (4, 2, 3)
    np.testing.assert_array_equal(upload, load_image(tmp_path / "photo.png"))
    with pytest.raises(UserError, match="^image_base64 is not base64$"):
        decode_image("not base64!")
    with pytest.raises(UserError, match=r"^image_base64: not a readable image \("):
        decode_image(base64.b64encode(data[:40]).decode())
