"""Tight geometry relaxation before a vibrational analysis (eV, Angstrom).

An ASE optimiser (BFGS by default) brings the largest atomic force below
``newton_switch``; then Newton steps with the model's exact Hessian,

    dx = -B (B^T H B)^+ B^T g,   g = dE/dR = -F,

where B is an orthonormal basis of the vibrational subspace (the complement of the
rigid translations and rotations, or the free coordinates when atoms are fixed with
``FixAtoms``) and ^+ the pseudo-inverse, converge quadratically to ``fmax``. A Newton
step is only taken where B^T H B is positive definite (near a minimum) and is halved
until the largest force decreases; otherwise the optimiser finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.constraints import FixAtoms
from ase.optimize import BFGS
from scipy.linalg import null_space


@dataclass
class RelaxResult:
    """Outcome of :func:`relax`: final largest force (eV/A, constraint-adjusted), energy (eV)."""

    converged: bool
    fmax: float
    energy: float
    optimizer_steps: int
    newton_steps: int
    note: str = ""


def max_force(atoms) -> float:  # noqa: ANN001 (ase.Atoms)
    """Largest atomic force norm, eV/A, after constraints."""
    forces = atoms.get_forces()
    return float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0


def relax(
    atoms,  # noqa: ANN001 (ase.Atoms, modified in place)
    calculator=None,  # noqa: ANN001 (ase Calculator with get_hessian for newton=True)
    fmax: float = 1e-4,
    steps: int = 1000,
    newton: bool = True,
    newton_switch: float = 1e-2,
    max_newton: int = 10,
    optimizer=BFGS,  # noqa: ANN001 (an ase.optimize.Optimizer class)
    logfile: str | None = None,
) -> RelaxResult:
    """Relax ``atoms`` in place until the largest force is below ``fmax`` eV/A.

    With ``newton=True`` the optimiser stops at ``max(fmax, newton_switch)`` and up to
    ``max_newton`` Newton steps with ``calculator.get_hessian`` finish (see the module
    docstring); the optimiser takes over again if they do not converge. ``steps``
    bounds the optimiser steps in total.
    """
    if fmax <= 0:
        raise ValueError(f"fmax must be > 0 eV/A, got {fmax}")
    if calculator is not None:
        atoms.calc = calculator
    if atoms.calc is None:
        raise ValueError("relax needs a calculator (none given and none attached to atoms)")
    note = ""
    used = 0
    if newton:
        opt = optimizer(atoms, logfile=logfile)
        opt.run(fmax=max(fmax, newton_switch), steps=steps)
        used = opt.nsteps
    n_newton = 0
    if newton and max_force(atoms) >= fmax:
        if not hasattr(atoms.calc, "get_hessian"):
            raise ValueError("newton=True needs a calculator with get_hessian (MLIPCalculator)")
        n_newton, note = _newton_steps(atoms, fmax, max_newton)
    if max_force(atoms) >= fmax and used < steps:
        opt = optimizer(atoms, logfile=logfile)
        opt.run(fmax=fmax, steps=steps - used)
        used += opt.nsteps
    final = max_force(atoms)
    return RelaxResult(
        converged=final < fmax,
        fmax=final,
        energy=float(atoms.get_potential_energy()),
        optimizer_steps=int(used),
        newton_steps=n_newton,
        note=note,
    )


def _newton_steps(atoms, fmax: float, max_newton: int) -> tuple[int, str]:  # noqa: ANN001
    """Take up to ``max_newton`` damped Newton steps; returns (steps taken, note)."""
    try:
        basis = vibrational_basis(atoms)
    except NotImplementedError as err:
        return 0, str(err)
    for k in range(max_newton):
        current = max_force(atoms)
        if current < fmax:
            return k, ""
        step = newton_step(atoms.calc.get_hessian(atoms), -atoms.get_forces(), basis)
        if step is None:
            return k, "Hessian not positive definite on the vibrational subspace"
        start = atoms.get_positions()
        for _ in range(4):  # halve until the largest force decreases
            atoms.set_positions(start + step.reshape(-1, 3))
            if max_force(atoms) < current:
                break
            step = 0.5 * step
        else:
            atoms.set_positions(start)
            return k, "Newton steps stopped reducing the forces"
        basis = vibrational_basis(atoms)
    return max_newton, ""


def vibrational_basis(atoms, rtol: float = 1e-8) -> np.ndarray:  # noqa: ANN001 (ase.Atoms)
    """Orthonormal basis (3N, n) of the coordinates a Newton step may move.

    The complement, within the free coordinates (``FixAtoms``), of the rigid motions
    that leave the fixed atoms in place: translations and rotations (translations only
    for periodic systems) when nothing is fixed, rotations about the fixed atom when one
    is, about the axis through two, none for three or more non-collinear ones. Rigid
    motions of zero norm (rotation about a linear molecule's axis) are dropped.
    """
    n = len(atoms)
    fixed = np.zeros(n, dtype=bool)
    for constraint in atoms.constraints:
        if not isinstance(constraint, FixAtoms):
            raise NotImplementedError(
                f"Newton steps skipped: constraint {type(constraint).__name__} not supported"
            )
        fixed[constraint.index] = True
    centred = atoms.positions - atoms.positions.mean(axis=0)
    candidates = []
    for a in range(3):
        axis = np.eye(3)[a]
        candidates.append(np.tile(axis, (n, 1)).reshape(-1))
        if not atoms.pbc.any():
            candidates.append(np.cross(axis, centred).reshape(-1))
    rigid = np.stack(candidates, axis=1)  # (3N, 3 or 6)
    scale = np.linalg.norm(rigid, 2)
    free = np.repeat(~fixed, 3)
    if fixed.any():  # keep the combinations that leave every fixed atom where it is
        rigid = rigid @ null_space(rigid[~free], rcond=rtol)
    motions = rigid[free]
    if motions.shape[1]:
        u, s, _ = np.linalg.svd(motions, full_matrices=False)
        motions = u[:, s > rtol * scale]
    basis_free = null_space(motions.T) if motions.shape[1] else np.eye(int(free.sum()))
    return np.eye(3 * n)[:, free] @ basis_free


def newton_step(
    hessian: np.ndarray, gradient: np.ndarray, basis: np.ndarray, rcond: float = 1e-10
) -> np.ndarray | None:
    """dx = -B (B^T H B)^+ B^T g (A), or None when B^T H B has a negative eigenvalue.

    ``hessian`` (3N, 3N) eV/A^2, ``gradient`` dE/dR (N, 3) or (3N,) eV/A.
    """
    sub = basis.T @ (0.5 * (hessian + hessian.T)) @ basis
    values, vectors = np.linalg.eigh(sub)
    if len(values) == 0:
        return np.zeros(basis.shape[0])
    if values[0] < -rcond * abs(values[-1]):
        return None
    keep = values > rcond * abs(values[-1])
    g = basis.T @ np.asarray(gradient).reshape(-1)
    coefficients = (vectors[:, keep].T @ g) / values[keep]
    return -basis @ (vectors[:, keep] @ coefficients)
