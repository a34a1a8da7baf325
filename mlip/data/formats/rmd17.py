"""Revised MD17 (rMD17, Christensen & von Lilienfeld 2020) ``.npz`` files.

Keys used: ``nuclear_charges`` (N,), ``coords`` (M, N, 3) in A, ``energies`` (M,) in
kcal/mol, ``forces`` (M, N, 3) in kcal/mol/A (already -dE/dR). Other keys
(``old_indices``, ``old_energies``, ``old_forces``) are ignored. Conversion:
E[eV] = E[kcal/mol] * (kcal/mol in eV) = E * 0.0433641 (ase.units), same factor for forces.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from ase import units

from mlip.data.formats._h5 import check_finite
from mlip.data.graph import Structure
from mlip.data.writer import Group
from mlip.errors import DataError

KCAL_PER_MOL = units.kcal / units.mol  # eV
LEVEL_OF_THEORY = "PBE/def2-SVP (rMD17)"
KEYS = ("nuclear_charges", "coords", "energies", "forces")


def read_rmd17(path: str | os.PathLike, name: str | None = None) -> list[Group]:
    """One group from an rMD17 ``.npz`` file (eV, A, eV/A).

    The group is named ``name`` or the file stem without its ``rmd17_`` prefix
    (``rmd17_ethanol.npz`` -> ``ethanol``). Missing keys, shape mismatches and
    non-finite values raise :class:`DataError`.
    """
    file = str(path)
    group = name or Path(file).stem.removeprefix("rmd17_")
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [key for key in KEYS if key not in npz.files]
            if missing:
                raise DataError(
                    f"missing key(s) {missing}; rMD17 files hold {list(KEYS)}, found {npz.files}",
                    file=file,
                    field=missing[0],
                )
            data = {key: np.asarray(npz[key]) for key in KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"not a readable .npz file: {err}", file=file) from err
    numbers = data["nuclear_charges"].astype(np.int64)
    if numbers.ndim != 1:
        raise DataError(f"shape {numbers.shape}, expected (N,)", file, group, "nuclear_charges")
    n = numbers.size
    coords = data["coords"].astype(np.float64)
    m = coords.shape[0] if coords.ndim == 3 else -1
    energies = data["energies"].astype(np.float64)
    if energies.ndim == 2 and energies.shape[1] == 1:
        energies = energies[:, 0]
    expected = {"coords": (m, n, 3), "energies": (m,), "forces": (m, n, 3)}
    arrays = {"coords": coords, "energies": energies, "forces": data["forces"].astype(np.float64)}
    for key, shape in expected.items():
        if arrays[key].shape != shape or m < 0:
            raise DataError(
                f"shape {arrays[key].shape}, expected {shape} (M conformers, N={n} atoms)",
                file,
                group,
                key,
            )
        check_finite(arrays[key], file, group, key)
    structures = [
        Structure(
            atomic_numbers=numbers,
            positions=coords[k],
            energy=float(energies[k] * KCAL_PER_MOL),
            forces=arrays["forces"][k] * KCAL_PER_MOL,
            index=k,
        )
        for k in range(m)
    ]
    return [Group(group, structures, {"source": "rMD17"})]
