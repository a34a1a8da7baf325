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


# -- no silent skips in CI --------------------------------------------------------------
#: with this environment variable set (.ci/run sets it; CI installs every extra), a
#: skipped test fails the run: a test that cannot run there tests nothing
FAIL_ON_SKIP = "MLIP_FAIL_ON_SKIP"
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _skipped or os.environ.get(FAIL_ON_SKIP, "") in ("", "0"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"{FAIL_ON_SKIP} is set and {len(_skipped)} test(s) skipped:", red=True)
        for line in _skipped:
            reporter.write_line(f"  {line}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
