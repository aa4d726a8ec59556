"""A stand-in for `WorldModel` in the bench tests: it renders the true world along the requested cameras (a perfect
camera follower) and, when wrapped by `camera_blind`, holds the first frame; so the bench runs without the DiT."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from camworld.eval.camera_following import CameraBlind
from camworld.pipeline import GenerationResult


class _StubDiT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = SimpleNamespace(chunk_first=4, chunk_size=3)


class PerfectFollower:
    """`generate` = the true renders of the world whose caption is the prompt, at the requested poses."""

    def __init__(self, worlds, *, refiner: bool = False, image_hw=(72, 128), stride: int = 4):
        self.worlds = {w.caption: w for w in worlds}
        self.image_hw = tuple(image_hw)
        self.stride = stride
        self.has_refiner = self.refiner_by_default = refiner
        self.has_student = False
        self.default_flow_shift = 4.0
        self.default_cfg_scale = 1.0
        self.packaged_ar_schedule = None
        self.dit = _StubDiT()
        self._refiner = _StubDiT()
        self.path = "perfect-follower"
        self.device = "cpu"
        self.calls = []

    def refiner(self):
        return self._refiner

    def generate(self, image, prompt, c2w, K, *, num_frames, steps, cfg_scale, flow_shift, seed, refiner_seed,
                 mode, refiner, student, sigmas, interval_k, segment_frames, segment_color_match,
                 segment_refine_handoff, progress):
        blind = isinstance(self.dit, CameraBlind)
        self.calls.append({"blind": blind, "num_frames": num_frames, "refiner": refiner, "cfg_scale": cfg_scale,
                           "student": student, "sigmas": sigmas, "interval_k": interval_k,
                           "segment_frames": segment_frames, "segment_refine_handoff": segment_refine_handoff})
        poses = np.asarray(c2w[:num_frames], dtype=np.float64)
        if blind:
            frames = np.repeat(image[None], num_frames, axis=0)
        else:
            frames, _ = self.worlds[prompt].render(poses, K[0], *self.image_hw)
        drop = 1 if refiner and self.has_refiner else 0
        return GenerationResult(frames=frames[drop:], c2w=poses[drop:], K=np.asarray(K[drop:num_frames]),
                                first_frame=image, latents=torch.zeros(1), num_frames=num_frames,
                                refined=bool(drop))


@pytest.fixture
def perfect_follower_factory():
    return PerfectFollower
