"""Vibrational analysis from an exact Hessian (cm^-1, eV, eV/A^2, amu, Angstrom).

* :func:`harmonic_analysis` -> :class:`HarmonicResult`: Eckart-projected normal modes,
  frequencies, zero-point energy; conversion to ``ase.vibrations.VibrationsData``,
  ASE thermochemistry, JSON, tables, spectrum plots and mode-by-mode comparison.
* :func:`relax`: tight relaxation (ASE optimiser + Newton steps with the Hessian).
* :func:`read_structure`: an ASE file or an mlip HDF5 conformer ``FILE.h5:GROUP[:INDEX]``.

The Hessian itself comes from :meth:`mlip.calculator.MLIPCalculator.get_hessian` (or
any other source); this package only analyses it, like ASE's VibrationsData.
"""

from mlip.vib.compare import ModeComparison, compare_modes
from mlip.vib.harmonic import (
    CM1_PER_SQRT_EV_A2_AMU,
    EV_PER_CM1,
    HarmonicResult,
    analyse_atoms,
    format_frequency,
    harmonic_analysis,
)
from mlip.vib.io import read_reference, read_structure
from mlip.vib.relax import RelaxResult, relax

__all__ = [
    "CM1_PER_SQRT_EV_A2_AMU",
    "EV_PER_CM1",
    "HarmonicResult",
    "ModeComparison",
    "RelaxResult",
    "analyse_atoms",
    "compare_modes",
    "format_frequency",
    "harmonic_analysis",
    "read_reference",
    "read_structure",
    "relax",
]
