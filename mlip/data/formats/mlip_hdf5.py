"""Read mlip-hdf5 files into groups (through the lazy reader :class:`H5Dataset`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence

import h5py
import numpy as np

from mlip.data.hdf5 import H5Dataset
from mlip.data.writer import Group
from mlip.errors import DataError


def level_of_theory(path: str | os.PathLike) -> str | None:
    """The file attribute ``level_of_theory``, or None when absent."""
    with h5py.File(path, "r") as h5:
        value = h5.attrs.get("level_of_theory")
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def _group_attrs(path: str, names: Sequence[str]) -> dict[str, dict]:
    with h5py.File(path, "r") as h5:
        return {name: dict(h5[name].attrs) for name in names}


def read_mlip(
    path: str | os.PathLike, select: Mapping[str, Sequence[int] | None] | None = None
) -> Iterator[Group]:
    """Yield the groups of an mlip-hdf5 file (all, or those named in ``select``).

    ``select`` maps a group name to the conformer indices to read (None: all of them);
    each Structure's ``index`` is its index within the source group, and group
    attributes (provenance) are carried over. Layout errors raise :class:`DataError`.
    """
    file = os.fspath(path)
    dataset = H5Dataset(file, groups=None if select is None else list(select))
    attrs = _group_attrs(file, [info.name for info in dataset.groups])
    start = 0
    try:
        for info in dataset.groups:
            local = None if select is None else select.get(info.name)
            if local is None:
                local = np.arange(info.num_conformers)
            local = np.asarray(local, dtype=np.int64)
            if local.size and (local.min() < 0 or local.max() >= info.num_conformers):
                raise DataError(
                    f"selected indices outside 0..{info.num_conformers - 1}", file, info.name
                )
            structures = dataset.get_many((start + local).tolist())
            start += info.num_conformers
            yield Group(info.name, structures, attrs[info.name])
    finally:
        dataset.close()
