"""Training tests run torch single-threaded: their ops are tiny, and on a shared 2-core machine an OpenMP pool
of 2 threads makes each one wait for a busy core (measured ~40x slower per step under load)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
