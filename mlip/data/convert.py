"""Convert labelled data between formats; mlip-hdf5 (eV, Angstrom) is the hub.

Inputs (``format``):

- ``ase``: anything ``ase.io.read`` parses with energies (extxyz, .traj, DFT outputs)
- ``rmd17``: revised MD17 ``.npz`` (kcal/mol, kcal/mol/A)
- ``ani1x``: ANI-1x HDF5 (Hartree, Hartree/A; ``level_of_theory`` picks the key prefix)
- ``spice``: SPICE HDF5 (Bohr, Hartree, Hartree/Bohr gradients)
- ``mlip``: mlip-hdf5

Outputs: mlip-hdf5 for ``.h5``/``.hdf5``/``.hdf`` names, otherwise any ASE-writable
format (guessed by ASE from the name), with energy/forces/stress in a
SinglePointCalculator. Everything is converted to eV, A, eV/A (forces = -dE/dR),
eV/A^2 and eV/A^3. Writes are atomic and refuse to overwrite unless asked.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from mlip.data.formats import ani1x, rmd17, spice
from mlip.data.formats.asefile import (
    DEFAULT_KEYS,
    LabelKeys,
    ase_write_format,
    read_ase,
    write_ase,
)
from mlip.data.formats.mlip_hdf5 import level_of_theory as mlip_level_of_theory
from mlip.data.formats.mlip_hdf5 import read_mlip
from mlip.data.hdf5 import FORMAT_NAME, HDF5_SUFFIXES
from mlip.data.writer import Group, GroupSummary, check_group, write_mlip_hdf5
from mlip.fields import option

FORMATS = ("ase", "rmd17", "ani1x", "spice", "mlip")


@dataclass
class ConversionResult:
    """What :func:`convert` wrote: per-group summaries and the output kind."""

    output: Path
    output_format: str  # "mlip" or an ASE format name
    level_of_theory: str
    groups: list[GroupSummary] = field(default_factory=list)
    hessians_dropped: int = 0

    def summary(self) -> str:
        """A line per group and one for the file (``mlip convert`` prints it)."""
        total = sum(s.num_conformers for s in self.groups)
        lines = [s.line() for s in self.groups]
        lines.append(
            f"wrote {self.output} ({self.output_format}, {len(self.groups)} groups, "
            f"{total} conformers, level of theory: {self.level_of_theory})"
        )
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        if not self.hessians_dropped:
            return []
        return [
            f"{self.hessians_dropped} Hessians dropped ({self.output_format} cannot store "
            "them; use .h5)"
        ]


_KEY_HELP = "name of the {} ({}) in an ASE file: a calculator result, info or arrays entry"


@dataclass(frozen=True)
class ConvertConfig:
    """One conversion (``mlip convert``): each field's help (metadata) is its option."""

    input: str = option(help="input file", metavar="IN")
    output: str = option(help="output file (.h5 for mlip-hdf5)", metavar="OUT")
    format: str = option(
        "auto", "input format (auto: detected from content and extension)",
        choices=("auto", *FORMATS),
    )  # fmt: skip
    level_of_theory: str | None = option(
        None,
        "label recorded in the output; for ANI-1x input, the key prefix to read (none: "
        "wb97x_dz; e.g. wb97x_tz, 'ccsd(t)_cbs')",
    )
    energy_key: str = option(
        DEFAULT_KEYS.energy, _KEY_HELP.format("energy", "eV") + "; MACE/NequIP: REF_energy"
    )
    forces_key: str = option(
        DEFAULT_KEYS.forces, _KEY_HELP.format("forces", "eV/A") + "; MACE/NequIP: REF_forces"
    )
    stress_key: str = option(
        DEFAULT_KEYS.stress, _KEY_HELP.format("stress", "eV/A^3, Voigt or 3x3")
        + "; MACE/NequIP: REF_stress",
    )  # fmt: skip
    hessian_key: str = option(DEFAULT_KEYS.hessian, _KEY_HELP.format("Hessian", "eV/A^2, 3N x 3N"))
    overwrite: bool = option(False, "overwrite OUT if it exists", flag="--force")

    def run(self) -> ConversionResult:
        """:func:`convert` with these settings."""
        keys = LabelKeys(self.energy_key, self.forces_key, self.stress_key, self.hessian_key)
        return convert(self.input, self.output, self.format, self.level_of_theory,
                       overwrite=self.overwrite, keys=keys)  # fmt: skip


def _detect_hdf5(path: Path) -> str:
    with h5py.File(path, "r") as h5:
        fmt = h5.attrs.get("format")
        if (fmt.decode() if isinstance(fmt, bytes) else fmt) == FORMAT_NAME:
            return "mlip"
        for name in h5:
            group = h5[name]
            if not isinstance(group, h5py.Group):
                continue
            if "conformations" in group:
                return "spice"
            if "coordinates" in group:
                return "ani1x"
            break
    raise ValueError(
        f"{path}: HDF5 layout not recognised (no 'format={FORMAT_NAME}' attribute, and its first "
        "group has neither 'conformations' (SPICE) nor 'coordinates' (ANI-1x)); "
        f"pass --format, one of {FORMATS}"
    )


def detect_format(path: str | os.PathLike) -> str:
    """The input format of ``path`` from its content (HDF5, npz) or else its extension.

    HDF5 files: ``mlip`` if the ``format`` attribute says so, ``spice`` if groups hold
    ``conformations``, ``ani1x`` if they hold ``coordinates``. ``.npz`` with
    ``nuclear_charges``: ``rmd17``. Anything else: ``ase`` when ASE knows the extension
    or content. Raises FileNotFoundError or ValueError (unknown format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    if h5py.is_hdf5(path):
        return _detect_hdf5(path)
    if zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as npz:
            if "nuclear_charges" in npz.files:
                return "rmd17"
            raise ValueError(
                f"{path}: .npz file without 'nuclear_charges' (keys {npz.files}); only revised "
                "MD17 npz files are supported"
            )
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    try:
        name = filetype(str(path))
    except (UnknownFileTypeError, OSError) as err:
        raise ValueError(
            f"{path}: unknown format ({err}); pass --format, one of {FORMATS}"
        ) from err
    if name not in ioformats or not ioformats[name].can_read:
        raise ValueError(
            f"{path}: unknown format {name!r} (neither HDF5, rMD17 npz, nor a format ASE "
            f"reads); pass --format, one of {FORMATS}"
        )
    return "ase"


def read_groups(
    path: str | os.PathLike,
    format: str = "auto",
    level_of_theory: str | None = None,
    keys: LabelKeys | None = None,
) -> tuple[Iterable[Group], str]:
    """Groups of ``path`` (possibly a lazy iterator) and the level-of-theory label.

    ``level_of_theory``: for ``ani1x`` the key prefix to read (default ``wb97x_dz``);
    for the other formats the label to record (default: the file's own, or a known one).
    ``keys``: the label names of ASE files (:class:`LabelKeys`; other formats have fixed
    names, so other keys there are a ValueError).
    """
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected 'auto' or one of {FORMATS}")
    if keys is not None and keys != DEFAULT_KEYS and fmt != "ase":
        raise ValueError(
            f"{path}: label key names (--energy-key ...) apply to ASE files; this is {fmt!r}"
        )
    if not Path(path).is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    if fmt == "ani1x":
        prefix = level_of_theory or ani1x.DEFAULT_LEVEL
        return ani1x.read_ani1x(path, prefix), ani1x.level_label(prefix)
    if fmt == "spice":
        return spice.read_spice(path), level_of_theory or spice.LEVEL_OF_THEORY
    if fmt == "rmd17":
        return rmd17.read_rmd17(path), level_of_theory or rmd17.LEVEL_OF_THEORY
    if fmt == "mlip":
        label = level_of_theory or mlip_level_of_theory(path) or "unknown"
        return read_mlip(path), label
    return read_ase(path, keys=keys), level_of_theory or "unknown"


def _checked(groups: Iterable[Group], file: str, out: list[GroupSummary]) -> Iterator[Group]:
    """Validate each group against its input file, recording summaries as they pass."""
    for group in groups:
        out.append(check_group(group, file=file))
        yield group


def convert(
    source: str | os.PathLike,
    output: str | os.PathLike,
    format: str = "auto",
    level_of_theory: str | None = None,
    overwrite: bool = False,
    compression: str | None = "gzip",
    keys: LabelKeys | None = None,
) -> ConversionResult:
    """Convert ``source`` (format ``format``, see module docstring) into ``output``.

    ``keys`` names the labels of an ASE input (:class:`LabelKeys`, e.g.
    ``LabelKeys(energy="REF_energy", forces="REF_forces")`` for MACE/NequIP files).

    The output is mlip-hdf5 when its suffix is .h5/.hdf5/.hdf, else an ASE format
    guessed from its name. Bad input raises :class:`~mlip.errors.DataError` naming file, group and
    field; an existing output raises FileExistsError unless ``overwrite``. No partial
    output is left on failure.
    """
    source, output = Path(source), Path(output)
    if output.exists() and source.resolve() == output.resolve():
        raise ValueError(f"input and output are the same file: {source}")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True (CLI: --force) to replace it")
    to_hdf5 = output.suffix.lower() in HDF5_SUFFIXES
    fmt = "mlip" if to_hdf5 else ase_write_format(output)  # fail early on a bad output name
    groups, label = read_groups(source, format, level_of_theory, keys)
    summaries: list[GroupSummary] = []
    checked = _checked(groups, str(source), summaries)
    if to_hdf5:
        write_mlip_hdf5(output, checked, label, overwrite=overwrite, compression=compression)
        return ConversionResult(output, fmt, label, summaries)
    dropped = write_ase(output, checked, format=fmt, overwrite=overwrite)
    return ConversionResult(output, fmt, label, summaries, dropped)


__all__ = [
    "FORMATS",
    "ConversionResult",
    "ConvertConfig",
    "LabelKeys",
    "convert",
    "detect_format",
    "read_groups",
]
