"""Video and image I/O: H.264 MP4 writing (atomic, or streaming as fragmented MP4), decoding, image folders,
contact sheets and PNGs.

Frames are always uint8 RGB `[F, H, W, 3]`. Encoding is PyAV/libx264, yuv420p, CRF 18 by default at 16 fps, the
rate SANA-WM generates and evaluates at (sana_wm.md §8.1); feasibility_cpu.md §6 measured this path.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from camworld.errors import UserError
from camworld.fileio import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# A fragment per frame (not only per keyframe) so a reader sees every frame but the last one while the file
# grows; empty_moov puts the header first so the file is valid from the first fragment on.
_STREAMING_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+frag_every_frame"


def _as_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise UserError(f"video frames must be uint8 [F, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    return frames


class Mp4Writer:
    """Append RGB frames to an H.264 MP4, one call at a time.

    streaming=False: frames go to a temporary file renamed onto `path` by `close()`, so `path` only ever holds a
        complete video; on an exception inside the `with` block nothing is left behind.
    streaming=True: frames go straight to `path` as a fragmented MP4 with one fragment per frame and no encoder
        lookahead (x264 `zerolatency`), so the file decodes while it grows (all frames but the newest one).
        On an exception the file written so far stays, and is a valid shorter video.
    """

    def __init__(self, path: str | os.PathLike, fps: int = 16, crf: int = 18, streaming: bool = False):
        self.path = Path(path)
        self.fps = int(fps)
        self.crf = int(crf)
        self.streaming = streaming
        self.num_frames = 0
        self._atomic = None
        self._container = None
        self._stream = None
        if fps <= 0:
            raise UserError(f"fps must be positive, got {fps}")
        if self.path.suffix.lower() != ".mp4":
            raise UserError(f"video output must end in .mp4: {self.path}")
        if streaming:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._target = self.path
        else:
            self._atomic = atomic_path(self.path)
            self._target = self._atomic.__enter__()

    def _open(self, height: int, width: int) -> None:
        if height % 2 or width % 2:
            raise UserError(f"H.264 (yuv420p) needs an even frame size, got {height}x{width}")
        options = {"movflags": _STREAMING_MOVFLAGS, "flush_packets": "1"} if self.streaming else {}
        self._container = av.open(str(self._target), mode="w", format="mp4", options=options)
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        codec_options = {"crf": str(self.crf)}
        if self.streaming:
            codec_options["tune"] = "zerolatency"
            stream.codec_context.gop_size = self.fps
        stream.options = codec_options
        self._stream = stream

    def write(self, frames) -> None:
        """Append frames, uint8 `[F, H, W, 3]` or one `[H, W, 3]`."""
        frames = _as_frames(frames)
        if self._container is None:
            self._open(frames.shape[1], frames.shape[2])
        if (frames.shape[1], frames.shape[2]) != (self._stream.height, self._stream.width):
            raise UserError(
                f"frame size {frames.shape[1]}x{frames.shape[2]} differs from the video's "
                f"{self._stream.height}x{self._stream.width}"
            )
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
            self.num_frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (renaming it into place unless streaming)."""
        if self._container is None and self._atomic is None:
            return
        if self.num_frames == 0:
            self.abort()
            raise UserError(f"no frames were written to {self.path}")
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Stop without finishing: the temporary file is removed (atomic mode) or left as written (streaming)."""
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError, ValueError):
                self._container.close()
            self._container = None
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def discard(self) -> None:
        """Stop and leave nothing behind, also in streaming mode (where `abort` keeps the shorter video)."""
        self.abort()
        if self.streaming:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_mp4(path: str | os.PathLike, frames, fps: int = 16, crf: int = 18) -> None:
    """Write uint8 `[F, H, W, 3]` frames to an H.264 MP4 atomically."""
    frames = _as_frames(frames)
    with Mp4Writer(path, fps=fps, crf=crf) as writer:
        writer.write(frames)


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode every frame of a video file to uint8 `[F, H, W, 3]` RGB."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video not found: {path}")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"no video stream in {path}")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as exc:
        raise UserError(f"cannot read video {path}: {str(exc).splitlines()[0]}") from None
    if not frames:
        raise UserError(f"cannot read video {path}: no decodable frames")
    return np.stack(frames)


def video_fps(path: str | os.PathLike) -> float:
    """The average frame rate a video file declares."""
    try:
        with av.open(str(path)) as container:
            return float(container.streams.video[0].average_rate)
    except (av.error.FFmpegError, IndexError, TypeError) as exc:
        raise UserError(f"cannot read the frame rate of {path}: {exc}") from None


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def read_frames(folder: str | os.PathLike) -> np.ndarray:
    """Load a folder of images (natural name order: 2 before 10) as uint8 `[F, H, W, 3]` RGB."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder}")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    files.sort(key=lambda p: _natural_key(p.name))
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    frames = []
    for file in files:
        try:
            with Image.open(file) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except OSError as exc:
            raise UserError(f"cannot read image {file}: {exc}") from None
        if frames[-1].shape != frames[0].shape:
            raise UserError(f"image {file} is {frames[-1].shape[:2]}, the first image is {frames[0].shape[:2]}")
    return np.stack(frames)


def _wrap(text: str, draw: ImageDraw.ImageDraw, font, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def contact_sheet(frames, cols: int = 4, labels: list[str] | None = None, pad: int = 4) -> np.ndarray:
    """Tile frames `[N, H, W, 3]` into one uint8 image, `cols` per row, each with its (word-wrapped) label below."""
    frames = _as_frames(frames)
    n, h, w, _ = frames.shape
    if labels is not None and len(labels) != n:
        raise UserError(f"contact sheet: {len(labels)} labels for {n} frames")
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = int(probe.textbbox((0, 0), "Ag", font=font)[3]) + 2
    wrapped = [_wrap(str(label), probe, font, w) for label in labels] if labels is not None else None
    label_h = max(len(lines) for lines in wrapped) * line_h + pad if wrapped else 0
    cell_h, cell_w = h + label_h + pad, w + pad
    sheet = Image.new("RGB", (cols * cell_w + pad, rows * cell_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        x, y = pad + (i % cols) * cell_w, pad + (i // cols) * cell_h
        sheet.paste(Image.fromarray(frames[i]), (x, y))
        for j, line in enumerate(wrapped[i] if wrapped else []):
            draw.text((x, y + h + 2 + j * line_h), line, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)


def save_png(path: str | os.PathLike, image) -> None:
    """Write a uint8 `[H, W, 3]` (or `[H, W]`) image as PNG atomically."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise UserError(f"PNG image must be uint8 [H, W(, C)], got {image.dtype} {list(image.shape)}")
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
