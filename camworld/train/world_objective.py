"""The adapter from a batch of clips to the flow-matching loss of a `WorldDiT` (sana_wm.md §6.2, §2.6, §3.1).

`WorldModelObjective(model, batch) -> (loss, logs)` is the `loss_fn` of `camworld.train.loop.train`. A batch is a
collated dict with either raw clips or precomputed latents:

    frames      uint8 [B, F, H, W, 3]       encoded by the frozen tokenizer (`encode_video`), or
    latents     float [B, T, h, w, C]       precomputed tokenizer latents, with image_hw [B, 2] (H, W of the video)
    c2w         float [B, F, 4, 4]          raw-frame camera-to-world (relativised here to frame 0)
    intrinsics  float [B, F, 3, 3]          pixels of the H×W video
    caption     list[str]                   encoded by the frozen text encoder, unless text [B, L, D] and
                                            text_mask [B, L] are given
    draw        long [B]                    the clip's draw number (added by the loop): seeds its noise

Cameras become the model's `CameraInputs`: latent-rate poses/intrinsics (raw frame stride·k, intrinsics rescaled to
the latent grid) and the raw-rate packed Plücker map [T, h, w, 6·stride].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from camworld.camera import intrinsics_to_grid, latent_cameras, num_latent_frames, pack_plucker, relativize
from camworld.errors import UserError
from camworld.flow.chunk_noise import sample_chunk_sigma
from camworld.flow.objective import draw_flow_inputs, flow_matching_loss
from camworld.flow.schedule import sample_train_sigma
from camworld.models.dit import CameraInputs
from camworld.ops.chunks import chunk_bounds, rebase_frames
from camworld.train.loop import draw_generator

TextEncodeFn = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]
VideoEncodeFn = Callable[[torch.Tensor], torch.Tensor]


def batch_text(batch: dict, encode_text: TextEncodeFn) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings [B, L, D] float32, mask [B, L] bool): the batch's precomputed `text` / `text_mask`, or its
    captions through the frozen text encoder."""
    if "text" in batch:
        return batch["text"].float(), batch["text_mask"].bool()
    with torch.no_grad():
        emb, mask = encode_text(list(batch["caption"]))
    return emb.float(), mask.bool()


def clip_cameras(c2w: torch.Tensor, K: torch.Tensor, image_hw, grid_hw, stride: int,
                 chunk_plan: tuple[int, int] = (4, 3), rebase_chunks: int | None = None) -> CameraInputs:
    """CameraInputs for a batch from raw-frame poses [B, F, 4, 4] and pixel intrinsics [B, F, 3, 3]. The Plücker
    rays of each chunk of `chunk_plan` (first, size) start from the chunk `rebase_chunks` earlier, as at sampling
    (`ModelConfig.plucker_rebase_chunks`)."""
    bases = rebase_frames(num_latent_frames(c2w.shape[1], stride), *chunk_plan, rebase_chunks)
    c2w_lat, k_lat, plucker = [], [], []
    for b in range(c2w.shape[0]):
        rel = relativize(c2w[b].double().cpu().numpy())
        k_grid = intrinsics_to_grid(K[b].double().cpu().numpy(), tuple(int(x) for x in image_hw[b]), grid_hw)
        cw, kk = latent_cameras(rel, k_grid, stride)
        c2w_lat.append(torch.as_tensor(cw, dtype=torch.float32))
        k_lat.append(torch.as_tensor(kk, dtype=torch.float32))
        plucker.append(pack_plucker(rel, k_grid, stride, grid_hw, bases))
    dev = c2w.device
    return CameraInputs(
        c2w=torch.stack(c2w_lat).to(dev), K=torch.stack(k_lat).to(dev), plucker=torch.stack(plucker).to(dev)
    )


@dataclass
class WorldModelObjective:
    """loss_fn(model, batch) for WorldDiT-like models `model(x, sigma, text, text_mask, camera, causal=...)`.

    encode_video: frozen tokenizer encode (uint8 video [B, F, H, W, 3] -> latents [B, T, h, w, C]); None requires
    precomputed latents. encode_text: captions -> (embeddings [B, L, D], mask [B, L] bool); also gives the empty
    prompt used by text dropout. camera=False trains without camera inputs (stages 1-2). causal=True runs the
    model chunk-causally with SANA-WM's per-chunk noise mixture (stage 4).
    """

    encode_text: TextEncodeFn
    encode_video: VideoEncodeFn | None = None
    seed: int = 3407
    shift: float = 9.95
    image_cond_prob: float = 0.9
    text_dropout: float = 0.1
    cond_degrade_prob: float = 0.0
    cond_noise_frac: float = 0.2
    temporal_stride: int = 4
    camera: bool = True
    causal: bool = False
    chunk_first: int = 4
    chunk_size: int = 3
    plucker_rebase_chunks: int | None = None

    def __post_init__(self):
        self._null: tuple[torch.Tensor, torch.Tensor] | None = None

    def null_text(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The empty-prompt embedding [L, D] and mask [L], computed once."""
        if self._null is None:
            with torch.no_grad():
                emb, mask = self.encode_text([""])
            self._null = (emb[0].float(), mask[0].bool())
        return self._null

    def latents(self, batch: dict) -> torch.Tensor:
        if "latents" in batch:
            return batch["latents"].float()
        if self.encode_video is None:
            raise UserError("the batch has no precomputed latents and no tokenizer was given to encode frames")
        with torch.no_grad(), torch.autocast(batch["frames"].device.type, enabled=False):
            return self.encode_video(batch["frames"]).float()

    def text(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return batch_text(batch, self.encode_text)

    def sigma_fn(self, frames: int) -> Callable[[torch.Generator], torch.Tensor]:
        if self.causal:
            bounds = chunk_bounds(frames, self.chunk_first, self.chunk_size)
            return lambda g: sample_chunk_sigma(bounds, self.shift, g)[0]
        return lambda g: sample_train_sigma(1, frames, self.shift, g)[0]

    def __call__(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        x0 = self.latents(batch)
        b, t, h, w, _ = x0.shape
        text, text_mask = self.text(batch)
        text, text_mask = text.to(x0.device), text_mask.to(x0.device)
        null_text, null_mask = self.null_text()
        camera = None
        if self.camera:
            image_hw = batch["image_hw"] if "image_hw" in batch else [batch["frames"].shape[2:4]] * b
            camera = clip_cameras(batch["c2w"], batch["intrinsics"], image_hw, (h, w), self.temporal_stride,
                                  (self.chunk_first, self.chunk_size), self.plucker_rebase_chunks)
        generators = [draw_generator(self.seed, int(d)) for d in batch["draw"]]
        inputs = draw_flow_inputs(
            (t, h, w, x0.shape[-1]), generators, self.sigma_fn(t),
            image_cond_prob=self.image_cond_prob, text_dropout=self.text_dropout,
            cond_degrade_prob=self.cond_degrade_prob,
        )

        def velocity(x, sigma, txt, mask):
            return model(x, sigma, txt, mask, camera, causal=self.causal)

        loss, logs = flow_matching_loss(velocity, x0, inputs, text, text_mask, null_text, null_mask,
                                        cond_noise_frac=self.cond_noise_frac)
        logs["tokens"] = float(b * t * h * w)
        return loss, logs
