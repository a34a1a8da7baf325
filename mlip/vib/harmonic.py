"""Harmonic vibrational analysis of a Cartesian Hessian (eV/A^2, amu, A -> cm^-1, eV).

Given the Hessian H = d2E/dR dR (3N x 3N, atom-major, eV/A^2) at a geometry R (A)
with masses m (amu), the normal modes are those of :func:`mlip.modes.normal_modes` (symmetrised,
mass-weighted, translations and rotations projected out in the Eckart frame: 3N - 6
modes, 3N - 5 linear, 3N - 3 periodic); this module adds the analysis on top of them:
frequencies in cm^-1 (imaginary as negative), Cartesian modes x = M^-1/2 q (the
convention of ase.vibrations.VibrationsData), the zero-point energy
ZPE = sum_real h c nu / 2 (eV), tables, JSON and mode-by-mode comparisons
(:class:`ModeComparison`). This is the bottom of :mod:`mlip.vib`: thermochemistry
(:mod:`mlip.vib.thermo`), spectrum plots (:mod:`mlip.vib.plot`) and structure input
(:mod:`mlip.vib.io`) are functions above it that take a :class:`HarmonicResult`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from mlip.data.selection import coordinates, selected_atoms
from mlip.fileio import atomic_write_text
from mlip.modes import (  # noqa: F401 (re-exported: the constants and helpers of vib)
    CM1_PER_SQRT_EV_A2_AMU,
    EV_PER_CM1,
    GEOMETRIES,
    external_basis,
    is_linear,
    normal_modes,
    validate,
)

if TYPE_CHECKING:
    from ase.vibrations import VibrationsData


@dataclass
class HarmonicResult:
    """Result of :func:`harmonic_analysis`. Units: cm^-1, eV, eV/A^2, amu, A.

    ``frequencies`` (n_vib,) cm^-1, ascending, imaginary modes as negative numbers;
    ``eigenvalues`` (n_vib,) eV/A^2/amu of the projected mass-weighted Hessian;
    ``modes`` (n_vib, N, 3) Cartesian displacements M^-1/2 q; ``mass_weighted_modes``
    (n_vib, 3N) orthonormal q; ``hessian`` the original (3N, 3N) Hessian, eV/A^2.
    A partial analysis (``geometry == "partial"``: the atoms ``indices`` of a larger
    system vibrate, the others stay fixed) holds the (3k, 3k) block of those atoms and
    their masses and positions; ``indices`` is None for a whole system.
    """

    hessian: np.ndarray
    masses: np.ndarray
    positions: np.ndarray
    geometry: str
    eigenvalues: np.ndarray
    frequencies: np.ndarray
    mass_weighted_modes: np.ndarray
    modes: np.ndarray
    indices: np.ndarray | None = None

    @property
    def num_modes(self) -> int:
        return len(self.frequencies)

    @property
    def imaginary(self) -> np.ndarray:
        """(n_vib,) bool: modes with a negative curvature (saddle-point directions)."""
        return self.eigenvalues < 0

    @property
    def energies(self) -> np.ndarray:
        """(n_vib,) complex quantum energies h c nu in eV; imaginary modes are imaginary."""
        magnitude = np.abs(self.frequencies) * EV_PER_CM1
        return np.where(self.imaginary, 1j * magnitude, magnitude + 0j)

    @property
    def zero_point_energy(self) -> float:
        """ZPE = sum over real modes of h c nu / 2, eV (imaginary modes excluded)."""
        real = self.frequencies[~self.imaginary]
        return float(0.5 * np.sum(real) * EV_PER_CM1)

    # -- conversions ---------------------------------------------------------
    def to_vibrations_data(self, atoms: Atoms) -> VibrationsData:
        """An ``ase.vibrations.VibrationsData`` of the original (unprojected) Hessian."""
        from ase.vibrations import VibrationsData

        self.check_atoms(atoms)
        indices = None if self.indices is None else self.indices.tolist()
        return VibrationsData.from_2d(atoms, self.hessian, indices=indices)

    def compare(self, reference: HarmonicResult) -> ModeComparison:
        """Mode-by-mode comparison with a reference (sorted order): errors, MAE, max, cm^-1.

        The same as :func:`compare_modes` ``(self, reference)``.
        """
        return compare_modes(self, reference)

    def table(self) -> str:
        """A text table of the modes: index, frequency (cm^-1, ``i`` for imaginary), meV."""
        lines = [f"{'mode':>4}  {'frequency / cm^-1':>18}  {'energy / meV':>12}"]
        for k, nu in enumerate(self.frequencies):
            lines.append(f"{k:>4}  {format_frequency(nu):>18}  {abs(nu) * EV_PER_CM1 * 1e3:>12.3f}")
        lines.append(f"zero-point energy: {self.zero_point_energy:.6f} eV")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready dict (lists), units in the keys' documentation above."""
        return {
            "units": {"frequencies": "cm^-1", "energy": "eV", "hessian": "eV/A^2", "mass": "amu"},
            "geometry": self.geometry,
            "frequencies": self.frequencies.tolist(),
            "imaginary": self.imaginary.tolist(),
            "zero_point_energy": self.zero_point_energy,
            "eigenvalues": self.eigenvalues.tolist(),
            "masses": self.masses.tolist(),
            "positions": self.positions.tolist(),
            "hessian": self.hessian.tolist(),
            "modes": self.modes.tolist(),
            "indices": None if self.indices is None else self.indices.tolist(),
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The :meth:`as_dict` content as a JSON string, also written to ``path`` if given."""
        text = json.dumps(self.as_dict(), indent=1)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> HarmonicResult:
        """Reload a result saved by :meth:`to_json` (re-runs the analysis on its Hessian)."""
        with open(path) as f:
            data = json.load(f)
        return harmonic_analysis(
            np.asarray(data["hessian"]),
            np.asarray(data["masses"]),
            np.asarray(data["positions"]),
            linear=data["geometry"] == "linear",
            periodic=data["geometry"] == "periodic",
            indices=data.get("indices"),
        )

    def check_atoms(self, atoms: Atoms) -> None:
        """ValueError unless ``atoms`` has as many atoms as the analysed system."""
        if self.indices is not None:
            if len(atoms) <= int(self.indices.max()):
                raise ValueError(
                    f"atoms has {len(atoms)} atoms but the partial Hessian is for atoms "
                    f"up to index {int(self.indices.max())}"
                )
            return
        if len(atoms) != len(self.masses):
            raise ValueError(
                f"atoms has {len(atoms)} atoms but the Hessian is for {len(self.masses)}"
            )


def format_frequency(nu: float) -> str:
    """'123.45' for a real mode, '123.45i' for an imaginary one (given as negative)."""
    return f"{abs(nu):.2f}i" if nu < 0 else f"{nu:.2f}"


def harmonic_analysis(
    hessian: np.ndarray,
    masses: np.ndarray,
    positions: np.ndarray,
    linear: bool | None = None,
    periodic: bool = False,
    linear_tol: float = 1e-5,
    indices: np.ndarray | list[int] | None = None,
) -> HarmonicResult:
    """Normal modes of a Cartesian Hessian with translations/rotations projected out.

    ``hessian`` (3N, 3N) eV/A^2, ``masses`` (N,) amu, ``positions`` (N, 3) A.
    ``linear=None`` detects a linear molecule from the principal moments of inertia
    (smallest < ``linear_tol`` x largest); ``periodic=True`` projects translations only.
    ``indices`` (N,) marks a partial analysis: ``hessian``, ``masses`` and ``positions``
    are those of the atoms ``indices`` of a larger system whose other atoms stay fixed,
    and nothing is projected (3N modes; ASE's ``Vibrations(indices=...)``).
    See the module docstring for the math. Returns a :class:`HarmonicResult`.
    """
    hessian, masses, positions = validate(hessian, masses, positions)
    partial = indices is not None
    if partial:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) != len(masses):
            raise ValueError(f"{len(indices)} indices for a Hessian of {len(masses)} atoms")
    found = normal_modes(hessian, masses, positions, linear, periodic, linear_tol, partial=partial)
    modes = found.cartesian.reshape(-1, len(masses), 3)
    return HarmonicResult(
        hessian=hessian,
        masses=masses,
        positions=positions,
        geometry=found.geometry,
        eigenvalues=found.eigenvalues,
        frequencies=found.frequencies,
        mass_weighted_modes=found.mass_weighted,
        modes=modes,
        indices=indices,
    )


def analyse_atoms(
    atoms: Atoms,
    calculator=None,  # noqa: ANN001 (an ase Calculator with get_hessian)
    linear: bool | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
) -> HarmonicResult:
    """Harmonic analysis of ``atoms`` with the Hessian of ``calculator.get_hessian``.

    ``calculator`` defaults to ``atoms.calc``; masses are the atoms' (amu). Periodic
    atoms (any pbc) get translations-only projection. The atoms that vibrate are
    ``indices``, or else those no ``FixAtoms`` holds (ASE's ``Vibrations`` rule,
    :func:`mlip.data.selection.selected_atoms`); when that is not every atom, only their
    Hessian rows are computed and the analysis is partial (no projection).
    """
    calculator = calculator if calculator is not None else atoms.calc
    if calculator is None or not hasattr(calculator, "get_hessian"):
        raise ValueError("analyse_atoms needs a calculator with get_hessian (MLIPCalculator)")
    chosen = selected_atoms(atoms, indices)
    if len(chosen) == len(atoms) and (chosen == np.arange(len(atoms))).all():
        # no FixAtoms here (indices None) or every atom asked for: the full Hessian
        hessian = (
            calculator.get_hessian(atoms)
            if indices is None
            else calculator.get_hessian(atoms, indices=chosen)
        )
        return harmonic_analysis(
            hessian,
            atoms.get_masses(),
            atoms.positions,
            linear=linear,
            periodic=bool(atoms.pbc.any()),
        )
    rows = calculator.get_hessian(atoms, indices=chosen)
    block = rows[:, coordinates(chosen)]
    return harmonic_analysis(
        block, atoms.get_masses()[chosen], atoms.positions[chosen], indices=chosen
    )


# -- comparison of two analyses ---------------------------------------------------
# Modes are matched in sorted (ascending) order, the usual convention when comparing a
# model with a reference calculation of the same molecule; imaginary modes enter as
# their negative values, so an imaginary mode against a real one counts the full gap.


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
