"""The training loop on a CUDA device: WorldDiT through the world objective gives the CPU's losses, and a run killed
and resumed on the GPU continues where it stopped. Marked `gpu`; skipped without CUDA."""

import dataclasses

import pytest
import torch
from test_world_training import latent_clips, model_cfg, objective

from camworld.models.dit import WorldDiT
from camworld.presets import tiny
from camworld.train.dist import DistInfo
from camworld.train.loop import latest_checkpoint, train

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("exact_cuda_float32")]


class _Killed(Exception):
    pass


def _run(tmp_path, name, device, steps=6, **kw):
    torch.manual_seed(0)
    model = WorldDiT(model_cfg())
    cfg = dataclasses.replace(tiny().train, lr=2e-3, batch_size=4, steps=steps, checkpoint_every=3, bf16=False)
    return train(model, objective(camera=True, causal=True), latent_clips(8), cfg, tmp_path / name,
                 info=DistInfo(device=torch.device(device)), progress=False, **kw)


def test_cuda_training_gives_the_cpu_losses(tmp_path):
    cpu = [r["loss"] for r in _run(tmp_path, "cpu", "cpu")]
    gpu = [r["loss"] for r in _run(tmp_path, "gpu", "cuda")]
    torch.testing.assert_close(torch.tensor(gpu), torch.tensor(cpu), atol=1e-4, rtol=1e-4)


def test_cuda_kill_and_resume_continues_the_run(tmp_path):
    full = [r["loss"] for r in _run(tmp_path, "a", "cuda")]

    def kill(record):
        if record["step"] == 5:
            raise _Killed

    with pytest.raises(_Killed):
        _run(tmp_path, "b", "cuda", on_step=kill)
    resumed = _run(tmp_path, "b", "cuda", resume_from=latest_checkpoint(tmp_path / "b"))
    assert [r["step"] for r in resumed] == [4, 5, 6]
    torch.testing.assert_close(torch.tensor([r["loss"] for r in resumed]), torch.tensor(full[3:]),
                               atol=1e-5, rtol=1e-5)
