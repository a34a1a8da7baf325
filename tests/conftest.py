"""Shared pytest set-up: the test support package on ``sys.path``; one-thread fixture.

Test modules import their helpers from the package ``tests/support`` as
``from support import ...`` (or ``from support.<module> import ...``). This file puts
the ``tests`` folder on ``sys.path`` once, before any test module is imported, so no
test module touches ``sys.path`` itself. That works under every pytest import mode,
and processes spawned by a test (``torch.multiprocessing.spawn``) inherit the entry.
The tests folder is not a package on purpose: test modules keep their short names.
"""

import os
import sys

import pytest
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread (small tensors: more threads only add
    overhead on a shared 2-core CPU), restoring the thread count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
