"""Tight geometry relaxation before a vibrational analysis (eV, Angstrom).

An ASE optimiser (BFGS by default) brings the largest atomic force below
``newton_switch``; then Newton steps with the model's exact Hessian,

    dx = -B (B^T H B)^+ B^T g,   g = dE/dR = -F,

where B is an orthonormal basis of the vibrational subspace (the complement of the
rigid translations and rotations, or the free coordinates when atoms are fixed with
``FixAtoms``) and ^+ the pseudo-inverse, converge quadratically to ``fmax``. A Newton
step is only taken where B^T H B is positive definite (near a minimum) and is halved
until the largest force decreases; otherwise the optimiser finishes the job. With
``FixAtoms`` only the Hessian rows of the free atoms are computed (B has no component
on the fixed ones), so a slab with most atoms frozen costs only its free rows.

:func:`stationarity_warning` is the check that the analyses run before trusting a
geometry: the largest force (and, for a crystal, the residual stress) against a
threshold, with the message that names both and the option that fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.constraints import FixAtoms
from ase.optimize import BFGS
from ase.units import GPa
from scipy.linalg import null_space

from mlip.data.selection import coordinates, selected_atoms

#: largest force (eV/A) below which a geometry counts as stationary for the warnings
STATIONARY_FMAX = 1e-3
#: largest residual stress component (GPa) below which a cell counts as relaxed
STATIONARY_STRESS_GPA = 0.1


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
        step = newton_step(_free_hessian(atoms), -atoms.get_forces(), basis)
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


def _free_hessian(atoms) -> np.ndarray:  # noqa: ANN001 (ase.Atoms)
    """(3N, 3N) Hessian with only the rows of the atoms FixAtoms leaves free filled in
    (the calculator computes just those; the Newton step never reads the others)."""
    n = len(atoms)
    free = selected_atoms(atoms)
    if len(free) == n:
        return atoms.calc.get_hessian(atoms)
    hessian = np.zeros((3 * n, 3 * n))
    hessian[coordinates(free)] = atoms.calc.get_hessian(atoms, indices=free)
    return hessian


def stationarity_warning(
    atoms,  # noqa: ANN001 (ase.Atoms with a calculator)
    fmax: float = STATIONARY_FMAX,
    max_stress_gpa: float | None = None,
    fix: str = "--optimize",
    indices=None,  # noqa: ANN001 (ints)
) -> str | None:
    """None at a stationary point of the calculator, else a one-line warning.

    Stationary: the largest force on the analysed atoms (``indices``, or those free of
    ``FixAtoms``) below ``fmax`` (eV/A) and, if ``max_stress_gpa`` is given (periodic
    cells), every stress component below it (GPa). The message names the worst atom,
    the values and thresholds and ``fix`` (the option that relaxes first), since
    harmonic frequencies away from a minimum are not those of the minimum.
    """
    problems = []
    forces = atoms.get_forces()  # constraint-adjusted: fixed atoms carry none
    free = selected_atoms(atoms, indices)
    norms = np.linalg.norm(forces[free], axis=1)
    worst = int(np.argmax(norms))
    if norms[worst] >= fmax:
        problems.append(
            f"largest force {norms[worst]:.2e} eV/A on atom {int(free[worst])} "
            f"(threshold {fmax:g} eV/A)"
        )
    if max_stress_gpa is not None:
        stress = np.abs(atoms.get_stress()) / GPa
        if stress.max() >= max_stress_gpa:
            problems.append(
                f"residual stress {stress.max():.3g} GPa (threshold {max_stress_gpa:g} GPa)"
            )
    if not problems:
        return None
    return (
        f"the structure is not at a stationary point of the model: {'; '.join(problems)}; "
        f"the harmonic frequencies are not those of a minimum (run with {fix})"
    )


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


def relax_cell(
    atoms,  # noqa: ANN001 (periodic ase.Atoms, modified in place)
    fmax: float = 1e-3,
    steps: int = 500,
    optimizer=BFGS,  # noqa: ANN001 (an ase.optimize.Optimizer class)
    logfile: str | None = None,
) -> RelaxResult:
    """Relax positions and cell together (ASE's ``FrechetCellFilter`` + ``optimizer``).

    Converged when every generalised force of the filter (atomic forces, eV/A, and the
    stress times the volume per atom, eV) is below ``fmax``; ``steps`` bounds the
    optimiser. The calculator must give the stress (a periodic 3D cell).
    """
    from ase.filters import FrechetCellFilter

    if fmax <= 0:
        raise ValueError(f"fmax must be > 0 eV/A, got {fmax}")
    if atoms.calc is None:
        raise ValueError("relax_cell needs a calculator attached to atoms")
    opt = optimizer(FrechetCellFilter(atoms), logfile=logfile)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    return RelaxResult(
        converged=converged,
        fmax=max_force(atoms),
        energy=float(atoms.get_potential_energy()),
        optimizer_steps=int(opt.nsteps),
        newton_steps=0,
        note=f"cell and positions ({optimizer.__name__} on FrechetCellFilter)",
    )
