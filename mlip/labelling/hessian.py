"""Hessians of any ASE calculator: its own where it has one, else central differences.

    H_ij = d2E / dR_i dR_j = -dF_j / dR_i
         ~ -(F_j(R + h e_i) - F_j(R - h e_i)) / (2 h),   symmetrised (H + H^T) / 2

for the 3N Cartesian coordinates (atom-major x0 y0 z0 x1 ...), step h in Angstrom, H in
eV/A^2; 6N force evaluations. The error is O(h^2) (h = 0.005 A: far below a model's).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

DEFAULT_FD_STEP = 0.005  # A


def finite_difference_hessian(
    atoms: Atoms, calculator: Calculator, step: float = DEFAULT_FD_STEP
) -> np.ndarray:
    """(3N, 3N) eV/A^2 by central differences of the forces (module docstring)."""
    if not step > 0:
        raise ValueError(f"finite-difference step must be > 0 A, got {step}")
    work = atoms.copy()
    work.calc = calculator
    reference = atoms.positions.copy()
    n = len(atoms)
    hessian = np.zeros((3 * n, 3 * n))
    for i in range(3 * n):
        forces = []
        for sign in (1.0, -1.0):
            positions = reference.copy()
            positions[i // 3, i % 3] += sign * step
            work.positions = positions
            forces.append(work.get_forces().reshape(-1))
        hessian[i] = -(forces[0] - forces[1]) / (2.0 * step)
    return 0.5 * (hessian + hessian.T)


def hessian_of(atoms: Atoms, calculator: Calculator, step: float = DEFAULT_FD_STEP) -> np.ndarray:
    """The calculator's own Hessian (``get_hessian(atoms)``, e.g. MLIPCalculator's exact
    one) when it has one, else :func:`finite_difference_hessian`; (3N, 3N) eV/A^2."""
    own = getattr(calculator, "get_hessian", None)
    if callable(own):
        work = atoms.copy()
        work.calc = calculator
        return np.asarray(own(work), dtype=np.float64).reshape(3 * len(atoms), 3 * len(atoms))
    return finite_difference_hessian(atoms, calculator, step)
