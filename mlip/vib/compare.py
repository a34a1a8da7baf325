"""Mode-by-mode comparison of two harmonic analyses (frequencies in cm^-1).

Modes are matched in sorted (ascending) order, the usual convention when comparing a
model with a reference calculation of the same molecule; imaginary modes enter as
their negative values, so an imaginary mode against a real one counts the full gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlip.vib.harmonic import HarmonicResult


@dataclass
class ModeComparison:
    """Per-mode frequencies (cm^-1) of a prediction and a reference, with errors."""

    predicted: np.ndarray
    reference: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        """predicted - reference, cm^-1 (signed)."""
        return self.predicted - self.reference

    @property
    def mae(self) -> float:
        """Mean absolute error, cm^-1 (0 when there are no modes)."""
        return float(np.abs(self.errors).mean()) if len(self.errors) else 0.0

    @property
    def max_error(self) -> float:
        """Largest absolute error, cm^-1."""
        return float(np.abs(self.errors).max()) if len(self.errors) else 0.0

    def mae_below(self, cutoff: float = 1000.0) -> float:
        """MAE over the modes whose reference frequency is below ``cutoff`` (cm^-1): the
        soft modes (torsions, bends) a mean over all modes hides; NaN if there are none."""
        soft = self.reference < cutoff
        return float(np.abs(self.errors[soft]).mean()) if soft.any() else float("nan")

    def table(self) -> str:
        """Text table: mode, predicted, reference, error (cm^-1), then MAE and max error."""
        from mlip.vib.harmonic import format_frequency

        lines = [f"{'mode':>4}  {'predicted':>12}  {'reference':>12}  {'error':>10}"]
        rows = zip(self.predicted, self.reference, self.errors, strict=True)
        for k, (p, r, e) in enumerate(rows):
            lines.append(
                f"{k:>4}  {format_frequency(p):>12}  {format_frequency(r):>12}  {e:>+10.2f}"
            )
        soft = self.mae_below(1000.0)
        lines.append(
            f"MAE {self.mae:.3f} cm^-1, max error {self.max_error:.3f} cm^-1, "
            f"MAE below 1000 cm^-1 {soft:.3f}"
        )
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "predicted": self.predicted.tolist(),
            "reference": self.reference.tolist(),
            "errors": self.errors.tolist(),
            "mae": self.mae,
            "max_error": self.max_error,
            "mae_below_1000": self.mae_below(1000.0),
            "unit": "cm^-1",
        }


def compare_modes(predicted: HarmonicResult, reference: HarmonicResult) -> ModeComparison:
    """Compare two analyses of the same system mode by mode (sorted order)."""
    if predicted.num_modes != reference.num_modes:
        raise ValueError(
            f"cannot compare {predicted.num_modes} predicted modes ({predicted.geometry}) "
            f"with {reference.num_modes} reference modes ({reference.geometry})"
        )
    return ModeComparison(
        predicted=np.sort(predicted.frequencies), reference=np.sort(reference.frequencies)
    )
