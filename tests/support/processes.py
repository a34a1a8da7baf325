"""Python subprocesses of the tests (``train.py``, ``torchrun``, ``mpiexec``), robust to load.

A test must not fail because the machine is busy: a subprocess gets no time limit
but a hang guard (:data:`HANG_GUARD_S`, far above any run seen on a loaded 2-core
machine), and ``torchrun`` starts with ``--standalone``, whose rendezvous takes a free
port from the operating system rather than the fixed default 29500 that another job
(or a second test session) may hold.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence

#: seconds before a subprocess counts as hung (a normal run takes seconds)
HANG_GUARD_S = 1800.0


def run_python(
    args: Sequence[str], cwd: str | os.PathLike, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` (this interpreter) in ``cwd``; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
        timeout=HANG_GUARD_S,
    )


def mpiexec(
    nproc: int,
    args: Sequence[str],
    cwd: str | os.PathLike,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``mpiexec -n NPROC python ARGS`` with the MPI launcher of this interpreter's
    environment (the ``mpich`` wheel's, beside ``python``); output captured as text."""
    launcher = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(launcher):
        launcher = shutil.which("mpiexec") or "mpiexec"
    return subprocess.run(
        [launcher, "-n", str(nproc), sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
        timeout=HANG_GUARD_S,
    )


def torchrun_args(nproc: int, script: str, script_args: Sequence[str]) -> list[str]:
    """Arguments of ``python`` for ``torchrun --standalone --nproc_per_node N SCRIPT ARGS``."""
    return [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
        script, *script_args,
    ]  # fmt: skip
