"""Every default of ``mlip vib`` in one place: :class:`VibConfig`.

Units: forces eV/A, temperature K, pressure Pa (ideal gas), frequencies cm^-1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mlip.fields import device_field, dtype_field, option
from mlip.vib.relax import STATIONARY_FMAX


@dataclass(frozen=True)
class VibConfig:
    """One vibrational analysis: the structure, the optional relaxation and checks, the
    thermochemistry, the outputs. Each field's help (metadata) is its ``mlip vib`` option."""

    model: str = option("", "model file (mlip.model.load_model)")
    structure: str = option("", "ASE-readable file or FILE.h5[:GROUP[:INDEX]]")
    optimize: bool = option(False, "relax first (BFGS + Newton steps)")
    fmax: float = option(1e-4, "force threshold of --optimize", unit="eV/A")
    indices: tuple[int, ...] | None = option(
        None,
        "analyse only these atoms (0-based), the others held fixed: only their Hessian rows "
        "are computed, nothing is projected (ASE's Vibrations(indices=...)); none: the "
        "atoms no FixAtoms constraint of the input holds",
        metavar="I",
    )
    warn_fmax: float = option(
        STATIONARY_FMAX,
        "warn when the largest force on an analysed atom is above this (not a stationary "
        "point of the model)",
        unit="eV/A",
    )
    reference: str | None = option(
        None,
        "reference Hessian FILE.h5[:GROUP[:INDEX]] (or a JSON written by --json): a "
        "per-mode comparison with MAE and max error in cm^-1",
    )
    temperature: float = option(298.15, "temperature of the thermochemistry", unit="K")
    pressure: float = option(101325.0, "pressure of the ideal gas", unit="Pa")
    symmetry_number: int = option(1, "rotational symmetry number")
    json: str | None = option(None, "write the analysis as JSON", metavar="OUT.json")
    plot: str | None = option(None, "save a (broadened) stick spectrum", metavar="OUT.png")
    device: str = device_field()
    dtype: str = dtype_field("float64")

    def __post_init__(self) -> None:
        if self.indices is not None:
            object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
        for name in ("fmax", "warn_fmax", "temperature", "pressure"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.symmetry_number < 1:
            raise ValueError(f"symmetry_number must be >= 1, got {self.symmetry_number}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))
