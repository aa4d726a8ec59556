"""A small monocular metric-depth network: the stand-in for SANA-WM's MoGe-2 metric anchor (sana_wm.md §7.2).

SANA-WM fuses a multi-frame structure with a per-frame *metric* depth from MoGe-2. No pretrained metric-depth
weights can be downloaded here, so camworld trains its own small UNet on the procedural world's ground-truth depth
(`camworld annotate train-depth`, see annotate/train_depth.py) and ships the weights in camworld/assets/depth/.

Focal-length ambiguity: one image does not fix metric depth unless the focal length is known, so the net works in a
canonical camera (the idea of Metric3D): it predicts log(depth · f_c / f), where f is the focal length in pixels of
the network's input image and f_c = CANONICAL_FOCAL; `predict_depth` multiplies back by f / f_c.
The net is its own nn.Module on purpose: annotate/ imports no model code (repository layering).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from camworld.errors import UserError

CANONICAL_FOCAL = 100.0  # pixels of the network input
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "depth"
WEIGHTS_NAME = "depth_net.safetensors"
CONFIG_NAME = "depth_net.json"


@dataclass
class DepthNetConfig:
    """Widths of the four UNet levels and the input size (height, width) the net was trained at."""

    widths: tuple[int, ...] = (24, 48, 96, 128)
    input_hw: tuple[int, int] = (96, 176)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
    )


class DepthNet(nn.Module):
    """UNet: rgb in [0, 1] `[B, 3, H, W]` (H, W multiples of 16) -> canonical log-depth `[B, H, W]`.

    A stride-2 stem puts the first level at half resolution (CPU training cost); the output is upsampled back."""

    def __init__(self, cfg: DepthNetConfig | None = None):
        super().__init__()
        self.cfg = cfg or DepthNetConfig()
        w = self.cfg.widths
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 4, stride=2, padding=1), nn.SiLU())
        self.down = nn.ModuleList([_conv_block(w[0], w[0])] + [_conv_block(w[i], w[i + 1]) for i in range(len(w) - 1)])
        self.up = nn.ModuleList([_conv_block(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1))])
        self.head = nn.Conv2d(w[0], 1, 1)
        # Start near a typical canonical depth (about 10 m) so early training is not spent on the offset.
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, float(np.log(10.0)))
        self.register_buffer("mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = self.stem((rgb - self.mean) / self.std)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return F.interpolate(self.head(x), size=rgb.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def network_input_size(image_hw: tuple[int, int], cfg: DepthNetConfig) -> tuple[int, int]:
    """The input size for an image: about the training pixel count, the image's aspect, multiples of 16."""
    height, width = image_hw
    area = cfg.input_hw[0] * cfg.input_hw[1]
    scale = np.sqrt(area / (height * width))
    return max(16, int(round(height * scale / 16)) * 16), max(16, int(round(width * scale / 16)) * 16)


def to_network_input(frames: np.ndarray, size_hw: tuple[int, int]) -> torch.Tensor:
    """uint8 frames `[F, H, W, 3]` -> float `[F, 3, h, w]` in [0, 1], area-resized to `size_hw`."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    return F.interpolate(x, size=size_hw, mode="area")


@torch.no_grad()
def predict_depth(net: DepthNet, frames: np.ndarray, K: np.ndarray, batch: int = 16) -> np.ndarray:
    """Metric z-depth float32 `[F, H, W]` (metres) of uint8 frames `[F, H, W, 3]` with intrinsics K `[F, 3, 3]`
    (or `[3, 3]`) in pixels of the frames."""
    frames = np.asarray(frames)
    num, height, width = frames.shape[:3]
    K = np.broadcast_to(np.asarray(K, dtype=np.float64), (num, 3, 3))
    size = network_input_size((height, width), net.cfg)
    # Mean of the two focal lengths in network pixels; the depth scales with it (canonical camera, see above).
    focal = 0.5 * (K[:, 0, 0] * size[1] / width + K[:, 1, 1] * size[0] / height)
    net.eval()
    out = []
    for start in range(0, num, batch):
        x = to_network_input(frames[start:start + batch], size)
        log_depth = net(x)[:, None]
        depth = torch.exp(F.interpolate(log_depth, size=(height, width), mode="bilinear", align_corners=False))[:, 0]
        out.append(depth.numpy() * (focal[start:start + batch, None, None] / CANONICAL_FOCAL))
    return np.concatenate(out).astype(np.float32)


def save_depth_net(net: DepthNet, folder: str | Path, info: dict) -> None:
    """Write the weights (safetensors) and a json with the config and `info` (training provenance) to `folder`."""
    from safetensors.torch import save_file

    from camworld.fileio import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp))
        tmp.chmod(0o644)  # the temporary file is created private; shipped weights are meant to be read by all
    with atomic_path(folder / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps({"config": asdict(net.cfg), "canonical_focal": CANONICAL_FOCAL, **info},
                                  indent=1) + "\n")


def load_depth_net(folder: str | Path | None = None) -> DepthNet:
    """The depth net stored in `folder` (default: the shipped weights in camworld/assets/depth/)."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else ASSET_DIR
    weights, config = folder / WEIGHTS_NAME, folder / CONFIG_NAME
    if not weights.is_file() or not config.is_file():
        raise UserError(f"no depth net in {folder} (need {WEIGHTS_NAME} and {CONFIG_NAME}); "
                        "train one with `camworld annotate train-depth` or pass --depth-dir")
    try:
        meta = json.loads(config.read_text())
        cfg = DepthNetConfig(**{k: tuple(v) for k, v in meta["config"].items()})
        net = DepthNet(cfg)
        net.load_state_dict(load_file(str(weights)))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"cannot load the depth net in {folder}: {str(exc).splitlines()[0]}") from None
    return net.eval()
