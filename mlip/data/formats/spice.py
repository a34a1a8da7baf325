"""SPICE HDF5 files (Eastman et al., Sci. Data 10, 11 (2023)).

Layout: one top-level group per molecule holding ``atomic_numbers`` (N,),
``conformations`` (M, N, 3) in Bohr, ``dft_total_energy`` (M,) in Hartree and
``dft_total_gradient`` (M, N, 3) in Hartree/Bohr (dE/dR), plus ``smiles``/``subset``
and other properties (not read). Conversion: R[A] = R[Bohr] * 0.529177;
E[eV] = E[Ha] * 27.211386; F[eV/A] = -gradient[Ha/Bohr] * 27.211386 / 0.529177.
Total charges of charged molecules are not carried over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import h5py
import numpy as np
from ase import units

from mlip.data.formats._h5 import check_finite, dataset, open_h5
from mlip.data.graph import Structure
from mlip.data.writer import Group
from mlip.errors import DataError

LEVEL_OF_THEORY = "wB97M-D3(BJ)/def2-TZVPPD (SPICE)"
ENERGY_KEY, GRADIENT_KEY = "dft_total_energy", "dft_total_gradient"


def _text(h5group: h5py.Group, key: str) -> str | None:
    """A string stored as a scalar or (1,) dataset of bytes/str, or None."""
    if key not in h5group or not isinstance(h5group[key], h5py.Dataset):
        return None
    value = np.asarray(h5group[key][()]).reshape(-1)
    if value.size == 0:
        return None
    item = value[0]
    return item.decode() if isinstance(item, bytes) else str(item)


def _read_group(h5group: h5py.Group, file: str) -> Group:
    name = h5group.name.lstrip("/")
    numbers = dataset(h5group, "atomic_numbers", file, (-1,)).astype(np.int64)
    n = numbers.size
    positions = dataset(h5group, "conformations", file, (-1, n, 3)).astype(np.float64)
    m = len(positions)
    energy = dataset(h5group, ENERGY_KEY, file, (m,)).astype(np.float64)
    check_finite(positions, file, name, "conformations")
    check_finite(energy, file, name, ENERGY_KEY)
    forces = None
    if GRADIENT_KEY in h5group:
        gradient = dataset(h5group, GRADIENT_KEY, file, (m, n, 3)).astype(np.float64)
        check_finite(gradient, file, name, GRADIENT_KEY)
        forces = -gradient * (units.Hartree / units.Bohr)
    structures = [
        Structure(
            atomic_numbers=numbers,
            positions=positions[k] * units.Bohr,
            energy=float(energy[k] * units.Hartree),
            forces=None if forces is None else forces[k],
            index=k,
        )
        for k in range(m)
    ]
    attrs = {"source": "SPICE"}
    for key in ("smiles", "subset"):
        text = _text(h5group, key)
        if text is not None:
            attrs[key] = text
    return Group(name, structures, attrs)


def read_spice(path: str | os.PathLike) -> Iterator[Group]:
    """Yield one group per molecule of a SPICE file (eV, A, eV/A), streaming.

    Missing datasets, shape mismatches and NaN/inf raise :class:`DataError`; groups
    with no conformers are skipped.
    """
    file = str(path)
    with open_h5(file) as h5:
        names = [k for k in h5 if isinstance(h5[k], h5py.Group)]
        if not names:
            raise DataError("no groups: not a SPICE file", file=file)
        for key in names:
            group = _read_group(h5[key], file)
            if group.structures:
                yield group
