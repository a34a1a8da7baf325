"""What several benchmarks measure the same way: the reference data folder, frequencies
and the Hessian at a reference minimum, and the Cu equation of state against EMT.

Units: eV, Angstrom, amu; frequencies cm^-1, Hessians meV/A^2, pressures GPa.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
SOFT_MODE_CUTOFF = 1000.0  # cm^-1: modes below are reported on their own


def frequency_errors(
    model: torch.nn.Module, data: str, group: str, relax: bool = False
) -> dict[str, Any]:
    """Harmonic frequencies (cm^-1) and the Hessian (meV/A^2) of ``model`` at the
    reference minimum ``data:group`` against its reference Hessian.

    The model's exact float64 Hessian is taken at the reference geometry, or at the
    model's own minimum with ``relax``; modes are matched in sorted order
    (:meth:`mlip.vib.HarmonicResult.compare`). Reports the MAE over all modes, over the
    modes below 1000 cm^-1 and the largest error, the Hessian element MAE and the
    number of imaginary modes.
    """
    from mlip.calculator import MLIPCalculator
    from mlip.vib import harmonic_analysis, read_structure
    from mlip.vib import relax as relax_atoms

    atoms, reference_hessian = read_structure(f"{data}:{group}")
    if reference_hessian is None:
        raise ValueError(f"{data}: group {group!r} carries no reference Hessian")
    start = atoms.get_positions()  # a copy: relax moves atoms.positions in place
    reference = harmonic_analysis(reference_hessian, atoms.get_masses(), start)
    calculator = MLIPCalculator(model, dtype="float64")
    extra: dict[str, Any] = {}
    if relax:
        outcome = relax_atoms(atoms, calculator)
        shift = np.linalg.norm(atoms.positions - start, axis=1).max()
        extra = {"relax_converged": outcome.converged, "relax_max_shift_A": float(shift)}
    hessian = calculator.get_hessian(atoms)
    predicted = harmonic_analysis(hessian, atoms.get_masses(), atoms.positions)
    comparison = predicted.compare(reference)
    return {
        "freq_mae": comparison.mae,
        "freq_mae_soft": comparison.mae_below(SOFT_MODE_CUTOFF),
        "freq_max_error": comparison.max_error,
        "hessian_mae_minimum": 1000.0 * float(np.abs(hessian - reference_hessian).mean()),
        "num_imaginary": int(predicted.imaginary.sum()),
        **extra,
    }


def conformer_frequency_errors(model: torch.nn.Module, structures: list) -> dict[str, float]:
    """Mean over ``structures`` (with reference Hessians, e.g. the validation set) of the
    frequency MAE (cm^-1) of the model's Hessian against the reference at the same
    geometry, over all modes and over the modes below 1000 cm^-1: a validation-side
    measure of the vibrations (the minimum itself is left for testing)."""
    from ase.data import atomic_masses

    from mlip.calculator import MLIPCalculator
    from mlip.vib import harmonic_analysis

    calculator = MLIPCalculator(model, dtype="float64")
    all_modes, soft = [], []
    for s in structures:
        if s.hessian is None:
            continue
        masses = atomic_masses[s.atomic_numbers]
        predicted = calculator.get_hessian(_atoms(s))
        comparison = harmonic_analysis(predicted, masses, s.positions).compare(
            harmonic_analysis(s.hessian, masses, s.positions)
        )
        all_modes.append(comparison.mae)
        soft.append(comparison.mae_below(SOFT_MODE_CUTOFF))
    return {"freq_mae": float(np.mean(all_modes)), "freq_mae_soft": float(np.nanmean(soft))}


def _atoms(structure: Any) -> Any:
    from ase import Atoms

    return Atoms(numbers=structure.atomic_numbers, positions=structure.positions)


def cu_equation_of_state(
    calculator: Any, lattice: np.ndarray | None = None, repeat: int = 2
) -> dict[str, float]:
    """Lattice constant (A) and bulk modulus (GPa) of fcc Cu with ``calculator``.

    Energies of the cubic cell repeated ``repeat`` times at the lattice constants
    ``lattice`` (default 3.53-3.67 A, +-2 % around EMT's 3.59 and inside the volumes of
    cu_emt.h5) fitted by a Birch-Murnaghan equation of state (``ase.eos``).
    """
    from ase.build import bulk
    from ase.eos import EquationOfState
    from ase.units import GPa

    lattice = np.linspace(3.53, 3.67, 11) if lattice is None else lattice
    volumes, energies = [], []
    for a in lattice:
        atoms = bulk("Cu", "fcc", a=float(a), cubic=True).repeat(repeat)
        atoms.calc = calculator
        volumes.append(atoms.get_volume() / len(atoms))
        energies.append(atoms.get_potential_energy() / len(atoms))
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, _, b = eos.fit()
    return {"lattice_constant": float((4.0 * v0) ** (1.0 / 3.0)), "bulk_modulus": float(b / GPa)}


def cu_test_cells(count: int = 10, size: int = 3, seed: int = 0) -> list:
    """``count`` fcc Cu supercells (``size``^3 cubic cells, 108 atoms for 3) labelled by
    EMT: random strains of up to 2 % and thermal-like displacements (0.05-0.15 A), the
    kind of larger cells a potential trained on 32-atom cells must carry over to."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(size)
        strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))
        atoms.set_cell(atoms.cell.array @ (0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.positions += rng.uniform(0.05, 0.15) * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        atoms.info["energy"] = atoms.get_potential_energy()
        atoms.arrays["ref_forces"] = atoms.get_forces()
        atoms.info["ref_stress"] = atoms.get_stress(voigt=False)
        atoms.calc = None
        cells.append(atoms)
    return cells


def cu_cell_errors(
    calculator: Any, cells: list, training_max_force: float | None = None
) -> dict[str, float]:
    """Force MAE (meV/A), pressure MAE and mean bias (GPa) of ``calculator`` on
    :func:`cu_test_cells`.

    Some of these cells push atoms much closer than any training cell (forces of 6-12
    eV/A where the training data stop near 6): their errors measure extrapolation to
    close contacts, and a few of them can dominate the mean. With
    ``training_max_force`` (eV/A, the largest force component of the training data) the
    force MAE is also given separately over the cells whose largest force lies within
    that range (``forces_mae_within``, with their count) and over the others
    (``forces_mae_beyond``).
    """
    from ase.units import GPa

    force_errors, pressure_errors, largest = [], [], []
    for atoms in cells:
        atoms = atoms.copy()
        atoms.calc = calculator
        force_errors.append(np.abs(atoms.get_forces() - atoms.arrays["ref_forces"]).ravel())
        largest.append(float(np.abs(atoms.arrays["ref_forces"]).max()))
        stress = atoms.get_stress(voigt=False)
        pressure = -np.trace(stress) / 3.0
        pressure_errors.append((pressure + np.trace(atoms.info["ref_stress"]) / 3.0) / GPa)
    pressure_errors = np.array(pressure_errors)
    out = {
        "forces_mae": 1000.0 * float(np.concatenate(force_errors).mean()),
        "pressure_mae": float(np.abs(pressure_errors).mean()),
        "pressure_bias": float(pressure_errors.mean()),
    }
    if training_max_force is not None:
        out.update(force_mae_by_range(force_errors, largest, training_max_force))
    return out


def force_mae_by_range(force_errors: list[np.ndarray], largest: list[float],
                       max_force: float) -> dict[str, float]:  # fmt: skip
    """Force MAE (meV/A) over the cells whose largest reference force (``largest``, eV/A)
    lies within ``max_force`` (the training data's largest) and over the others:
    ``forces_mae_within``, ``cells_within``, ``forces_mae_beyond``, ``cells_beyond``
    (NaN for a side without cells). ``force_errors``: each cell's absolute force errors
    (eV/A). Interpolation and extrapolation, apart."""
    within = [e for e, f in zip(force_errors, largest, strict=True) if f <= max_force]
    beyond = [e for e, f in zip(force_errors, largest, strict=True) if f > max_force]
    mae = lambda errors: 1000.0 * float(np.concatenate(errors).mean()) if errors else math.nan
    return {"forces_mae_within": mae(within), "cells_within": len(within),
            "forces_mae_beyond": mae(beyond), "cells_beyond": len(beyond)}  # fmt: skip


def force_mae_by_distance(atoms_list: list, force_errors: list[np.ndarray],
                          min_distance: float) -> dict[str, float]:  # fmt: skip
    """Force MAE (meV/A) over the atoms with a neighbour nearer than ``min_distance`` (A,
    the training data's shortest interatomic distance: contacts no training cell shows)
    and over the other atoms: ``forces_mae_close``, ``atoms_close``, ``forces_mae_far``,
    ``atoms_far`` (NaN for a side without atoms). ``force_errors``: each cell's absolute
    force errors (eV/A), 3 per atom in the order of its atoms. A few such atoms can
    carry most of a large cell's mean error; this says how much."""
    from mlip.data.graph import neighbor_list

    close, far = [], []
    for atoms, errors in zip(atoms_list, force_errors, strict=True):
        near = np.zeros(len(atoms), dtype=bool)
        cell = atoms.cell.array if atoms.pbc.any() else None
        near[neighbor_list(atoms.positions, cell, atoms.pbc, min_distance)[0]] = True
        per_atom = errors.reshape(len(atoms), 3)
        close.append(per_atom[near].ravel())
        far.append(per_atom[~near].ravel())
    close_e, far_e = np.concatenate(close), np.concatenate(far)
    mae = lambda e: 1000.0 * float(e.mean()) if e.size else math.nan
    return {"forces_mae_close": mae(close_e), "atoms_close": close_e.size // 3,
            "forces_mae_far": mae(far_e), "atoms_far": far_e.size // 3}  # fmt: skip


@functools.lru_cache(maxsize=8)
def training_min_distance(path: str, groups: tuple[str, ...] | None = None,
                          cutoff: float = 4.0) -> float:  # fmt: skip
    """The shortest interatomic distance (A, periodic images included) over the
    conformers of an mlip HDF5 file (``cutoff``: the longest distance looked at): the
    smallest of the trainer's per-pair shortest distances
    (:func:`mlip.train.statistics.shortest_pair_distances`); remembered per file within a
    process."""
    from mlip.data.graph import neighbor_list
    from mlip.data.hdf5 import H5Dataset
    from mlip.train.statistics import shortest_pair_distances

    dataset = H5Dataset(path, list(groups) if groups else None)
    shortest = math.inf
    for s in dataset.iterate(range(len(dataset))):
        edges = neighbor_list(s.positions, s.cell, s.pbc, cutoff)
        shortest = min([shortest, *shortest_pair_distances(s, *edges).values()])
    dataset.close()
    return shortest


def training_max_force(path: str, groups: list[str] | None = None) -> float:
    """The largest force component (eV/A) of the conformers of an mlip HDF5 file."""
    import h5py

    with h5py.File(path, "r") as handle:
        names = groups or list(handle)
        return max(float(np.abs(handle[g]["forces"][:]).max()) for g in names)


#: the molecules whose reference data ship in ``../shared/data`` (the others are made by
#: benchmarks/learn_molecules.py)
SHARED_MOLECULES = ("ethanol", "aspirin")


def molecule_reference(name: str, data_dir: str, molecule_dir: str) -> tuple[str, str]:
    """(file, group) of a molecule's 500 K GFN2-xTB reference MD: ``NAME_xtb.h5`` in
    ``data_dir`` for :data:`SHARED_MOLECULES`, in ``molecule_dir`` (the files of
    benchmarks/learn_molecules.py) for the others; the group is ``NAME``, its minimum
    ``NAME_minimum`` and, for the made ones, its test trajectory ``NAME_test``. Exits with
    a one-line message when the file is missing."""
    folder = data_dir if name in SHARED_MOLECULES else molecule_dir
    path = os.path.join(folder, f"{name}_xtb.h5")
    if not os.path.exists(path):
        raise SystemExit(f"{name}: reference data {path} not found (--data-dir, --molecule-dir; "
                         "benchmarks/learn_molecules.py makes it)")  # fmt: skip
    return path, name
