"""Read a structure (and its reference Hessian) for vibrational analysis.

A structure is either any file ASE reads, or one conformer of an mlip HDF5 file
written ``FILE.h5:GROUP[:INDEX]`` (INDEX defaults to 0). Positions in Angstrom, the
Hessian (if the conformer carries one) in eV/A^2, atom-major (3N, 3N).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from mlip.errors import DataError

_H5_SPEC = re.compile(r"^(?P<file>.+\.(?:h5|hdf5))(?::(?P<group>[^:]+)(?::(?P<index>-?\d+))?)?$")


@dataclass
class StructureSource:
    """A parsed structure argument: ASE file, or HDF5 file + group + index."""

    file: str
    group: str | None = None
    index: int = 0

    @property
    def is_hdf5(self) -> bool:
        return self.group is not None


def parse_structure_spec(spec: str) -> StructureSource:
    """Split ``FILE.h5:GROUP[:INDEX]`` (or a plain file name) into its parts."""
    match = _H5_SPEC.match(spec)
    if match is None:
        return StructureSource(file=spec)
    if match["group"] is None:
        raise ValueError(
            f"{spec!r}: an HDF5 structure needs a group, written FILE.h5:GROUP[:INDEX]"
        )
    return StructureSource(match["file"], match["group"], int(match["index"] or 0))


def read_structure(spec: str) -> tuple[Atoms, np.ndarray | None]:
    """(atoms, hessian or None) from an ASE-readable file or ``FILE.h5:GROUP[:INDEX]``.

    For an ASE file the Hessian is None. Errors name the file, group and index.
    """
    source = parse_structure_spec(spec)
    if not source.is_hdf5:
        if not os.path.exists(source.file):
            raise FileNotFoundError(f"structure file not found: {source.file}")
        import ase.io

        return ase.io.read(source.file), None
    return _read_hdf5(source)


def _read_hdf5(source: StructureSource) -> tuple[Atoms, np.ndarray | None]:
    from mlip.data.hdf5 import H5Dataset

    dataset = H5Dataset(source.file, groups=[source.group])
    try:
        count = len(dataset)
        index = source.index + count if source.index < 0 else source.index
        if not 0 <= index < count:
            raise DataError(
                f"index {source.index} out of range (group has {count} conformers)",
                file=source.file,
                group=source.group,
            )
        structure = dataset[index]
    finally:
        dataset.close()
    atoms = Atoms(
        numbers=structure.atomic_numbers,
        positions=structure.positions,
        cell=structure.cell if structure.cell is not None else np.zeros((3, 3)),
        pbc=structure.pbc if structure.pbc is not None else False,
    )
    return atoms, structure.hessian


def read_reference(spec: str, atomic_numbers=None):  # noqa: ANN001, ANN201
    """A reference analysis: ``FILE.h5:GROUP[:INDEX]`` with a Hessian, or a saved JSON.

    Returns (atoms or None for JSON, HarmonicResult). A conformer without a Hessian
    raises :class:`DataError` naming file, group and index; so does one whose atoms
    differ from ``atomic_numbers`` (same elements in the same order), when given.
    """
    from mlip.vib.harmonic import HarmonicResult, harmonic_analysis

    if spec.endswith(".json"):
        return None, HarmonicResult.from_json(spec)
    source = parse_structure_spec(spec)
    if not source.is_hdf5:
        raise ValueError(f"reference {spec!r}: expected FILE.h5:GROUP[:INDEX] or a .json result")
    atoms, hessian = _read_hdf5(source)
    if hessian is None:
        raise DataError(
            "this conformer has no reference Hessian",
            file=source.file,
            group=source.group,
            field="hessian",
            index=source.index,
        )
    if atomic_numbers is not None and list(atoms.numbers) != [int(z) for z in atomic_numbers]:
        raise DataError(
            f"reference atoms {atoms.get_chemical_formula()} ({list(atoms.numbers)}) differ from "
            f"the structure's {list(atomic_numbers)}",
            file=source.file,
            group=source.group,
            field="atomic_numbers",
        )
    periodic = bool(atoms.pbc.any())
    return atoms, harmonic_analysis(hessian, atoms.get_masses(), atoms.positions, periodic=periodic)
