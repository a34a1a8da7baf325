"""Write labelled structures to the mlip-hdf5 layout (eV, Angstrom).

Layout (see the reference datasets' FORMAT.md): file attributes ``format="mlip-hdf5"``,
``version=1``, ``energy_unit="eV"``, ``length_unit="Angstrom"``, ``level_of_theory``;
one group per chemical system (same atoms in the same order) with

- ``atomic_numbers`` (N,) int64
- ``positions`` (M, N, 3) A, ``energy`` (M,) eV (total energy)
- ``forces`` (M, N, 3) eV/A, forces = -dE/dR (optional)
- ``hessian`` (M, 3N, 3N) eV/A^2, d2E/dR_i dR_j atom-major, NaN-filled for conformers
  without one (optional)
- ``cell`` (M, 3, 3) A, lattice vectors as rows (optional), ``pbc`` (3,) bool (optional)
- ``stress`` (M, 6) eV/A^3, Voigt xx yy zz yz xz xy, ASE sign (optional)

Files are written atomically (:func:`mlip.fileio.atomic_path`): into a temporary file in
the output folder, renamed onto the output only once complete, and removed on any
error, so a failed write never leaves a partial file behind. Per-conformer datasets are chunked
along the conformer axis and compressed, so a reader can load conformers lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from mlip.data.graph import Structure
from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION
from mlip.errors import DataError
from mlip.fileio import atomic_path

COMPRESSIONS = ("gzip", "lzf", None)
_CHUNK_BYTES = 1 << 16  # target size of one chunk of a per-conformer dataset


@dataclass
class Group:
    """One chemical system: structures with the same atoms in the same order.

    ``attrs`` holds provenance written as HDF5 group attributes (e.g. ``smiles``).
    """

    name: str
    structures: list[Structure]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroupSummary:
    """What was written for one group: sizes and which labels are present."""

    name: str
    num_atoms: int
    num_conformers: int
    has_forces: bool
    has_stress: bool
    has_cell: bool
    periodic: bool
    num_hessians: int

    def labels(self) -> list[str]:
        """Names of the labels present, e.g. ``["energy", "forces", "hessian(60)"]``."""
        out = ["energy"]
        if self.has_forces:
            out.append("forces")
        if self.has_stress:
            out.append("stress")
        if self.num_hessians:
            out.append(f"hessian({self.num_hessians})")
        return out

    def line(self) -> str:
        """A one-line human-readable summary."""
        extra = ", periodic" if self.periodic else (", cell" if self.has_cell else "")
        return (
            f"{self.name}: {self.num_atoms} atoms, {self.num_conformers} conformers, "
            f"labels: {' '.join(self.labels())}{extra}"
        )


def _all_or_none(structures: Sequence[Structure], name: str, file: str | None, group: str) -> bool:
    """True if every structure has ``name`` set, False if none has; else DataError."""
    present = [getattr(s, name) is not None for s in structures]
    if all(present):
        return True
    if not any(present):
        return False
    missing = present.index(False) if present[0] else present.index(True)
    raise DataError(
        f"present for some conformers but not for others (first mismatch at {missing}); "
        "split the data into separate groups or drop the label",
        file=file,
        group=group,
        field=name,
        index=missing,
    )


def _check_array(
    value: Any, shape: tuple[int, ...], name: str, file: str | None, group: str, index: int
) -> None:
    array = np.asarray(value)
    if array.shape != shape:
        raise DataError(
            f"shape {array.shape}, expected {shape}",
            file=file,
            group=group,
            field=name,
            index=index,
        )
    if not np.all(np.isfinite(array)):
        raise DataError("contains NaN or inf", file=file, group=group, field=name, index=index)


def check_group(group: Group, file: str | os.PathLike | None = None) -> GroupSummary:
    """Validate a group for the mlip-hdf5 layout and summarise it.

    Checks: a legal non-empty name; at least one structure; identical atomic numbers
    everywhere; an energy on every structure; each optional label (forces, stress, cell)
    present on all structures or on none (Hessians may be partial); identical ``pbc``;
    shapes; all values finite. Raises :class:`DataError` naming file, group, field and
    conformer.
    """
    where = None if file is None else str(file)
    name = group.name
    if not name or "/" in name or name in (".", ".."):
        raise DataError(f"illegal HDF5 group name {name!r} (empty or containing '/')", file=where)
    structures = group.structures
    if len(structures) == 0:
        raise DataError("group has no structures", file=where, group=name)
    numbers = np.asarray(structures[0].atomic_numbers)
    if numbers.ndim != 1 or numbers.size == 0 or np.any(numbers < 1):
        raise DataError(
            f"atomic numbers must be positive, shape (N,): {numbers}",
            file=where,
            group=name,
            field="atomic_numbers",
        )
    n = numbers.size
    has = {key: _all_or_none(structures, key, where, name) for key in ("forces", "stress", "cell")}
    pbc0 = _pbc(structures[0])
    for k, s in enumerate(structures):
        if not np.array_equal(np.asarray(s.atomic_numbers), numbers):
            raise DataError(
                "atomic numbers differ from the group's first conformer",
                file=where,
                group=name,
                field="atomic_numbers",
                index=k,
            )
        if s.energy is None:
            raise DataError("missing (energy is required)", where, name, "energy", k)
        _check_array(s.energy, (), "energy", where, name, k)
        _check_array(s.positions, (n, 3), "positions", where, name, k)
        if has["forces"]:
            _check_array(s.forces, (n, 3), "forces", where, name, k)
        if has["stress"]:
            _check_array(s.stress, (6,), "stress", where, name, k)
        if has["cell"]:
            _check_array(s.cell, (3, 3), "cell", where, name, k)
        if s.hessian is not None:
            _check_array(s.hessian, (3 * n, 3 * n), "hessian", where, name, k)
        if not np.array_equal(_pbc(s), pbc0):
            raise DataError("pbc differs within the group", where, name, "pbc", k)
    if pbc0.any() and not has["cell"]:
        raise DataError("periodic structures need a cell", where, name, "cell")
    return GroupSummary(
        name=name,
        num_atoms=n,
        num_conformers=len(structures),
        has_forces=has["forces"],
        has_stress=has["stress"],
        has_cell=has["cell"],
        periodic=bool(pbc0.any()),
        num_hessians=sum(s.hessian is not None for s in structures),
    )


def _pbc(structure: Structure) -> np.ndarray:
    if structure.pbc is None:
        return np.zeros(3, dtype=bool)
    pbc = np.asarray(structure.pbc, dtype=bool).reshape(-1)
    if pbc.shape != (3,):
        raise ValueError(f"pbc must have 3 entries, got {structure.pbc!r}")
    return pbc


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunk shape holding whole conformers, about ``_CHUNK_BYTES`` per chunk."""
    per_conformer = itemsize * int(np.prod(shape[1:], dtype=np.int64))
    count = max(1, min(shape[0], _CHUNK_BYTES // max(per_conformer, 1)))
    return (count, *shape[1:])


def _write_group(
    h5: h5py.File, group: Group, summary: GroupSummary, compression: str | None
) -> None:
    structures = group.structures
    n = summary.num_atoms
    arrays: dict[str, np.ndarray] = {
        "positions": np.stack([s.positions for s in structures]).astype(np.float64),
        "energy": np.array([s.energy for s in structures], dtype=np.float64),
    }
    if summary.has_forces:
        arrays["forces"] = np.stack([s.forces for s in structures]).astype(np.float64)
    if summary.has_stress:
        arrays["stress"] = np.stack([s.stress for s in structures]).astype(np.float64)
    if summary.has_cell:
        arrays["cell"] = np.stack([s.cell for s in structures]).astype(np.float64)
    if summary.num_hessians:
        hessian = np.full((len(structures), 3 * n, 3 * n), np.nan)
        for k, s in enumerate(structures):
            if s.hessian is not None:
                hessian[k] = s.hessian
        arrays["hessian"] = hessian
    out = h5.create_group(group.name)
    for key, value in group.attrs.items():
        out.attrs[key] = value
    numbers = np.asarray(structures[0].atomic_numbers, dtype=np.int64)
    out.create_dataset("atomic_numbers", data=numbers, track_times=False)
    if summary.periodic:
        out.create_dataset("pbc", data=_pbc(structures[0]), track_times=False)
    options: dict[str, Any] = {"track_times": False}  # same input, same bytes
    if compression is not None:
        options.update(compression=compression, shuffle=True)
        if compression == "gzip":
            options["compression_opts"] = 6
    for key, value in arrays.items():
        out.create_dataset(key, data=value, chunks=_chunks(value.shape, value.itemsize), **options)


def write_mlip_hdf5(
    path: str | os.PathLike,
    groups: Iterable[Group] | Mapping[str, Sequence[Structure]],
    level_of_theory: str = "unknown",
    overwrite: bool = False,
    compression: str | None = "gzip",
) -> list[GroupSummary]:
    """Write groups of structures to an mlip-hdf5 file, atomically; return summaries.

    ``groups`` is an iterable of :class:`Group` (consumed once, so a generator streams
    one group at a time) or a mapping ``name -> structures``. Units of the input
    structures: eV, A, eV/A, eV/A^2, eV/A^3. ``compression`` is "gzip" (default, level
    6 with byte shuffle), "lzf" or None. Raises FileExistsError if ``path`` exists and
    ``overwrite`` is False, :class:`DataError` for invalid data (no file is left behind).
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if isinstance(groups, Mapping):
        groups = [Group(name, list(structures)) for name, structures in groups.items()]
    summaries: list[GroupSummary] = []
    with atomic_path(path, overwrite=overwrite, create_folder=False) as temp:
        with h5py.File(temp, "w") as h5:
            h5.attrs["format"] = FORMAT_NAME
            h5.attrs["version"] = FORMAT_VERSION
            h5.attrs["energy_unit"] = "eV"
            h5.attrs["length_unit"] = "Angstrom"
            h5.attrs["level_of_theory"] = str(level_of_theory)
            for group in groups:
                summary = check_group(group, file=path)
                if group.name in h5:
                    raise DataError("duplicate group name", file=str(path), group=group.name)
                _write_group(h5, group, summary, compression)
                summaries.append(summary)
        if not summaries:
            raise DataError("nothing to write: no groups", file=str(path))
    return summaries
