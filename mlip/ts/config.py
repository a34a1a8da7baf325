"""Every default of ``mlip ts`` in one place: :class:`TSConfig`.

Units: Angstrom, eV, eV/A (forces), cm^-1 (frequencies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mlip.fields import device_field, dtype_field, option


@dataclass(frozen=True)
class TSConfig:
    """One transition-state search: the guess, Sella's settings, the checks, the outputs.

    Each field's help (metadata) is its ``mlip ts`` option."""

    model: str = option("", "model file (mlip.model.load_model)")
    guess: str = option("", "ASE-readable file or FILE.h5[:GROUP[:INDEX]]")
    fmax: float = option(1e-3, "saddle convergence (largest force)", unit="eV/A")
    steps: int = option(500, "Sella steps at most")
    internal: bool = option(False, "Sella's internal coordinates (molecules)")
    hessian_every: int | None = option(
        None, "recompute the exact Hessian every k steps (none: when Sella needs it)"
    )
    imaginary_tol: float = option(
        5.0, "frequencies below minus this count as imaginary", unit="cm^-1"
    )
    displacement: float = option(
        0.1, "largest atomic step along +/- the imaginary mode before relaxing", unit="A"
    )
    minimum_fmax: float = option(
        1e-4, "convergence of the two minima (BFGS + Newton steps)", unit="eV/A"
    )
    minimum_steps: int = option(2000, "optimiser steps of each minimum at most")
    json: str | None = option(None, "energies, barriers, frequencies", metavar="OUT.json")
    traj: str | None = option(None, "ASE trajectory of the search", metavar="OUT.traj")
    path: str | None = option(
        None, "reverse minimum, saddle, forward minimum", metavar="OUT.extxyz"
    )
    device: str = device_field()
    dtype: str = dtype_field("float64")

    def __post_init__(self) -> None:
        for name in ("fmax", "imaginary_tol", "displacement", "minimum_fmax"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("steps", "minimum_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hessian_every is not None and self.hessian_every < 1:
            raise ValueError(f"hessian_every must be >= 1 or None, got {self.hessian_every}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


DEFAULTS = TSConfig()
