"""The final E0 refit: per-element energy shifts (eV) from a trained model's residuals.

Forces fix the energy only up to a constant per atom, and the default energy weight
(1:100) pins that constant loosely: the per-atom energy error of a trained model is
mostly a common offset (docs/benchmarks/accuracy.md). The least-
squares fit of the residuals E_ref - E_model on the element counts, added to the model's
E0, removes it and changes no force, stress or Hessian.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from mlip import keys
from mlip.data.graph import Structure, build_batch
from mlip.derivatives import compute
from mlip.train.statistics import composition, fit_atomic_energies


def atomic_energy_shifts(
    model: torch.nn.Module,
    chunks: Iterable[Sequence[Structure]],
    elements: Sequence[int],
    r_max: float,
    device: torch.device | str = "cpu",
) -> np.ndarray | None:
    """Least-squares E0 shifts (eV, one per element of ``elements``) of ``model`` on the
    conformers of ``chunks`` (batches of structures; those without an energy are left
    out), evaluated in float64; None without any energy."""
    model = model.double()
    counts, residuals = [], []
    for chunk in chunks:
        chunk = [s for s in chunk if s.energy is not None]
        if not chunk:
            continue
        batch = build_batch(chunk, r_max, torch.float64, device)
        with torch.no_grad():
            energy = compute(model, batch, forces=False)[keys.ENERGY]
        residuals.extend(s.energy - float(e) for s, e in zip(chunk, energy, strict=True))
        counts.extend(composition(s, elements) for s in chunk)
    if not residuals:
        return None
    return fit_atomic_energies(np.asarray(counts), np.asarray(residuals), list(elements))
