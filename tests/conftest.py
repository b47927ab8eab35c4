from __future__ import annotations

import pytest
import torch


def pytest_configure(config):
    # One intra-op thread: the tests' tensors are small (tens to a few hundred envs), where a second OpenMP thread
    # buys nothing and, on a 2-core machine shared with the DDS tests' processes (or a second xdist worker), its
    # spin-waits cost up to 10x (tests/policies/test_pid.py's 256-env rpm hover: 37 s on two threads, 3.4 s on one,
    # the same RMS to the last digit). Tests that need more threads set them and restore them.
    torch.set_num_threads(1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
