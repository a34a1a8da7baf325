"""Files ASE reads and writes (extxyz, ASE .traj, DFT outputs): frames <-> groups.

Reading: every frame of ``ase.io.read(path, index=":")`` becomes a
:class:`~mlip.data.graph.Structure` with the energy (eV), forces (eV/A) and stress
(eV/A^3, Voigt, ASE sign) stored in its attached calculator results. Frames are grouped
by their atomic-number sequence and periodicity (and by ``atoms.info["group"]`` when
set, which :func:`write_ase` writes, so group names survive a round trip). A group is
named after its chemical formula, with a suffix ``_1``, ``_2``... when several
orderings share one formula.

Writing: each structure becomes an ``ase.Atoms`` with a ``SinglePointCalculator``
carrying energy, forces and stress; ASE formats have no field for Hessians, which are
dropped (the count is returned).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.formats import UnknownFileTypeError, filetype, ioformats

from mlip.data.graph import Structure, matrix_to_voigt
from mlip.data.writer import Group
from mlip.errors import DataError
from mlip.fileio import atomic_path

GROUP_KEY = "group"  # atoms.info key holding the mlip-hdf5 group name


def _property(atoms: Atoms, name: str) -> np.ndarray | float | None:
    """A stored calculator result (no new calculation), or None when absent."""
    if atoms.calc is None:
        return None
    try:
        return atoms.calc.get_property(name, atoms, allow_calculation=False)
    except Exception:  # noqa: BLE001 (ASE raises several types for absent results)
        return None


def structure_from_atoms(atoms: Atoms, file: str, group: str, index: int) -> Structure:
    """A labelled Structure from one frame; DataError naming file/group/frame if unusable."""
    energy = _property(atoms, "energy")
    if energy is None:
        raise DataError(
            "frame has no energy (a calculator result 'energy' is required)",
            file=file,
            group=group,
            field="energy",
            index=index,
        )
    forces = _property(atoms, "forces")
    stress = _property(atoms, "stress")
    if stress is not None:
        stress = np.asarray(stress, dtype=np.float64)
        stress = matrix_to_voigt(stress) if stress.shape == (3, 3) else stress.reshape(-1)
    if atoms.pbc.any() and atoms.cell.rank == 0:
        raise DataError("periodic frame without a cell", file, group, "cell", index)
    structure = Structure.from_atoms(atoms, keep_cell=True)
    structure.energy = float(energy)
    structure.forces = None if forces is None else np.asarray(forces, dtype=np.float64)
    structure.stress = stress
    structure.index = index
    return structure


def read_ase(path: str | os.PathLike, format: str | None = None) -> list[Group]:
    """Read every frame of an ASE-readable file and group them (see module docstring).

    ``format`` is an ASE format name (None: ASE guesses). Frames without an energy
    raise :class:`DataError`; forces/stress may be missing (then absent from the group,
    which requires them on all frames of a group or on none).
    """
    file = str(path)
    try:
        frames = ase.io.read(file, index=":", format=format)
    except (OSError, ValueError, KeyError, IndexError, StopIteration, UnknownFileTypeError) as err:
        raise DataError(f"ASE could not read the file: {err}", file=file) from err
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise DataError("no frames in the file", file=file)
    keyed: dict[tuple, list[tuple[int, Atoms]]] = {}
    for k, atoms in enumerate(frames):
        key = (atoms.info.get(GROUP_KEY), tuple(atoms.numbers), tuple(atoms.pbc))
        keyed.setdefault(key, []).append((k, atoms))
    groups, used = [], set()
    for (label, _, _), items in keyed.items():
        base = str(label) if label is not None else items[0][1].get_chemical_formula()
        name, suffix = base.replace("/", "_"), 0
        while name in used:
            suffix += 1
            name = f"{base}_{suffix}"
        used.add(name)
        structures = [structure_from_atoms(a, file, name, k) for k, a in items]
        if any(s.cell is not None for s in structures):  # non-periodic frames may lack one
            for s in structures:
                s.cell = np.zeros((3, 3)) if s.cell is None else s.cell
        groups.append(Group(name, structures))
    return groups


def structure_to_atoms(structure: Structure, group: str | None = None) -> Atoms:
    """An ``ase.Atoms`` with a SinglePointCalculator holding energy/forces/stress."""
    atoms = structure.to_atoms()
    results = {}
    if structure.energy is not None:
        results["energy"] = float(structure.energy)
    if structure.forces is not None:
        results["forces"] = np.asarray(structure.forces, dtype=np.float64)
    if structure.stress is not None:
        results["stress"] = np.asarray(structure.stress, dtype=np.float64)
    atoms.calc = SinglePointCalculator(atoms, **results)
    if group is not None:
        atoms.info[GROUP_KEY] = group
    return atoms


def ase_write_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The ASE format that will write ``path`` (guessed from its name unless given)."""
    name = format or filetype(str(path), read=False)
    if name not in ioformats or not ioformats[name].can_write:
        raise ValueError(
            f"cannot write {path}: {name!r} is not an ASE format that can write "
            "(use .h5 for mlip-hdf5, or e.g. .xyz/.extxyz/.traj)"
        )
    return name


def write_ase(
    path: str | os.PathLike,
    groups: Iterable[Group],
    format: str | None = None,
    overwrite: bool = False,
) -> int:
    """Write all structures of ``groups`` to an ASE file, atomically; return Hessians dropped.

    Each frame carries ``info["group"]`` with its group name. Raises ValueError for an
    unknown or single-frame format given several frames, FileExistsError unless
    ``overwrite``.
    """
    fmt = ase_write_format(path, format)
    images, dropped = [], 0
    for group in groups:
        for s in group.structures:
            images.append(structure_to_atoms(s, group.name))
            dropped += s.hessian is not None
    if not images:
        raise DataError("nothing to write: no structures", file=str(path))
    if ioformats[fmt].single and len(images) > 1:
        raise ValueError(f"ASE format {fmt!r} holds one frame; got {len(images)}")
    with atomic_path(path, overwrite=overwrite, create_folder=False) as temp:
        ase.io.write(str(temp), images, format=fmt)
    return dropped
