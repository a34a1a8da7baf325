"""Lazy reader of the mlip HDF5 layout (``format = "mlip-hdf5"``, ``version = 1``).

One group per chemical system; every conformer of a group has the same atoms in the
same order. Units: eV, Angstrom (see ``FORMAT.md`` of the reference data). Only the
layout (shapes, attributes) is read at construction; conformers are read on demand,
so files larger than memory work. Every defect raises :class:`mlip.errors.DataError`
naming the file, group, field and, for values, the conformer index.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from mlip.data.graph import Structure
from mlip.errors import DataError

#: the ``format`` attribute of every mlip HDF5 file (datasets, MD trajectories): the one
#: place this name is spelled; files on disk carry it, so it never changes
FORMAT_NAME = "mlip-hdf5"
#: the ``version`` attribute written by this package
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (FORMAT_VERSION,)
#: file-name suffixes taken for HDF5 (compared in lower case): conversion outputs and
#: structure specs (:mod:`mlip.data.spec`)
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
REQUIRED_FIELDS = ("atomic_numbers", "positions", "energy")


@dataclass(frozen=True)
class GroupInfo:
    """Layout of one group: where it is and which labels it carries."""

    file: str
    name: str
    num_conformers: int
    num_atoms: int
    atomic_numbers: np.ndarray
    fields: frozenset[str]
    pbc: np.ndarray | None


class H5Dataset:
    """Conformers of one or more mlip-HDF5 files, indexed 0..len-1 across groups.

    ``groups`` selects groups by name (default: all groups of all files); a name
    absent from every file is an error. Instances are picklable (each process opens
    the files itself), so they work with DataLoader workers and torch.distributed.
    """

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], groups=None):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError("H5Dataset needs at least one file")
        wanted = None if groups is None else list(groups)
        self.groups: list[GroupInfo] = []
        for path in self.paths:
            self.groups.extend(_read_layout(path, wanted))
        if wanted is not None:
            found = {g.name for g in self.groups}
            missing = [g for g in wanted if g not in found]
            if missing:
                raise DataError(
                    f"group(s) {missing} not found; available: {self.available_groups()}",
                    file=", ".join(self.paths),
                )
        if not self.groups:
            raise DataError("no groups with conformers", file=", ".join(self.paths))
        counts = np.array([g.num_conformers for g in self.groups])
        self._starts = np.concatenate([[0], np.cumsum(counts)])
        self._handles: dict[str, h5py.File] = {}
        self._hessian_mask: np.ndarray | None = None

    # -- layout --------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._starts[-1])

    def available_groups(self) -> list[str]:
        names = []
        for path in self.paths:
            with _open(path) as f:
                names.extend(f"{os.path.basename(path)}:{g}" for g in f)
        return names

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in the selected groups."""
        return sorted({int(z) for g in self.groups for z in g.atomic_numbers})

    def location(self, index: int) -> tuple[str, str, int]:
        """(file, group, index within the group) of a global conformer index."""
        g = self._group_index(index)
        info = self.groups[g]
        return info.file, info.name, int(index - self._starts[g])

    def group_of(self, index: int) -> GroupInfo:
        return self.groups[self._group_index(index)]

    @property
    def hessian_mask(self) -> np.ndarray:
        """(len,) bool: which conformers carry a reference Hessian (non-NaN row)."""
        if self._hessian_mask is None:
            masks = []
            for info in self.groups:
                if "hessian" not in info.fields:
                    masks.append(np.zeros(info.num_conformers, dtype=bool))
                    continue
                h = self._file(info.file)[info.name]["hessian"]
                masks.append(np.isfinite(h[:, 0, 0]))
            self._hessian_mask = np.concatenate(masks)
        return self._hessian_mask

    # -- reading -------------------------------------------------------------
    def __getitem__(self, index: int) -> Structure:
        return self.get_many([index])[0]

    def get_many(self, indices: Iterable[int]) -> list[Structure]:
        """Read several conformers, one sorted read per group and field."""
        indices = np.asarray(list(indices), dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range 0..{len(self) - 1}: {indices.tolist()}")
        out: list[Structure | None] = [None] * len(indices)
        group_ids = np.searchsorted(self._starts, indices, side="right") - 1
        for g in np.unique(group_ids):
            positions_in_request = np.nonzero(group_ids == g)[0]
            local = indices[positions_in_request] - self._starts[g]
            order = np.argsort(local)
            unique_local, inverse = np.unique(local[order], return_inverse=True)
            structures = self._read_group(self.groups[g], unique_local)
            for k, req in enumerate(positions_in_request[order]):
                out[req] = structures[inverse[k]]
        return out  # type: ignore[return-value]

    def iterate(
        self, indices: Sequence[int] | np.ndarray | None = None, chunk: int = 256
    ) -> Iterator[Structure]:
        """The conformers ``indices`` (default: all) in that order, read ``chunk`` at a time.

        The one way to stream many conformers: memory holds one chunk, and each chunk
        is one :meth:`get_many` (one sorted read per group and field).
        """
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        if indices is None:
            indices = range(len(self))
        for start in range(0, len(indices), chunk):
            yield from self.get_many(indices[start : start + chunk])

    def _read_group(self, info: GroupInfo, local: np.ndarray) -> list[Structure]:
        group = self._file(info.file)[info.name]
        sel = local.tolist()

        def read(field: str) -> np.ndarray | None:
            if field not in info.fields:
                return None
            values = np.asarray(group[field][sel], dtype=np.float64)
            return values

        positions, energy = read("positions"), read("energy")
        forces, hessian = read("forces"), read("hessian")
        cell, stress = read("cell"), read("stress")
        for name, values in (("positions", positions), ("energy", energy), ("forces", forces),
                             ("cell", cell), ("stress", stress)):  # fmt: skip
            if values is not None:
                _check_finite(values, info, name, local)
        structures = []
        for k, idx in enumerate(local):
            h = None
            if hessian is not None:
                h = hessian[k]
                finite = np.isfinite(h)
                if not finite.all():
                    if finite.any():
                        raise DataError(
                            "Hessian is partly NaN/inf (a missing Hessian must be all NaN)",
                            info.file, info.name, "hessian", int(idx),
                        )  # fmt: skip
                    h = None
            structures.append(
                Structure(
                    atomic_numbers=info.atomic_numbers,
                    positions=positions[k],
                    cell=None if cell is None else cell[k],
                    pbc=info.pbc,
                    energy=float(energy[k]),
                    forces=None if forces is None else forces[k],
                    stress=None if stress is None else stress[k],
                    hessian=h,
                    index=int(idx),
                    file=info.file,
                    group=info.name,
                )
            )
        return structures

    def _group_index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range 0..{len(self) - 1}")
        return int(np.searchsorted(self._starts, index, side="right") - 1)

    def _file(self, path: str) -> h5py.File:
        handle = self._handles.get(path)
        if handle is None:
            handle = self._handles[path] = _open(path)
        return handle

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state


def _open(path: str) -> h5py.File:
    if not os.path.exists(path):
        raise DataError("file not found", file=path)
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"not a readable HDF5 file ({err})", file=path) from err


def _read_layout(path: str, wanted: list[str] | None) -> list[GroupInfo]:
    """Check the file attributes and every selected group's shapes; no conformer is read."""
    with _open(path) as f:
        fmt = f.attrs.get("format")
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        if fmt != FORMAT_NAME:
            raise DataError(f"attribute 'format' is {fmt!r}, expected {FORMAT_NAME!r}", file=path)
        version = f.attrs.get("version")
        if version is None or int(version) not in SUPPORTED_VERSIONS:
            raise DataError(
                f"attribute 'version' is {version!r}, supported: {SUPPORTED_VERSIONS}", file=path
            )
        for unit, expected in (("energy_unit", "eV"), ("length_unit", "Angstrom")):
            value = f.attrs.get(unit)
            value = value.decode() if isinstance(value, bytes) else value
            if value is not None and value != expected:
                raise DataError(f"attribute '{unit}' is {value!r}, expected {expected!r}", path)
        infos = []
        for name in f:
            if wanted is not None and name not in wanted:
                continue
            if not isinstance(f[name], h5py.Group):
                continue
            infos.append(_group_layout(path, name, f[name]))
        return infos


def _group_layout(path: str, name: str, group: h5py.Group) -> GroupInfo:
    for field in REQUIRED_FIELDS:
        if field not in group:
            raise DataError("required dataset is missing", path, name, field)
    z = np.asarray(group["atomic_numbers"][()], dtype=np.int64)
    if z.ndim != 1 or z.size == 0:
        raise DataError(f"expected shape (N,), got {z.shape}", path, name, "atomic_numbers")
    if z.min() < 1 or z.max() > 118:
        raise DataError(f"atomic numbers must be 1..118, got {sorted(set(z.tolist()))}",
                        path, name, "atomic_numbers")  # fmt: skip
    n = len(z)
    m = group["energy"].shape[0] if group["energy"].ndim == 1 else -1
    expected = {
        "positions": (m, n, 3),
        "energy": (m,),
        "forces": (m, n, 3),
        "hessian": (m, 3 * n, 3 * n),
        "cell": (m, 3, 3),
        "pbc": (3,),
        "stress": (m, 6),
    }
    fields = set()
    for field, shape in expected.items():
        if field not in group:
            continue
        if tuple(group[field].shape) != shape:
            raise DataError(
                f"shape {tuple(group[field].shape)} does not match the expected {shape} "
                f"(M={m} conformers from 'energy', N={n} atoms from 'atomic_numbers')",
                path, name, field,
            )  # fmt: skip
        fields.add(field)
    pbc = np.asarray(group["pbc"][()], dtype=bool) if "pbc" in group else None
    if pbc is not None and pbc.any() and "cell" not in group:
        raise DataError("periodic group (pbc set) without a 'cell' dataset", path, name, "cell")
    return GroupInfo(path, name, m, n, z, frozenset(fields), pbc)


def _check_finite(values: np.ndarray, info: GroupInfo, field: str, local: np.ndarray) -> None:
    bad = ~np.isfinite(values.reshape(len(local), -1)).all(axis=1)
    if bad.any():
        raise DataError("contains NaN or inf", info.file, info.name, field, int(local[bad][0]))
