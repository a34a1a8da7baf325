"""Shared pytest set-up: tests import their helpers module directly; one-thread fixture."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread (small tensors: more threads only add
    overhead on a shared 2-core CPU), restoring the thread count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
