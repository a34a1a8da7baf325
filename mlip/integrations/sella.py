"""Sella adapter: first-order saddle searches with the model's analytic Hessian.

Sella (https://github.com/zadorlab/sella) follows the lowest Hessian eigenvector uphill
and minimises along the others (restricted-step partitioned rational function
optimisation). Given ``hessian_function`` it starts from, and refreshes with, the exact
Hessian instead of approximating it from gradients (:func:`find_saddle`). Units: eV,
Angstrom.

Sella is an optional dependency (``pip install -e .[ts]``; it pulls in JAX, about
100 MB, which nothing else here needs): :func:`require_sella` turns a missing install
into one clear error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from mlip.errors import MissingDependencyError

INSTALL_HINT = "pip install 'mlip[ts]' (or: pip install sella)"


def require_sella():  # noqa: ANN201 (the sella module)
    """The ``sella`` module, or MissingDependencyError saying how to install it."""
    try:
        import sella
    except ImportError as err:
        raise MissingDependencyError(
            f"saddle searches need Sella, which is not installed ({err}); {INSTALL_HINT}"
        ) from err
    return sella


@dataclass
class SaddleSearch:
    """Outcome of :func:`find_saddle`: converged, optimiser steps, final largest force
    (eV/A) and how many exact Hessians were evaluated."""

    converged: bool
    steps: int
    fmax: float
    hessians: int


def find_saddle(
    atoms: Atoms,
    hessian_function: Callable[[Atoms], np.ndarray] | None,
    fmax: float = 1e-3,
    steps: int = 500,
    trajectory: str | os.PathLike | None = None,
    internal: bool = False,
    hessian_every: int | None = None,
    logfile: str | None = None,
) -> SaddleSearch:
    """Sella (order 1) from ``atoms`` (moved in place) until the largest force < ``fmax``.

    ``hessian_function(atoms)`` returns the (3N, 3N) Hessian in eV/A^2 (None: Sella's
    own iterative estimate); ``hessian_every`` recomputes it every that many steps
    (None: Sella decides when its updated Hessian needs a new diagonalisation);
    ``internal`` uses Sella's redundant internal coordinates (molecules); ``trajectory``
    is an ASE trajectory of the steps (written as they are taken).
    """
    sella = require_sella()
    calls = [0]

    def counted(a: Atoms) -> np.ndarray:
        calls[0] += 1
        return hessian_function(a)

    optimizer = sella.Sella(
        atoms,
        order=1,
        internal=internal,
        hessian_function=None if hessian_function is None else counted,
        diag_every_n=hessian_every,
        trajectory=None if trajectory is None else os.fspath(trajectory),
        logfile=logfile,
    )
    try:
        converged = bool(optimizer.run(fmax=fmax, steps=steps))
    finally:
        optimizer.close()
    forces = atoms.get_forces()
    largest = float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0
    return SaddleSearch(converged, int(optimizer.nsteps), largest, calls[0])
