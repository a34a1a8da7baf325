"""Read a structure (and its reference Hessian) for vibrational analysis.

A structure is either any file ASE reads (its last frame), or one conformer of an
mlip HDF5 file written ``FILE.h5[:GROUP[:INDEX]]`` (INDEX defaults to 0; GROUP may be
left out when the file has one group): the rules of :mod:`mlip.data.spec`. Positions
in Angstrom, the Hessian (if the conformer carries one) in eV/A^2, atom-major (3N, 3N).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from mlip.data.spec import SPEC_SYNTAX, parse_structure_spec, read_atoms, read_conformer
from mlip.errors import DataError
from mlip.vib.harmonic import HarmonicResult, harmonic_analysis


def read_structure(spec: str) -> tuple[Atoms, np.ndarray | None]:
    """(atoms, hessian or None) from an ASE-readable file or ``FILE.h5[:GROUP[:INDEX]]``.

    For an ASE file (its last frame) the Hessian is None. Errors name the file, group
    and index.
    """
    source = parse_structure_spec(spec)
    if not source.is_hdf5:
        return read_atoms(source)[0], None
    structure = read_conformer(source)
    return structure.to_atoms(), structure.hessian


def read_reference(
    spec: str, atomic_numbers: Sequence[int] | np.ndarray | None = None
) -> tuple[Atoms | None, HarmonicResult]:
    """A reference analysis: ``FILE.h5[:GROUP[:INDEX]]`` with a Hessian, or a saved JSON.

    Returns (atoms or None for JSON, HarmonicResult). A conformer without a Hessian
    raises :class:`DataError` naming file, group and index; so does one whose atoms
    differ from ``atomic_numbers`` (same elements in the same order), when given.
    """
    if spec.endswith(".json"):
        return None, HarmonicResult.from_json(spec)
    source = parse_structure_spec(spec)
    if not source.is_hdf5:
        raise ValueError(f"reference {spec!r}: expected {SPEC_SYNTAX} or a .json result")
    structure = read_conformer(source)
    atoms = structure.to_atoms()
    if structure.hessian is None:
        raise DataError(
            "this conformer has no reference Hessian",
            file=structure.file,
            group=structure.group,
            field="hessian",
            index=structure.index,
        )
    if atomic_numbers is not None and list(atoms.numbers) != [int(z) for z in atomic_numbers]:
        raise DataError(
            f"reference atoms {atoms.get_chemical_formula()} ({list(atoms.numbers)}) differ from "
            f"the structure's {list(atomic_numbers)}",
            file=structure.file,
            group=structure.group,
            field="atomic_numbers",
        )
    periodic = bool(atoms.pbc.any())
    return atoms, harmonic_analysis(
        structure.hessian, atoms.get_masses(), atoms.positions, periodic=periodic
    )
