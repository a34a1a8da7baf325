"""Evaluation of an energy model on structures, and the E(3) equivariance check (float64)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mlip import derivatives, keys
from mlip.data.graph import Structure, build_batch


def evaluate(
    model: torch.nn.Module, structures: Sequence[Structure], **kwargs: Any
) -> dict[str, torch.Tensor]:
    """:func:`mlip.derivatives.compute` on a batch of ``structures`` (keyword options passed on)."""
    batch = build_batch(list(structures), model.r_max, labels=False)
    return derivatives.compute(model, batch, **kwargs)


def random_orthogonal(seed: int, reflect: bool) -> np.ndarray:
    """A random 3x3 orthogonal matrix, a rotation (det +1) or, with ``reflect``, det -1."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] *= -1
    return q


def transformed(structure: Structure, rotation: np.ndarray, shift: np.ndarray) -> Structure:
    """The structure with positions R -> R Q^T + t and cell rows rotated likewise."""
    return Structure(
        structure.atomic_numbers,
        structure.positions @ rotation.T + shift,
        None if structure.cell is None else structure.cell @ rotation.T,
        structure.pbc,
    )


def assert_equivariant(
    model: torch.nn.Module, structure: Structure, seed: int = 0, tol: float = 1e-10
) -> None:
    """E invariant, F equivariant (F' = F Q^T), stress S' = Q S Q^T, under O(3) x translations."""
    periodic = structure.pbc is not None and bool(np.any(structure.pbc))
    ref = evaluate(model, [structure], stress=periodic)
    for k, reflect in enumerate((False, True)):
        q = random_orthogonal(seed + k, reflect)
        shift = np.random.default_rng(seed + 10 + k).standard_normal(3) * 3.0
        out = evaluate(model, [transformed(structure, q, shift)], stress=periodic)
        qt = torch.as_tensor(q)
        e_ref, e = ref[keys.ENERGY], out[keys.ENERGY]
        assert torch.allclose(e, e_ref, rtol=tol, atol=0), (e - e_ref).abs().max()
        f_expected = ref[keys.FORCES] @ qt.T
        scale = ref[keys.FORCES].abs().max()
        assert (out[keys.FORCES] - f_expected).abs().max() <= tol * scale
        if periodic:
            s_expected = qt @ ref[keys.STRESS][0] @ qt.T
            s_scale = ref[keys.STRESS].abs().max()
            assert (out[keys.STRESS][0] - s_expected).abs().max() <= tol * s_scale


def _displaced(structure: Structure, positions: np.ndarray) -> Structure:
    return Structure(structure.atomic_numbers, positions, structure.cell, structure.pbc)


def finite_difference_forces(
    model: torch.nn.Module, structure: Structure, h: float = 1e-4
) -> np.ndarray:
    """-dE/dR (N, 3) by central differences of the energy with steps of ``h`` A."""
    fd = np.zeros((structure.num_atoms, 3))
    for a in range(structure.num_atoms):
        for x in range(3):
            energies = []
            for sign in (1, -1):
                p = structure.positions.copy()
                p[a, x] += sign * h
                energies.append(evaluate(model, [_displaced(structure, p)])[keys.ENERGY])
            fd[a, x] = -float(energies[0] - energies[1]) / (2 * h)
    return fd


def finite_difference_hessian(
    model: torch.nn.Module, structure: Structure, h: float = 1e-4
) -> np.ndarray:
    """-dF/dR (3N, 3N), row k = coordinate k displaced, by central differences of the
    autograd forces with steps of ``h`` A."""
    dof = 3 * structure.num_atoms
    fd = np.zeros((dof, dof))
    for k in range(dof):
        forces = []
        for sign in (1, -1):
            p = structure.positions.copy().reshape(-1)
            p[k] += sign * h
            moved = _displaced(structure, p.reshape(-1, 3))
            forces.append(evaluate(model, [moved])[keys.FORCES].numpy().reshape(-1))
        fd[k] = -(forces[0] - forces[1]) / (2 * h)
    return fd


def finite_difference_stress(
    model: torch.nn.Module, structure: Structure, h: float = 1e-5
) -> np.ndarray:
    """(1/V) dE/d(eps) (3, 3) by central differences over symmetric strains eps applied
    as R -> R (1 + eps), cell -> cell (1 + eps) (the sign of :mod:`mlip.derivatives`)."""
    volume = abs(np.linalg.det(structure.cell))
    fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                eps = np.zeros((3, 3))
                eps[a, b] += sign * h / 2
                eps[b, a] += sign * h / 2
                deformed = np.eye(3) + eps
                strained = Structure(
                    structure.atomic_numbers,
                    structure.positions @ deformed,
                    structure.cell @ deformed,
                    structure.pbc,
                )
                energies.append(float(evaluate(model, [strained])[keys.ENERGY]))
            fd[a, b] = (energies[0] - energies[1]) / (2 * h) / volume
    return fd
