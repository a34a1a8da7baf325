"""Phonons of crystals from the exact Hessian: ``mlip phonons`` as a library.

* :mod:`mlip.phonons.config`: :class:`PhononConfig`, every default of the command;
* :mod:`mlip.phonons.workflow`: :func:`run_phonons` -> :class:`PhononResult` (force
  constants from exact Hessian-vector products of the irreducible atoms via
  :mod:`mlip.integrations.phonopy`, band structure, DOS, thermal properties, imaginary
  modes by q-point, the stationarity and supercell-size warnings) and
  :func:`write_outputs` (JSON and PNG, atomic);
* :mod:`mlip.phonons.plot`: :func:`~mlip.phonons.plot.plot_bands_and_dos`.

Units: Angstrom, eV, THz, K; thermal properties per primitive cell in eV and eV/K.
"""

from mlip.phonons.config import DEFAULTS, PhononConfig, parse_mesh, parse_qpoints
from mlip.phonons.workflow import PhononResult, read_crystal, run_phonons, write_outputs

__all__ = [
    "DEFAULTS",
    "PhononConfig",
    "PhononResult",
    "parse_mesh",
    "parse_qpoints",
    "read_crystal",
    "run_phonons",
    "write_outputs",
]
