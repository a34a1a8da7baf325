"""Files ASE reads and writes (extxyz, ASE .traj, DFT outputs): frames <-> groups.

Reading: every frame of ``ase.io.read(path, index=":")`` becomes a
:class:`~mlip.data.graph.Structure` with the energy (eV), forces (eV/A), stress
(eV/A^3, Voigt, ASE sign) and Hessian (eV/A^2) stored in its attached calculator
results, ``atoms.info`` or ``atoms.arrays`` under the names of :class:`LabelKeys`
(``--energy-key REF_energy`` for MACE/NequIP files). Frames are grouped
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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class LabelKeys:
    """Where a frame keeps its labels: the names of the energy (eV), forces (eV/A), stress
    (eV/A^3, 6 Voigt or 9 values) and Hessian (eV/A^2, 3N x 3N values, or per-atom rows
    (N, 3N)). Each name is looked up as a calculator result, then in ``atoms.info``, then
    in ``atoms.arrays``; MACE and NequIP files use e.g. ``REF_energy``, ``REF_forces``."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"
    hessian: str = "hessian"


DEFAULT_KEYS = LabelKeys()


def _property(atoms: Atoms, name: str) -> np.ndarray | float | None:
    """A stored label ``name`` (no new calculation): a calculator result, an
    ``atoms.info`` entry or an ``atoms.arrays`` column; None when absent."""
    if atoms.calc is not None:
        try:
            value = atoms.calc.get_property(name, atoms, allow_calculation=False)
        except Exception:  # noqa: BLE001 (ASE raises several types for absent results)
            value = None
        if value is not None:
            return value
    if name in atoms.info:
        return atoms.info[name]
    if name in atoms.arrays:
        return atoms.arrays[name]
    return None


def _available(atoms: Atoms) -> str:
    """The label names a frame offers (for the missing-energy message)."""
    names = [] if atoms.calc is None else sorted(getattr(atoms.calc, "results", {}))
    names += sorted(k for k, v in atoms.info.items() if np.ndim(v) <= 1)
    names += sorted(k for k in atoms.arrays if k not in ("numbers", "positions"))
    return ", ".join(names) or "none"


def structure_from_atoms(
    atoms: Atoms, file: str, group: str, index: int, keys: LabelKeys | None = None
) -> Structure:
    """A labelled Structure from one frame; DataError naming file/group/frame if unusable.

    ``keys`` (:class:`LabelKeys`) names the labels (default: ``energy``, ``forces``...).
    """
    keys = keys or DEFAULT_KEYS
    energy = _property(atoms, keys.energy)
    if energy is None:
        raise DataError(
            f"frame has no energy '{keys.energy}' (a calculator result, info or arrays "
            f"entry; this frame has: {_available(atoms)}); name it with --energy-key",
            file=file,
            group=group,
            field=keys.energy,
            index=index,
        )
    try:
        energy = float(np.asarray(energy, dtype=np.float64).reshape(()))
    except (TypeError, ValueError) as err:
        message = f"energy is not one number ({err})"
        raise DataError(message, file, group, keys.energy, index) from err
    forces = _property(atoms, keys.forces)
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != (len(atoms), 3):
            raise DataError(
                f"forces of shape {forces.shape}, expected ({len(atoms)}, 3)",
                file, group, keys.forces, index,
            )  # fmt: skip
    stress = _property(atoms, keys.stress)
    if stress is not None:
        stress = np.asarray(stress, dtype=np.float64)
        stress = stress.reshape(3, 3) if stress.size == 9 else stress
        stress = matrix_to_voigt(stress) if stress.shape == (3, 3) else stress.reshape(-1)
        if stress.shape != (6,):
            raise DataError("stress needs 6 (Voigt) or 9 values", file, group, keys.stress, index)
    hessian = _property(atoms, keys.hessian)
    if hessian is not None:
        hessian = np.asarray(hessian, dtype=np.float64)
        dof = 3 * len(atoms)
        if hessian.size != dof * dof:
            raise DataError(
                f"Hessian of {hessian.size} values, expected {dof} x {dof}",
                file, group, keys.hessian, index,
            )  # fmt: skip
        hessian = hessian.reshape(dof, dof)
    if atoms.pbc.any() and atoms.cell.rank == 0:
        raise DataError("periodic frame without a cell", file, group, "cell", index)
    structure = Structure.from_atoms(atoms, keep_cell=True)
    structure.energy = energy
    structure.forces = forces
    structure.stress = stress
    structure.hessian = hessian
    structure.index = index
    return structure


def group_frames(frames: list[Atoms]) -> list[tuple[str, list[tuple[int, Atoms]]]]:
    """Frames grouped by ``info["group"]``, atomic numbers and pbc: (name, [(frame
    index, atoms)]) in order of first appearance; names as in the module docstring."""
    keyed: dict[tuple, list[tuple[int, Atoms]]] = {}
    for k, atoms in enumerate(frames):
        key = (atoms.info.get(GROUP_KEY), tuple(atoms.numbers), tuple(atoms.pbc))
        keyed.setdefault(key, []).append((k, atoms))
    out, used = [], set()
    for (label, _, _), items in keyed.items():
        base = str(label) if label is not None else items[0][1].get_chemical_formula()
        name, suffix = base.replace("/", "_"), 0
        while name in used:
            suffix += 1
            name = f"{base}_{suffix}"
        used.add(name)
        out.append((name, items))
    return out


def read_ase(
    path: str | os.PathLike, format: str | None = None, keys: LabelKeys | None = None
) -> list[Group]:
    """Read every frame of an ASE-readable file and group them (see module docstring).

    ``format`` is an ASE format name (None: ASE guesses). ``keys`` names the labels
    (:class:`LabelKeys`). Frames without an energy raise :class:`DataError`;
    forces/stress may be missing (then absent from the group, which requires them on all
    frames of a group or on none); Hessians may be on some frames only.
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
    groups = []
    for name, items in group_frames(frames):
        structures = [structure_from_atoms(a, file, name, k, keys) for k, a in items]
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
