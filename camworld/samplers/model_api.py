"""What the samplers need from a model: WorldDiT's full forward and its streaming `init_state` / `step` pair.

`WorldDiT` and `ClassifierFreeGuidance` both satisfy these protocols; tests use small fakes. Cameras are passed
through untouched except for `camera.frames(start, end)`, which cuts one chunk's cameras (`CameraInputs.frames`).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class VelocityModel(Protocol):
    def __call__(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        camera: Any = None,
        *,
        causal: bool = False,
        windowed: bool = False,
    ) -> torch.Tensor:
        """x [B, T, h, w, C], sigma [B, T] -> v [B, T, h, w, C]."""


class StreamingModel(Protocol):
    def init_state(self, batch: int) -> Any:
        """The state before the first chunk of `batch` videos."""

    def step(
        self,
        x_chunk: torch.Tensor,
        sigma_chunk: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        camera_chunk: Any,
        state: Any,
    ) -> tuple[torch.Tensor, Any]:
        """The next chunk x_chunk [B, n, h, w, C], sigma_chunk [B, n] -> (v_chunk, state after it); `state` is kept."""
