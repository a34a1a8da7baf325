"""Vibrational analysis from an exact Hessian (cm^-1, eV, eV/A^2, amu, Angstrom).

Layers, bottom to top (each module imports only those above it in this list):

* :mod:`mlip.vib.harmonic`: :func:`harmonic_analysis` -> :class:`HarmonicResult`
  (Eckart-projected normal modes of :mod:`mlip.modes`, frequencies, zero-point energy,
  ``ase.vibrations.VibrationsData``, JSON, tables) and the mode-by-mode comparison
  :func:`compare_modes` -> :class:`ModeComparison` (also ``result.compare(reference)``);
* :mod:`mlip.vib.thermo`: :func:`thermochemistry` ``(result, atoms)`` via ASE;
  :mod:`mlip.vib.plot`: :func:`plot_spectrum` ``(result.frequencies, path)``;
  :mod:`mlip.vib.io`: :func:`read_structure` (an ASE file or an mlip HDF5 conformer
  ``FILE.h5[:GROUP[:INDEX]]``, see :mod:`mlip.data.spec`) and :func:`read_reference`;
* :mod:`mlip.vib.relax`: :func:`relax`, tight relaxation (ASE optimiser + Newton steps
  with the Hessian), :func:`relax_cell` (positions and cell, for crystals) and
  :func:`stationarity_warning`, the check that a geometry is a
  stationary point of the model before its frequencies are trusted.

The Hessian itself comes from :meth:`mlip.calculator.MLIPCalculator.get_hessian` (or
any other source); this package only analyses it, like ASE's VibrationsData.
"""

from mlip.vib.harmonic import (
    CM1_PER_SQRT_EV_A2_AMU,
    EV_PER_CM1,
    HarmonicResult,
    ModeComparison,
    analyse_atoms,
    compare_modes,
    format_frequency,
    harmonic_analysis,
)
from mlip.vib.io import read_reference, read_structure
from mlip.vib.plot import plot_spectrum
from mlip.vib.relax import (
    STATIONARY_FMAX,
    STATIONARY_STRESS_GPA,
    RelaxResult,
    relax,
    relax_cell,
    stationarity_warning,
)
from mlip.vib.thermo import thermochemistry

__all__ = [
    "CM1_PER_SQRT_EV_A2_AMU",
    "EV_PER_CM1",
    "HarmonicResult",
    "ModeComparison",
    "RelaxResult",
    "STATIONARY_FMAX",
    "STATIONARY_STRESS_GPA",
    "analyse_atoms",
    "compare_modes",
    "format_frequency",
    "harmonic_analysis",
    "plot_spectrum",
    "read_reference",
    "read_structure",
    "relax",
    "relax_cell",
    "stationarity_warning",
    "thermochemistry",
]
