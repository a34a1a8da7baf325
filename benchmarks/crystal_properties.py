"""Crystal properties from any ASE calculator, for ``benchmarks/materials.py``.

Each function takes the structure and an ASE calculator (an mlip model through
:class:`mlip.calculator.MLIPCalculator`, EMT, ...) and does the same thing for a model
and for its reference, so that their difference is the model's error alone. Built on
ASE's tools (``ase.eos``, ``ase.build.surface``, ``ase.optimize.BFGS``,
``ase.filters.FrechetCellFilter`` through :func:`mlip.vib.relax_cell`) and phonopy
through :mod:`mlip.integrations.phonopy`.

Units: eV, Angstrom, GPa (moduli), J/m^2 (surface energies), THz (phonons).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.units import GPa, J, m
from common import force_mae_by_distance, force_mae_by_range

FMAX = 1e-3  # eV/A: positions relaxed to this largest force
STEPS = 500  # optimiser steps at most
EV_PER_A2_IN_J_PER_M2 = float(m**2 / J)  # 1 eV/A^2 = 16.02 J/m^2


def attach(atoms: Atoms, calculator: Any) -> Atoms:
    """A copy of ``atoms`` with ``calculator`` (any constraint dropped)."""
    out = atoms.copy()
    out.set_constraint()
    out.calc = calculator
    return out


def relax_positions(atoms: Atoms, fmax: float = FMAX, steps: int = STEPS) -> float:
    """Relax the positions (cell fixed) of ``atoms`` (calculator attached) in place with
    BFGS; returns the energy, eV. A perfect lattice (no force) takes no step."""
    from ase.optimize import BFGS

    if np.abs(atoms.get_forces()).max() > fmax:
        BFGS(atoms, logfile=None).run(fmax=fmax, steps=steps)
    return float(atoms.get_potential_energy())


def relaxed_crystal(atoms: Atoms, calculator: Any, fmax: float = FMAX) -> Atoms:
    """``atoms`` with cell and positions relaxed under ``calculator`` (ASE's
    FrechetCellFilter + BFGS via :func:`mlip.vib.relax_cell`)."""
    from mlip.vib import relax_cell

    out = attach(atoms, calculator)
    relax_cell(out, fmax=fmax, steps=STEPS)
    return out


def scaled(atoms: Atoms, matrix: np.ndarray) -> Atoms:
    """A copy with the cell deformed by ``matrix`` (cell rows times it), atoms along."""
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ matrix, scale_atoms=True)
    return out


def equation_of_state(
    crystal: Atoms, calculator: Any, strain: float = 0.02, points: int = 11
) -> dict[str, float]:
    """Birch-Murnaghan fit (``ase.eos``) of E(V) over isotropic linear strains of
    -strain..+strain around ``crystal`` (relaxed), positions relaxed at each volume.

    Returns the volume per atom v0 (A^3), the energy per atom e0 (eV), the bulk modulus
    (GPa) and the fcc-equivalent lattice constant (4 v0)^(1/3) (A; the lattice constant
    of an fcc crystal or of a cubic 4-atom compound such as L1_2).
    """
    from ase.eos import EquationOfState

    volumes, energies = [], []
    for s in np.linspace(-strain, strain, points):
        atoms = attach(scaled(crystal, (1.0 + s) * np.eye(3)), calculator)
        energies.append(relax_positions(atoms) / len(atoms))
        volumes.append(atoms.get_volume() / len(atoms))
    v0, e0, b = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    return {
        "volume_per_atom": float(v0),
        "energy_per_atom": float(e0),
        "bulk_modulus": float(b / GPa),
        "lattice_constant": float((4.0 * v0) ** (1.0 / 3.0)),
    }


def voigt_strain(component: int, size: float) -> np.ndarray:
    """The symmetric strain matrix of Voigt component (xx yy zz yz xz xy) with
    engineering value ``size`` (a shear gamma = 2 epsilon_ij)."""
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    i, j = pairs[component]
    epsilon = np.zeros((3, 3))
    epsilon[i, j] = epsilon[j, i] = size if i == j else size / 2.0
    return epsilon


def elastic_constants(crystal: Atoms, calculator: Any, delta: float = 0.005) -> dict[str, Any]:
    """Elastic constants C_ij (GPa) from the stress under small strains.

    For each Voigt strain component j, the relaxed ``crystal`` is strained by +delta and
    -delta (positions relaxed: the relaxed-ion constants) and column j of C is the
    central difference of the stress (ASE sign: sigma = C epsilon). Returns the 6x6
    matrix and its cubic averages C11 = <C11 C22 C33>, C12 = <C12 C13 C23>, C44 = <C44
    C55 C66> (exact for a cubic crystal, the usual summary of a random alloy), and the
    bulk modulus (C11 + 2 C12) / 3.
    """
    matrix = np.zeros((6, 6))
    for j in range(6):
        stresses = []
        for sign in (1.0, -1.0):
            atoms = attach(scaled(crystal, np.eye(3) + voigt_strain(j, sign * delta)), calculator)
            relax_positions(atoms)
            stresses.append(atoms.get_stress(voigt=True))
        matrix[:, j] = (stresses[0] - stresses[1]) / (2.0 * delta) / GPa
    c = 0.5 * (matrix + matrix.T)
    c11 = float(np.mean([c[0, 0], c[1, 1], c[2, 2]]))
    c12 = float(np.mean([c[0, 1], c[0, 2], c[1, 2]]))
    c44 = float(np.mean([c[3, 3], c[4, 4], c[5, 5]]))
    return {"C": c.tolist(), "C11": c11, "C12": c12, "C44": c44, "B_elastic": (c11 + 2 * c12) / 3}


def vacancy_formation_energy(
    supercell: Atoms, calculator: Any, index: int, chemical_potential: float | None = None
) -> float:
    """E_f = E(supercell without atom ``index``, positions relaxed, cell fixed) -
    E(supercell) + mu (eV), mu the energy per atom of the removed element's own
    crystal; None: the supercell's energy per atom (an elemental crystal)."""
    perfect = attach(supercell, calculator)
    e_perfect = relax_positions(perfect)
    defect = perfect.copy()
    del defect[index]
    defect.calc = calculator
    e_defect = relax_positions(defect)
    mu = e_perfect / len(perfect) if chemical_potential is None else chemical_potential
    return float(e_defect - e_perfect + mu)


def surface_energy(
    crystal: Atoms, calculator: Any, miller: tuple[int, int, int], layers: int,
    vacuum: float = 7.5,
) -> float:  # fmt: skip
    """gamma = (E_slab - n E_bulk) / 2A (J/m^2) of a slab of ``layers`` repeats of the
    relaxed ``crystal`` cell cut along ``miller`` (``ase.build.surface``; whole cells,
    so a compound's slab keeps its composition and gamma is the mean of its two
    terminations), ``vacuum`` A on each side, positions relaxed."""
    from ase.build import surface

    bulk = attach(crystal, calculator)
    e_bulk = float(bulk.get_potential_energy()) / len(bulk)
    # periodic=False, then periodic: with periodic=True ASE wraps the reduced heights
    # of the new basis, and a round-off of -1e-17 moves a plane to the far side
    slab = surface(crystal, miller, layers, vacuum=vacuum)
    slab.pbc = True
    slab = attach(slab, calculator)
    e_slab = relax_positions(slab)
    cell = slab.cell.array
    area = float(np.linalg.norm(np.cross(cell[0], cell[1])))
    return (e_slab - len(slab) * e_bulk) / (2.0 * area) * EV_PER_A2_IN_J_PER_M2


def phonon_frequencies(
    crystal: Atoms, calculator: Any, supercell: int, qpoints: np.ndarray
) -> np.ndarray:
    """Frequencies (K, bands), THz, at ``qpoints`` (reduced coordinates of ``crystal``'s
    reciprocal lattice) from phonopy's force constants on a ``supercell``^3 supercell:
    exact Hessian-vector products for a calculator that has them (an mlip model, the
    path of ``mlip phonons``), phonopy's 0.01 A finite displacements otherwise."""
    from mlip.integrations import phonopy as ph

    unitcell = crystal.copy()
    unitcell.calc = None
    phonon = ph.make_phonopy(unitcell, (supercell,) * 3)
    if hasattr(calculator, "get_hessian_products"):
        ph.exact_force_constants(phonon, calculator)
    else:
        ph.displacement_force_constants(phonon, calculator)
    return ph.frequencies_at(phonon, ph.primitive_qpoints(phonon, np.asarray(qpoints)))


def formation_energy(
    atoms: Atoms, calculator: Any, references: dict[int, float]
) -> tuple[float, Atoms]:
    """Formation energy per atom (eV) of ``atoms`` after relaxing cell and positions,
    against ``references`` (atomic number -> energy per atom of the element's crystal),
    and the relaxed structure."""
    relaxed = relaxed_crystal(atoms, calculator)
    energy = float(relaxed.get_potential_energy())
    reference = sum(references[int(z)] for z in relaxed.numbers)
    return (energy - reference) / len(relaxed), relaxed


def cell_errors(cells: list[tuple[Atoms, dict[str, Any]]], calculator: Any,
                max_force: float | None = None,
                min_distance: float | None = None) -> dict[str, float]:  # fmt: skip
    """Errors of ``calculator`` on labelled cells ((atoms, labels: energy eV, forces
    eV/A, stress Voigt eV/A^3)): energy MAE per atom (meV/atom), force MAE (meV/A),
    pressure MAE and mean bias (GPa; P = -tr(sigma)/3, bias = mean of model - reference),
    and the median over the cells of each cell's force MAE (meV/A): hot, strained cells
    of many atoms hold a few close contacts beyond any training cell, whose errors can
    dominate the mean; the median says what a typical cell sees. With ``max_force``
    (eV/A, the largest force component of the training data) also the force MAE within
    and beyond it (:func:`common.force_mae_by_range`); with ``min_distance`` (A, the
    training data's shortest interatomic distance) the force MAE of the atoms nearer a
    neighbour than that and of the others (:func:`common.force_mae_by_distance`)."""
    energy, forces, pressure = [], [], []
    for atoms, labels in cells:
        atoms = attach(atoms, calculator)
        energy.append((atoms.get_potential_energy() - labels["energy"]) / len(atoms))
        forces.append(np.abs(atoms.get_forces() - labels["forces"]).ravel())
        if labels.get("stress") is not None:
            stress = atoms.get_stress(voigt=True)
            pressure.append(-(stress[:3].mean() - np.mean(labels["stress"][:3])) / GPa)
    out = {
        "cells": len(cells),
        "energy_mae": 1000.0 * float(np.abs(energy).mean()),
        "forces_mae": 1000.0 * float(np.concatenate(forces).mean()),
        "forces_mae_median_cell": 1000.0 * float(np.median([f.mean() for f in forces])),
    }
    if max_force is not None:
        largest = [float(np.abs(labels["forces"]).max()) for _, labels in cells]
        out.update(force_mae_by_range(forces, largest, max_force))
    if min_distance is not None:
        out.update(force_mae_by_distance([a for a, _ in cells], forces, min_distance))
    if pressure:
        out["pressure_mae"] = float(np.abs(pressure).mean())
        out["pressure_bias"] = float(np.mean(pressure))
    return out
