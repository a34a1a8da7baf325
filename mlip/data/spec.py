"""Structure arguments: ``FILE.h5[:GROUP[:INDEX]]`` (mlip HDF5) or any file ASE reads.

The one parser and reader of the structure argument of ``mlip vib``, ``mlip md``
and the library functions behind them (:func:`mlip.vib.read_structure`,
:func:`mlip.md.read_structures`). The rules:

* a spec whose file part ends in an HDF5 suffix (:data:`mlip.data.hdf5.HDF5_SUFFIXES`,
  any case) followed by ``:`` or the end of the spec is an mlip HDF5 conformer; the
  first such suffix ends the file name. Anything else is a file for ``ase.io.read``;
* ``GROUP`` may be left out (``FILE.h5``, or ``FILE.h5::INDEX``) when the file holds
  exactly one group; otherwise a :class:`~mlip.errors.DataError` names the file and
  its groups;
* ``INDEX`` (an integer, default 0) picks one conformer of the group; a negative
  index counts from the end. Out of range, or not an integer, is an error naming the
  file and group.

Errors name the file, the group and the field: :class:`~mlip.errors.DataError` for
the content, FileNotFoundError for a missing file, ValueError for a malformed spec.
Positions in Angstrom; a conformer's Hessian (if any) in eV/A^2, (3N, 3N).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ase import Atoms

from mlip.data.graph import Structure
from mlip.data.hdf5 import HDF5_SUFFIXES, H5Dataset
from mlip.errors import DataError

SPEC_SYNTAX = "FILE.h5[:GROUP[:INDEX]]"
_HDF5_END = re.compile(
    "(?:" + "|".join(re.escape(s) for s in HDF5_SUFFIXES) + ")(?=:|$)", re.IGNORECASE
)
_MAX_LISTED_GROUPS = 20


@dataclass(frozen=True)
class StructureSpec:
    """A parsed structure argument: an ASE file, or an HDF5 file + group + index.

    ``group`` None for an HDF5 file means "the file's only group"; ``index`` is the
    conformer of the group (HDF5 only; negative counts from the end).
    """

    file: str
    is_hdf5: bool = False
    group: str | None = None
    index: int = 0
    # INDEX was written (read_frames: that conformer only); not part of equality
    index_given: bool = field(default=False, compare=False)


def parse_structure_spec(spec: str) -> StructureSpec:
    """Split ``FILE.h5[:GROUP[:INDEX]]`` (or a plain ASE file name) into its parts.

    Only the syntax is checked here (ValueError for too many fields or a non-integer
    INDEX); files are opened by :func:`read_conformer` / :func:`read_atoms`.
    """
    spec = os.fspath(spec)
    match = _HDF5_END.search(spec)
    if match is None:
        return StructureSpec(file=spec)
    file, rest = spec[: match.end()], spec[match.end() + 1 :]
    if match.end() == len(spec):
        return StructureSpec(file=file, is_hdf5=True)
    parts = rest.split(":")
    if len(parts) > 2:
        raise ValueError(f"expected {SPEC_SYNTAX}, got '{spec}'")
    index = 0
    if len(parts) == 2:
        try:
            index = int(parts[1])
        except ValueError:
            raise ValueError(f"INDEX must be an integer in '{spec}' ({SPEC_SYNTAX})") from None
    return StructureSpec(
        file=file, is_hdf5=True, group=parts[0] or None, index=index, index_given=len(parts) == 2
    )


def read_conformer(spec: str | StructureSpec) -> Structure:
    """The conformer an HDF5 spec names, with its labels (energy, forces, Hessian...).

    See the module docstring for the rules (optional GROUP, negative INDEX).
    """
    source = parse_structure_spec(spec) if isinstance(spec, str) else spec
    if not source.is_hdf5:
        raise ValueError(f"'{source.file}' is not an HDF5 structure ({SPEC_SYNTAX})")
    _check_exists(source.file)
    dataset = H5Dataset(source.file, groups=None if source.group is None else [source.group])
    try:
        names = [g.name for g in dataset.groups]
        if len(names) != 1:
            extra = len(names) - _MAX_LISTED_GROUPS
            listed = ", ".join(names[:_MAX_LISTED_GROUPS])
            listed += f" and {extra} more" if extra > 0 else ""
            raise DataError(
                f"an HDF5 structure needs a group, written {SPEC_SYNTAX}, when the file has "
                f"several: it has {len(names)} ({listed})",
                file=source.file,
            )
        count = len(dataset)
        if not -count <= source.index < count:
            raise DataError(
                f"index {source.index} out of range (group has {count} conformers)",
                file=source.file,
                group=names[0],
            )
        return dataset[source.index % count]
    finally:
        dataset.close()


def read_atoms(spec: str | StructureSpec, ase_index: int | str = -1) -> list[Atoms]:
    """The systems a spec names, as ``ase.Atoms``: one HDF5 conformer, or ASE frames.

    An HDF5 spec gives one system (:meth:`Structure.to_atoms` of :func:`read_conformer`:
    no labels, ASE's masses); an ASE file gives the frames ``ase.io.read(file,
    index=ase_index)`` returns (-1: the last, ":" all of them), as ASE read them.
    """
    source = parse_structure_spec(spec) if isinstance(spec, str) else spec
    if source.is_hdf5:
        return [read_conformer(source).to_atoms()]
    import ase.io

    _check_exists(source.file)
    frames = ase.io.read(source.file, index=ase_index)
    return frames if isinstance(frames, list) else [frames]


def read_frames(spec: str | StructureSpec) -> list[Structure]:
    """Every structure a spec names, geometry only, each with ``group`` and ``index`` set.

    ``FILE.h5`` gives every conformer of every group, ``FILE.h5:GROUP`` those of one
    group, ``FILE.h5:GROUP:INDEX`` that conformer; any other file gives every frame of
    ``ase.io.read(file, index=":")``, grouped by atoms and periodicity and named after
    the formula like :func:`mlip.data.formats.asefile.read_ase`. ``index`` numbers the
    structures of the spec (the frame's index; for HDF5 the conformer's position over
    the groups read). The labels of the input are dropped (``mlip label`` computes new
    ones).
    """
    source = parse_structure_spec(spec) if isinstance(spec, str) else spec
    _check_exists(source.file)
    if source.is_hdf5:
        if source.index_given:
            one = read_conformer(source)
            return [_geometry(one, one.group, one.index)]
        dataset = H5Dataset(source.file, groups=None if source.group is None else [source.group])
        try:
            everything = dataset.iterate(range(len(dataset)))
            return [_geometry(s, s.group, k) for k, s in enumerate(everything)]
        finally:
            dataset.close()
    import ase.io

    from mlip.data.formats.asefile import group_frames

    try:
        frames = ase.io.read(source.file, index=":")
    except Exception as err:  # noqa: BLE001 (ASE raises many kinds for an unreadable file)
        raise DataError(f"ASE could not read the file: {err}", file=source.file) from err
    frames = frames if isinstance(frames, list) else [frames]
    out = []
    for name, items in group_frames(frames):
        out.extend(_geometry(Structure.from_atoms(a, keep_cell=True), name, k) for k, a in items)
    return sorted(out, key=lambda s: s.index)


def _geometry(structure: Structure, group: str | None, index: int) -> Structure:
    return Structure(
        atomic_numbers=structure.atomic_numbers,
        positions=structure.positions,
        cell=structure.cell,
        pbc=structure.pbc,
        index=int(index),
        file=structure.file,
        group=group,
    )


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"structure file not found: {path}")
