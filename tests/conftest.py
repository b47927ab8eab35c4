from __future__ import annotations

import pytest
import torch


def pytest_configure(config):
    torch.set_num_threads(2)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
