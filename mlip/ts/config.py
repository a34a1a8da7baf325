"""Every default of ``mlip ts`` in one place: :class:`TSConfig`.

Units: Angstrom, eV, eV/A (forces), cm^-1 (frequencies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class TSConfig:
    """One transition-state search: the guess, Sella's settings, the checks, the outputs."""

    model: str = ""  # model file (mlip.model.load_model)
    guess: str = ""  # ASE-readable file or FILE.h5[:GROUP[:INDEX]]
    fmax: float = 1e-3  # eV/A, saddle convergence (largest force)
    steps: int = 500  # Sella steps at most
    internal: bool = False  # Sella's internal coordinates (molecules)
    hessian_every: int | None = None  # exact Hessian every k steps (None: Sella decides)
    imaginary_tol: float = 5.0  # cm^-1: frequencies below -tol count as imaginary
    displacement: float = 0.1  # A, largest atomic step along +/- the imaginary mode
    minimum_fmax: float = 1e-4  # eV/A, relaxation of the two minima (BFGS + Newton)
    minimum_steps: int = 2000
    json: str | None = None  # the result (energies, barriers, frequencies)
    traj: str | None = None  # ASE trajectory of the saddle search
    path: str | None = None  # extxyz: reverse minimum, saddle, forward minimum
    device: str = "cpu"
    dtype: str = "float64"

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
