import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, deselect with -m 'not slow'")
    config.addinivalue_line("markers", "cuda: needs a CUDA device, skipped without one")
