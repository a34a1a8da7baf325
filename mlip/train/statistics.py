"""Dataset statistics that set the model's fixed shifts and scales (eV, Angstrom).

* Per-element reference energies e_Z (eV) by least squares on the training split:
  minimise sum_s (E_s - sum_Z n_sZ e_Z)^2, n_sZ the count of element Z in conformer s.
  When the compositions do not determine every e_Z (e.g. a single molecule, where only
  sum_Z n_Z e_Z is fixed) the minimum-norm solution is taken; any solution fits the
  data equally well.
* Scale (eV): the RMS of the training force components (eV/A times 1 A), so the
  network predicts O(1) numbers; without forces, the RMS per-atom energy residual
  after the reference energies.
* Average number of neighbours within r_max, which normalises message sums.
* The shortest distance (A) of each pair of elements within r_max, below which the
  model's ``core`` pair term acts (:class:`mlip.nn.repulsion.CoreRepulsion`).
* Label scales of the loss terms (RMS of the per-atom energy residual, of the force
  components and of the 9 stress components, eV/A^3), which normalise the loss.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mlip.data.graph import Structure, neighbor_list
from mlip.errors import DataError
from mlip.nn.geometry import pair_vectors


@dataclass
class DatasetStatistics:
    atomic_energies: dict[int, float]  # eV per element
    scale: float  # eV (force RMS in eV/A, or per-atom energy RMS)
    avg_num_neighbors: float
    force_rms: float | None  # eV/A, None without forces
    energy_residual_rms: float  # eV/atom, after the reference energies
    num_structures: int
    stress_rms: float | None = None  # eV/A^3 over the 9 components, None without stress
    #: shortest distance (A) within r_max of each pair of atomic numbers (Z_i <= Z_j)
    shortest_distances: dict[tuple[int, int], float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["atomic_energies"] = {int(k): float(v) for k, v in self.atomic_energies.items()}
        out["shortest_distances"] = {
            f"{a}-{b}": float(d) for (a, b), d in self.shortest_distances.items()
        }
        return out


def shortest_pair_distances(
    structure: Structure, centres: np.ndarray, neighbours: np.ndarray, shifts: np.ndarray
) -> dict[tuple[int, int], float]:
    """The shortest length (A) of the edges of ``structure`` (from :func:`neighbor_list`)
    of each pair of atomic numbers (Z_i <= Z_j)."""
    if len(centres) == 0:
        return {}
    cell = np.zeros((1, 3, 3)) if structure.cell is None else np.asarray(structure.cell)[None]
    lengths = (
        pair_vectors(
            torch.as_tensor(structure.positions, dtype=torch.float64),
            torch.as_tensor(np.stack([centres, neighbours])),
            torch.as_tensor(shifts),
            torch.as_tensor(cell, dtype=torch.float64),
            torch.zeros(structure.num_atoms, dtype=torch.long),
        )
        .norm(dim=-1)
        .numpy()
    )
    z = np.asarray(structure.atomic_numbers)
    low, high = np.minimum(z[centres], z[neighbours]), np.maximum(z[centres], z[neighbours])
    shortest: dict[tuple[int, int], float] = {}
    for a, b in set(zip(low.tolist(), high.tolist(), strict=True)):
        shortest[(a, b)] = float(lengths[(low == a) & (high == b)].min())
    return shortest


def composition(structure: Structure, elements: list[int]) -> np.ndarray:
    """Atom counts of ``structure`` per element of ``elements`` (float64, in that order)."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros(len(elements))
    for z in structure.atomic_numbers:
        if int(z) not in column:
            raise ValueError(f"element Z={int(z)} not in the model's elements {elements}")
        counts[column[int(z)]] += 1
    return counts


def fit_atomic_energies(
    compositions: np.ndarray, energies: np.ndarray, elements: list[int]
) -> np.ndarray:
    """Least-squares e_Z (eV) from counts (n_struct, n_elem) and total energies (n_struct,)."""
    if compositions.shape != (len(energies), len(elements)):
        raise ValueError(
            f"compositions shape {compositions.shape} does not match "
            f"{len(energies)} energies x {len(elements)} elements"
        )
    solution, *_ = np.linalg.lstsq(compositions.astype(np.float64), energies, rcond=None)
    return solution


def check_connected(structure: Structure, centres: np.ndarray, r_max: float) -> None:
    """A multi-atom structure must have neighbours within r_max; isolated atoms warn."""
    if structure.num_atoms < 2:
        return  # a lone atom (e.g. an isolated-atom reference energy) is fine
    where = dict(file=structure.file, group=structure.group, index=structure.index)
    if len(centres) == 0:
        raise DataError(
            f"no atom has a neighbour within r_max = {r_max} A (atoms too far apart, or "
            "positions not in Angstrom?)",
            field="positions",
            **where,
        )
    isolated = np.setdiff1d(np.arange(structure.num_atoms), centres)
    if len(isolated):
        warnings.warn(
            str(DataError(f"atoms {isolated.tolist()} have no neighbour within {r_max} A",
                          field="positions", **where)),
            stacklevel=2,
        )  # fmt: skip


def compute_statistics(
    structures: Iterable[Structure],
    elements: list[int],
    r_max: float,
    atomic_energies: dict[int, float] | None = None,
) -> DatasetStatistics:
    """Statistics of the given (training) conformers; ``atomic_energies`` skips the fit."""
    compositions, energies, num_atoms = [], [], []
    force_sq, force_count, edges = 0.0, 0, 0
    stress_sq, stress_count = 0.0, 0
    shortest: dict[tuple[int, int], float] = {}
    for s in structures:
        compositions.append(composition(s, elements))
        energies.append(float(s.energy))
        num_atoms.append(s.num_atoms)
        if s.forces is not None:
            force_sq += float(np.square(s.forces).sum())
            force_count += s.forces.size
        if s.stress is not None:
            voigt = np.asarray(s.stress, dtype=np.float64)
            stress_sq += float(np.square(voigt[:3]).sum() + 2.0 * np.square(voigt[3:]).sum())
            stress_count += 9
        centres, neighbours, shifts = neighbor_list(s.positions, s.cell, s.pbc, r_max)
        check_connected(s, centres, r_max)
        edges += len(centres)
        for pair, d in shortest_pair_distances(s, centres, neighbours, shifts).items():
            shortest[pair] = min(d, shortest.get(pair, d))
    if not energies:
        raise ValueError("cannot compute statistics of an empty set of conformers")
    a, e, n = np.array(compositions), np.array(energies), np.array(num_atoms)
    if atomic_energies is None:
        fitted = fit_atomic_energies(a, e, elements)
        atomic_energies = {z: float(fitted[k]) for k, z in enumerate(elements)}
    else:
        missing = [z for z in elements if z not in atomic_energies]
        if missing:
            raise ValueError(f"atomic_energies lacks elements {missing}")
    reference = a @ np.array([atomic_energies[z] for z in elements])
    residual_rms = float(np.sqrt(np.mean(((e - reference) / n) ** 2)))
    force_rms = float(np.sqrt(force_sq / force_count)) if force_count else None
    scale = force_rms if force_rms else residual_rms
    return DatasetStatistics(
        atomic_energies={int(z): float(atomic_energies[z]) for z in elements},
        scale=scale if scale > 0 else 1.0,
        avg_num_neighbors=float(edges / n.sum()),
        force_rms=force_rms,
        energy_residual_rms=residual_rms,
        num_structures=len(energies),
        stress_rms=float(np.sqrt(stress_sq / stress_count)) if stress_count else None,
        shortest_distances=dict(sorted(shortest.items())),
    )
