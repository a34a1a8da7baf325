"""Atomic structures and batches of atomic graphs (Angstrom, eV).

A :class:`Structure` holds one system with optional labels (numpy, float64).
:func:`build_batch` turns a list of them into the batch dict of :mod:`mlip.keys`,
with a periodic neighbour list from vesin (correct for any cell, including cells
smaller than twice the cutoff, where an atom sees several images of a neighbour).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms
from vesin import NeighborList

from mlip import keys


@dataclass
class Structure:
    """One system. positions (N, 3) A; cell (3, 3) A rows or None; labels optional.

    energy in eV, forces (N, 3) eV/A, stress (6,) Voigt xx yy zz yz xz xy eV/A^3
    (ASE sign), hessian (3N, 3N) eV/A^2 atom-major.
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray | None = None
    pbc: np.ndarray | None = None
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    hessian: np.ndarray | None = None
    index: int = -1  # index of the conformer in its source group
    file: str | None = None  # source file and group, for error messages
    group: str | None = None
    # the last neighbour list computed for this geometry (see :meth:`edges`)
    _edges: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def num_atoms(self) -> int:
        return len(self.atomic_numbers)

    @classmethod
    def from_atoms(cls, atoms: Atoms, keep_cell: bool = False) -> Structure:
        """The geometry of an ``ase.Atoms`` (no labels): the one Atoms -> Structure rule.

        The cell is kept for periodic atoms (``pbc`` any), and with ``keep_cell`` also for
        non-periodic atoms that have one (files round-trip it); otherwise it is None, as
        is ``pbc`` when no direction is periodic.
        """
        pbc = np.array(atoms.pbc, dtype=bool)
        has_cell = pbc.any() or (keep_cell and atoms.cell.rank > 0)
        # copies, not views: a Structure must not move when MD moves the atoms
        return cls(
            atomic_numbers=np.array(atoms.numbers, dtype=np.int64),
            positions=np.array(atoms.positions, dtype=np.float64),
            cell=np.array(atoms.cell.array, dtype=np.float64) if has_cell else None,
            pbc=pbc if pbc.any() else None,
        )

    def edges(self, r_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`neighbor_list` of this structure within ``r_max`` (A), kept for reuse.

        A training conformer is read once and batched every epoch: its graph is fixed,
        so it is computed once. The kept list is reused only while ``r_max``, the
        positions, the cell and ``pbc`` are those it was computed for (a structure moved
        in place gets a fresh list).
        """
        kept = self._edges
        if kept is not None:
            r, positions, cell, pbc, found = kept
            if (
                r == r_max
                and np.array_equal(positions, self.positions)
                and _same(cell, self.cell)
                and _same(pbc, self.pbc)
            ):
                return found
        found = neighbor_list(self.positions, self.cell, self.pbc, r_max)
        copy = lambda a: None if a is None else np.array(a)
        self._edges = (r_max, np.array(self.positions), copy(self.cell), copy(self.pbc), found)
        return found

    def to_atoms(self) -> Atoms:
        """An ``ase.Atoms`` of the geometry (no labels): the one Structure -> Atoms rule.

        A missing cell becomes the zero cell, a missing ``pbc`` no periodicity; masses are
        ASE's defaults for the elements.
        """
        return Atoms(
            numbers=self.atomic_numbers,
            positions=self.positions,
            cell=np.zeros((3, 3)) if self.cell is None else self.cell,
            pbc=False if self.pbc is None else self.pbc,
        )


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray | None, pbc: np.ndarray | None, r_max: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list within r_max (A): centre i, neighbour j, integer cell shifts S.

    r_ij = R_j - R_i + S @ cell. Self-pairs (i == j, S == 0) are excluded; an atom's
    own periodic images are included when the cell is smaller than the cutoff. The edges
    come in pairs: the second half holds the reverses (j, i, -S) of the first, in the
    same order. One structure on the host (vesin); the batched torch list
    of MD, rebuilt on the device, is :func:`mlip.md.neighbors.batched_neighbor_list`.
    """
    periodic = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
    if r_max <= 0:  # potentials without a neighbour list (e.g. fixed bonds)
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), dtype=np.int64)
    box = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    if periodic.any() and abs(np.linalg.det(box)) < 1e-10:
        raise ValueError("a periodic structure needs a cell with non-zero volume")
    # vesin's half list holds each pair once; the full list is it and its reverses, so
    # that it comes in pairs by construction (keys.EDGES_PAIRED)
    calculator = NeighborList(cutoff=float(r_max), full_list=False)
    i, j, shifts = calculator.compute(
        points=np.ascontiguousarray(positions, dtype=np.float64),
        box=box,
        periodic=periodic,
        quantities="ijS",
    )
    i, j, shifts = i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64)
    return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([shifts, -shifts])


def _in_pairs(i: np.ndarray, j: np.ndarray, shifts: np.ndarray) -> bool:
    """Whether the second half of the edges reverses the first, in the same order
    (checked, not assumed: a structure's list may come from elsewhere)."""
    half = len(i) // 2
    return (
        len(i) % 2 == 0
        and np.array_equal(i[:half], j[half:])
        and np.array_equal(j[:half], i[half:])
        and np.array_equal(shifts[:half], -shifts[half:])
    )


def build_batch(
    structures: Sequence[Structure],
    r_max: float,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    labels: bool = True,
) -> dict[str, torch.Tensor]:
    """Concatenate structures into one batch dict (see :mod:`mlip.keys`) on ``device``.

    With ``labels=True`` the labels present are added, with HAS_* masks; missing
    forces/stress/Hessians are zero-filled and masked out. When every structure's list
    is in pairs (as :func:`neighbor_list` gives them), the batch's edges are too (all
    first halves, then all second halves) and it carries :data:`mlip.keys.EDGES_PAIRED`.
    """
    if len(structures) == 0:
        raise ValueError("build_batch needs at least one structure")
    num_atoms = np.array([s.num_atoms for s in structures], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(num_atoms)[:-1]])
    cells = np.zeros((len(structures), 3, 3))
    pbcs = np.zeros((len(structures), 3), dtype=bool)
    lists = []
    for k, s in enumerate(structures):
        if s.cell is not None:
            cells[k] = s.cell
        if s.pbc is not None:
            pbcs[k] = s.pbc
        i, j, shift = s.edges(r_max)
        lists.append((i + offsets[k], j + offsets[k], shift))
    paired = all(_in_pairs(*edges) for edges in lists)
    if paired:  # all first halves, then all second halves: the batch is in pairs too
        firsts = [[a[: len(a) // 2] for a in edges] for edges in lists]
        seconds = [[a[len(a) // 2 :] for a in edges] for edges in lists]
        lists = firsts + seconds
    centres, neighbours, shifts = (list(column) for column in zip(*lists, strict=True))

    def tensor(array: np.ndarray, kind: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=kind or dtype).to(device)

    batch = {
        keys.POSITIONS: tensor(np.concatenate([s.positions for s in structures])),
        keys.ATOMIC_NUMBERS: tensor(
            np.concatenate([s.atomic_numbers for s in structures]), torch.long
        ),
        keys.BATCH: tensor(np.repeat(np.arange(len(structures)), num_atoms), torch.long),
        keys.NUM_ATOMS: tensor(num_atoms, torch.long),
        keys.CELL: tensor(cells),
        keys.PBC: tensor(pbcs, torch.bool),
        keys.EDGE_INDEX: tensor(
            np.stack([np.concatenate(centres), np.concatenate(neighbours)]), torch.long
        ),
        keys.EDGE_SHIFTS: tensor(np.concatenate(shifts).reshape(-1, 3)),
        keys.SAMPLE_INDEX: tensor(np.array([s.index for s in structures]), torch.long),
    }
    if paired:
        batch[keys.EDGES_PAIRED] = tensor(np.zeros(0), torch.bool)
    if labels:
        batch.update(_labels(structures, tensor))
    return batch


def _labels(structures: Sequence[Structure], tensor) -> dict[str, torch.Tensor]:  # noqa: ANN001
    has_energy = all(s.energy is not None for s in structures)
    out: dict[str, torch.Tensor] = {}
    if has_energy:
        out[keys.ENERGY] = tensor(np.array([s.energy for s in structures], dtype=np.float64))
    forces = [s.forces if s.forces is not None else np.zeros((s.num_atoms, 3)) for s in structures]
    out[keys.FORCES] = tensor(np.concatenate(forces))
    out[keys.HAS_FORCES] = tensor(np.array([s.forces is not None for s in structures]), torch.bool)
    stress = np.zeros((len(structures), 3, 3))
    for k, s in enumerate(structures):
        if s.stress is not None:
            stress[k] = voigt_to_matrix(s.stress)
    out[keys.STRESS] = tensor(stress)
    out[keys.HAS_STRESS] = tensor(np.array([s.stress is not None for s in structures]), torch.bool)
    if any(s.hessian is not None for s in structures):
        hessians = [
            s.hessian.reshape(-1) if s.hessian is not None else np.zeros((3 * s.num_atoms) ** 2)
            for s in structures
        ]
        out[keys.HESSIAN] = tensor(np.concatenate(hessians))
    else:  # no Hessian to copy: zeros made in place (a dense periodic batch's are large)
        size = sum((3 * s.num_atoms) ** 2 for s in structures)
        out[keys.HESSIAN] = torch.zeros(size, dtype=out[keys.FORCES].dtype,
                                        device=out[keys.FORCES].device)  # fmt: skip
    out[keys.HAS_HESSIAN] = tensor(
        np.array([s.hessian is not None for s in structures]), torch.bool
    )
    return out


def voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    """(6,) Voigt xx yy zz yz xz xy to a symmetric (3, 3) matrix."""
    xx, yy, zz, yz, xz, xy = np.asarray(voigt, dtype=np.float64)
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def matrix_to_voigt(matrix: np.ndarray) -> np.ndarray:
    """A (..., 3, 3) matrix to (..., 6) Voigt xx yy zz yz xz xy."""
    m = np.asarray(matrix)
    return np.stack(
        [m[..., 0, 0], m[..., 1, 1], m[..., 2, 2], m[..., 1, 2], m[..., 0, 2], m[..., 0, 1]], -1
    )


def atoms_to_batch(
    atoms: Atoms | Sequence[Atoms],
    r_max: float,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """A batch (no labels) from one ``ase.Atoms`` or a list of them."""
    atoms_list = atoms if isinstance(atoms, (list, tuple)) else [atoms]
    structures = [Structure.from_atoms(a) for a in atoms_list]
    return build_batch(structures, r_max, dtype=dtype, device=device, labels=False)
