"""ANI-1x / ANI-1ccx release HDF5 files (Smith et al., Sci. Data 7, 134 (2020)).

Layout: one top-level group per empirical formula (e.g. ``C2H6O``) holding
``atomic_numbers`` (N,), ``coordinates`` (M, N, 3) in A and, per level of theory with
prefix P (``wb97x_dz``, ``wb97x_tz``, ``ccsd(t)_cbs``...), ``P.energy`` (M,) in Hartree
and (for the DFT levels) ``P.forces`` (M, N, 3) in Hartree/A (already -dE/dR).
Not every conformer has every level: missing values are NaN, and conformers with a NaN
energy are skipped. Conversion: E[eV] = E[Ha] * 27.211386; F[eV/A] = F[Ha/A] * 27.211386.
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

HARTREE = units.Hartree  # eV
DEFAULT_LEVEL = "wb97x_dz"
LEVEL_NAMES = {
    "wb97x_dz": "wB97X/6-31G(d) (ANI-1x)",
    "wb97x_tz": "wB97X/def2-TZVPP (ANI-1x)",
    "ccsd(t)_cbs": "CCSD(T)*/CBS (ANI-1ccx)",
}


def level_label(prefix: str) -> str:
    """A readable level-of-theory label for an ANI key prefix."""
    return LEVEL_NAMES.get(prefix, f"{prefix} (ANI-1x)")


def _read_group(h5group: h5py.Group, file: str, prefix: str) -> Group | None:
    name = h5group.name.lstrip("/")
    numbers = dataset(h5group, "atomic_numbers", file, (-1,)).astype(np.int64)
    n = numbers.size
    coordinates = dataset(h5group, "coordinates", file, (-1, n, 3)).astype(np.float64)
    m = len(coordinates)
    energy_key, forces_key = f"{prefix}.energy", f"{prefix}.forces"
    if energy_key not in h5group:
        levels = sorted(k[: -len(".energy")] for k in h5group if k.endswith(".energy"))
        raise DataError(
            f"missing dataset; levels of theory available here: {levels}",
            file=file,
            group=name,
            field=energy_key,
        )
    energy = dataset(h5group, energy_key, file, (m,)).astype(np.float64)
    keep = ~np.isnan(energy)
    if not keep.any():
        return None
    check_finite(np.where(keep, energy, 0.0), file, name, energy_key)  # inf is an error
    check_finite(coordinates[keep], file, name, "coordinates")
    forces = None
    if forces_key in h5group:
        forces = dataset(h5group, forces_key, file, (m, n, 3)).astype(np.float64)
        bad = keep & ~np.isfinite(forces.reshape(m, -1)).all(axis=1)
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise DataError("NaN or inf where the energy is finite", file, name, forces_key, index)
    structures = [
        Structure(
            atomic_numbers=numbers,
            positions=coordinates[k],
            energy=float(energy[k] * HARTREE),
            forces=None if forces is None else forces[k] * HARTREE,
            index=int(k),
        )
        for k in np.flatnonzero(keep)
    ]
    return Group(name, structures, {"source": "ANI-1x", "level_key": prefix})


def read_ani1x(path: str | os.PathLike, level_of_theory: str = DEFAULT_LEVEL) -> Iterator[Group]:
    """Yield one group per formula of an ANI-1x file (eV, A, eV/A), streaming.

    ``level_of_theory`` is the key prefix (``wb97x_dz``: ``wb97x_dz.energy`` and
    ``wb97x_dz.forces``). Conformers with a NaN energy are skipped, and groups left
    empty are dropped; inf, or NaN forces/coordinates where the energy is finite,
    raise :class:`DataError`.
    """
    file = str(path)
    with open_h5(file) as h5:
        names = [k for k in h5 if isinstance(h5[k], h5py.Group)]
        if not names:
            raise DataError("no groups: not an ANI-1x file", file=file)
        for key in names:
            group = _read_group(h5[key], file, level_of_theory)
            if group is not None:
                yield group
