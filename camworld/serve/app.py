"""The HTTP app of `camworld serve` (FastAPI): interactive play sessions, one-shot generation, and a browser page.

    GET  /                       the play page (static/play.html): hold WASD/IJKL, watch the world move
    GET  /health                 the loaded weights and their resolution
    POST /sessions               start a session (image or world seed, prompt, FOV, seed) -> its id
    POST /sessions/{id}/step     hold keys for one chunk -> the frames (base64 PNG), their poses, the time taken
    GET  /sessions/{id}/video    the session so far as an MP4 (its last 10 minutes, which the server keeps)
    DELETE /sessions/{id}        end it
    POST /generate               `camworld generate` over HTTP: an action string -> an MP4

One model serves every request, and every model call runs on one dedicated thread, one call at a time: two CPU-bound
calls at once only slow each other, and torch's thread pool runs slower when its calls come from different threads
(measured here: a play step took 0.5 s from one thread and 1.3-1.8 s when calls came from two). At most
`max_sessions` sessions are kept; starting one more ends the least recently used. Bad input is HTTP 400 with the
same one-line message the CLI prints, unknown sessions 404.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import tempfile
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, Field

from camworld.camera import action_string_to_c2w
from camworld.errors import UserError
from camworld.pipeline import WorldModel
from camworld.pipeline_inputs import read_image
from camworld.play import PlaySession
from camworld.serve.first_frame import first_frame
from camworld.video import write_mp4

PAGE = Path(__file__).resolve().parent / "static" / "play.html"
MAX_GENERATE_FRAMES = 961
KEPT_FRAMES = 9600  # per session, for /video: 10 min at 16 fps, about 265 MB at 72x128


class SessionRequest(BaseModel):
    world_seed: int = 0
    image_base64: str | None = Field(None, description="an image file (PNG, JPEG, ...) in base64; default: a render "
                                                       "of world_seed")
    prompt: str | None = Field(None, description="default: the world's caption, or none for an image")
    fov: float = 70.0
    seed: int = 42
    student: bool = False


class StepRequest(BaseModel):
    keys: str = Field("", description='held keys of wasdijkl, e.g. "w" or "dw"; "" or "none" for none')


class GenerateRequest(BaseModel):
    action: str = Field(..., description='action string, e.g. "w-100,dw-60"')
    num_frames: int | None = Field(None, ge=1, le=MAX_GENERATE_FRAMES)
    world_seed: int = 0
    image_base64: str | None = None
    prompt: str | None = None
    fov: float = 70.0
    seed: int = 42
    mode: Literal["ar", "bidirectional"] = "ar"


def decode_image(data: str) -> np.ndarray:
    """A base64 image file -> uint8 RGB [H, W, 3], read as `camworld generate --image` reads a file
    (`read_image`); anything else is a UserError."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise UserError("image_base64 is not base64") from None
    return read_image(io.BytesIO(raw), "image_base64")


def png_base64(frame: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class _Sessions:
    """Play sessions by id, least recently used first, each with the frames it has made."""

    def __init__(self, limit: int):
        self.limit = limit
        self.items: OrderedDict[str, tuple[PlaySession, list[np.ndarray]]] = OrderedDict()

    def add(self, session: PlaySession) -> str:
        while len(self.items) >= self.limit:
            self.items.popitem(last=False)
        key = uuid.uuid4().hex
        self.items[key] = (session, [])
        return key

    def get(self, key: str) -> tuple[PlaySession, list[np.ndarray]]:
        if key not in self.items:
            raise HTTPException(status_code=404, detail=f"no session {key} (ended, or evicted by newer ones)")
        self.items.move_to_end(key)
        return self.items[key]


def make_app(model: WorldModel, *, max_sessions: int = 4, fps: int = 16) -> FastAPI:
    """The app serving `model`; see the module docstring."""
    if max_sessions < 1:
        raise UserError(f"max_sessions must be >= 1, got {max_sessions}")
    app = FastAPI(title="camworld", description="A camera-controlled world model (SANA-WM) you can walk through.")
    sessions = _Sessions(max_sessions)
    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camworld-model")

    async def on_model_thread(fn, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(model_thread, lambda: fn(*args, **kwargs))

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc).splitlines()[0]})

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "weights": str(model.path), "image_hw": list(model.image_hw), "fps": fps,
                "sessions": len(sessions.items), "max_sessions": max_sessions}

    @app.post("/sessions")
    async def start(request: SessionRequest) -> dict:
        image = None if request.image_base64 is None else decode_image(request.image_base64)
        start = await on_model_thread(first_frame, image, request.world_seed, request.fov, model.image_hw)
        prompt = start.default_prompt if request.prompt is None else request.prompt
        session = await on_model_thread(PlaySession, model, start.image, prompt, start.K, seed=request.seed,
                                        student=True if request.student else None)
        return {"session": sessions.add(session), "prompt": prompt, "image_hw": list(model.image_hw), "fps": fps,
                "first_frame": png_base64(session.first_frame), "frames_next_step": session.next_step_frames()}

    @app.post("/sessions/{key}/step")
    async def step(key: str, request: StepRequest) -> dict:
        session, frames = sessions.get(key)
        made = await on_model_thread(session.step, request.keys)
        frames.extend(made.frames)
        del frames[:-KEPT_FRAMES]
        return {"keys": made.keys, "first_pose": made.first_pose, "seconds": round(made.seconds, 3),
                "frames": [png_base64(frame) for frame in made.frames], "c2w": made.c2w.tolist(),
                "action_string": session.action_string, "frames_next_step": session.next_step_frames()}

    @app.get("/sessions/{key}/video")
    def video(key: str) -> Response:
        _, frames = sessions.get(key)
        if not frames:
            raise HTTPException(status_code=409, detail="the session has made no frames yet")
        return Response(_mp4_bytes(np.stack(frames), fps), media_type="video/mp4")

    @app.delete("/sessions/{key}")
    def end(key: str) -> dict:
        sessions.get(key)
        del sessions.items[key]
        return {"ended": key}

    @app.post("/generate")
    async def generate(request: GenerateRequest) -> Response:
        c2w = action_string_to_c2w(request.action)
        image = None if request.image_base64 is None else decode_image(request.image_base64)
        start = await on_model_thread(first_frame, image, request.world_seed, request.fov, model.image_hw)
        prompt = start.default_prompt if request.prompt is None else request.prompt
        frames = min(request.num_frames or MAX_GENERATE_FRAMES, len(c2w))
        result = await on_model_thread(model.generate, start.image, prompt, c2w,
                                       np.repeat(start.K[None], len(c2w), axis=0), num_frames=frames,
                                       seed=request.seed, mode=request.mode, progress=False)
        return Response(_mp4_bytes(result.frames, fps), media_type="video/mp4",
                        headers={"X-Camworld-Frames": str(len(result.frames))})

    return app


def _mp4_bytes(frames: np.ndarray, fps: int) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        write_mp4(path, frames, fps=fps)
        return path.read_bytes()
