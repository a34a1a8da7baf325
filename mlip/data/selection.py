"""Which atoms of a structure a partial Hessian or a vibrational analysis covers.

The rule of ASE's ``Vibrations(indices=...)``: explicit ``indices`` are taken as given
(in that order, duplicates refused); without them every atom that no ``FixAtoms``
constraint holds. The calculator (:meth:`mlip.calculator.MLIPCalculator.get_hessian`),
the vibrational analysis (:func:`mlip.vib.analyse_atoms`) and ``mlip vib --indices``
share this one definition.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms


def fixed_atoms(atoms: Atoms) -> np.ndarray:
    """(N,) bool: atoms held by a ``FixAtoms`` constraint (other constraints are ignored)."""
    fixed = np.zeros(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed[constraint.get_indices()] = True
    return fixed


def selected_atoms(atoms: Atoms, indices: Iterable[int] | None = None) -> np.ndarray:
    """Atom indices (k,) int64: ``indices`` as given, or the atoms not fixed by FixAtoms.

    ValueError for an index outside 0..N-1 (negative ones count from the end, as in
    numpy), a repeated index, or an empty selection.
    """
    n = len(atoms)
    if indices is None:
        chosen = np.flatnonzero(~fixed_atoms(atoms))
        if len(chosen) == 0:
            raise ValueError(f"all {n} atoms are fixed (FixAtoms): no Hessian rows to compute")
        return chosen.astype(np.int64)
    chosen = np.asarray(list(indices), dtype=np.int64).reshape(-1)
    bad = chosen[(chosen < -n) | (chosen >= n)]
    if len(bad):
        raise ValueError(f"atom indices {bad.tolist()} out of range for {n} atoms")
    chosen = np.where(chosen < 0, chosen + n, chosen)
    if len(chosen) == 0:
        raise ValueError("indices is empty: select at least one atom")
    if len(np.unique(chosen)) != len(chosen):
        raise ValueError(f"atom indices repeat: {chosen.tolist()}")
    return chosen


def coordinates(atoms: np.ndarray) -> np.ndarray:
    """Atom-major Cartesian coordinate indices (3k,) of atom indices (k,): 3i, 3i+1, 3i+2."""
    atoms = np.asarray(atoms, dtype=np.int64).reshape(-1)
    return (3 * atoms[:, None] + np.arange(3)).reshape(-1)
