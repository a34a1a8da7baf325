"""Labelling structures with reference calculators (``mlip label``).

:mod:`~mlip.labelling.calculators`: calculator specs (emt, tblite, pyscf, mlip,
MODULE:FACTORY), one thin adapter per tool; :mod:`~mlip.labelling.hessian`: the
calculator's own Hessian or central differences of its forces;
:mod:`~mlip.labelling.label`: resumable, atomic labelling into the mlip HDF5 layout.
Units: eV, Angstrom.
"""

from mlip.labelling.calculators import KNOWN_SPECS, Labeller, make_labeller
from mlip.labelling.hessian import finite_difference_hessian, hessian_of
from mlip.labelling.label import LabelConfig, LabelResult, describe, label_one, label_structures

__all__ = [
    "KNOWN_SPECS",
    "LabelConfig",
    "LabelResult",
    "Labeller",
    "describe",
    "finite_difference_hessian",
    "hessian_of",
    "label_one",
    "label_structures",
    "make_labeller",
]
