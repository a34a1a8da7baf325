"""Readers and writers for external data formats; each returns :class:`mlip.data.writer.Group`.

All readers convert to the package units: eV, Angstrom, eV/A (forces = -dE/dR),
eV/A^2, eV/A^3.
"""

from mlip.data.formats.ani1x import read_ani1x
from mlip.data.formats.asefile import read_ase, write_ase
from mlip.data.formats.mlip_hdf5 import read_mlip
from mlip.data.formats.rmd17 import read_rmd17
from mlip.data.formats.spice import read_spice

__all__ = ["read_ani1x", "read_ase", "read_mlip", "read_rmd17", "read_spice", "write_ase"]
