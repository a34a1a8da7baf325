"""Transition states with the exact Hessian: ``mlip ts`` as a library.

* :mod:`mlip.ts.config`: :class:`TSConfig`, every default of the command;
* :mod:`mlip.ts.workflow`: :func:`find_transition_state` -> :class:`TransitionState`
  (Sella order-1 search with the analytic Hessian via :mod:`mlip.integrations.sella`,
  the one-imaginary-mode check, the minima on both sides, barriers) and
  :func:`write_outputs` (JSON, trajectory, path; atomic).

Units: eV, Angstrom, cm^-1.
"""

from mlip.ts.config import DEFAULTS, TSConfig
from mlip.ts.workflow import TransitionState, find_transition_state, write_outputs

__all__ = ["DEFAULTS", "TSConfig", "TransitionState", "find_transition_state", "write_outputs"]
