"""Classifier-free guidance on text, as a model wrapper: v = v_u + s·(v_c − v_u) (sana_wm.md §2.6, §10.4).

The unconditional branch is the empty-prompt embedding ("" encoded, SANA-WM's `null_embed`); everything else, the
cameras included, is duplicated for the two branches, so guidance acts on the text only. Both branches run as one
batch of 2B (unconditional first). The wrapper has WorldDiT's call and streaming signatures, so a sampler never knows
whether it guides: with guidance its stream state holds 2B videos. Scale 1 is the plain conditional model (the
distilled student's "CFG baked in") and costs one branch.
"""

from __future__ import annotations

from typing import Any

import torch

from camworld.errors import UserError
from camworld.samplers.model_api import StreamingModel, VelocityModel


def _duplicate_camera(camera: Any) -> Any:
    if camera is None:
        return None
    return type(camera)(*(torch.cat([t, t]) for t in (camera.c2w, camera.K, camera.plucker)))


class ClassifierFreeGuidance:
    """model guided with `scale` against the empty prompt null_text [L0, D] / null_mask [L0] bool."""

    def __init__(self, model: VelocityModel | StreamingModel, null_text: torch.Tensor, null_mask: torch.Tensor,
                 scale: float):
        if null_text.dim() != 2 or null_mask.shape != null_text.shape[:1]:
            raise UserError(f"empty-prompt embedding must be [L, D] with mask [L], got {list(null_text.shape)}")
        self.model = model
        self.null_text = null_text
        self.null_mask = null_mask.bool()
        self.scale = float(scale)

    @property
    def guided(self) -> bool:
        return self.scale != 1.0

    def _texts(self, text: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[empty prompt × B; text] [2B, L, D] and masks, the shorter of the two padded with masked-out zeros."""
        b, length, _ = text.shape
        null, null_mask = self.null_text.to(text), self.null_mask.to(text_mask.device)
        width = max(length, null.shape[0])

        def pad(t, m):
            extra = width - t.shape[-2]
            return torch.nn.functional.pad(t, (0, 0, 0, extra)), torch.nn.functional.pad(m, (0, extra), value=False)

        null, null_mask = pad(null[None].expand(b, -1, -1), null_mask[None].expand(b, -1))
        text, text_mask = pad(text, text_mask.bool())
        return torch.cat([null, text]), torch.cat([null_mask, text_mask])

    def _combine(self, v: torch.Tensor) -> torch.Tensor:
        v_uncond, v_cond = v.chunk(2)
        return v_uncond + self.scale * (v_cond - v_uncond)

    def __call__(self, x, sigma, text, text_mask, camera=None, **kwargs) -> torch.Tensor:
        if not self.guided:
            return self.model(x, sigma, text, text_mask, camera, **kwargs)
        texts, masks = self._texts(text, text_mask)
        v = self.model(torch.cat([x, x]), torch.cat([sigma, sigma]), texts, masks, _duplicate_camera(camera), **kwargs)
        return self._combine(v)

    def init_state(self, batch: int):
        return self.model.init_state(2 * batch if self.guided else batch)

    def step(self, x_chunk, sigma_chunk, text, text_mask, camera_chunk, state):
        if not self.guided:
            return self.model.step(x_chunk, sigma_chunk, text, text_mask, camera_chunk, state)
        texts, masks = self._texts(text, text_mask)
        v, state = self.model.step(
            torch.cat([x_chunk, x_chunk]), torch.cat([sigma_chunk, sigma_chunk]), texts, masks,
            _duplicate_camera(camera_chunk), state,
        )
        return self._combine(v), state
