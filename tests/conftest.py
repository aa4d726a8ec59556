"""Fixtures shared by every test folder."""

import pytest
import torch


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
