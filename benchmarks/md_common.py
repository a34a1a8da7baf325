"""What several benchmarks share for timing a model on a structure (units: eV, Angstrom).

A separate module from ``common.py`` (scripts import it from their own folder, as they
import ``common``).
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import torch


def model_for(
    model: torch.nn.Module, atoms: ase.Atoms | Sequence[int]
) -> tuple[torch.nn.Module, str]:
    """The model to time on ``atoms`` (or atomic numbers) and a note for the table.

    A model that lacks an element of ``atoms`` is replaced by its untrained twin for the
    union of elements (:func:`mlip.model.covering_model`: the cost, not the values, is
    what a timing measures); the note then says so.
    """
    from mlip.model import covering_model

    numbers = atoms.numbers if isinstance(atoms, ase.Atoms) else atoms
    chosen = covering_model(model, numbers)
    return chosen, "" if chosen is model else " (untrained twin: element not in the model)"
