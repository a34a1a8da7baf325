"""Harmonic vibrational analysis of a Cartesian Hessian (eV/A^2, amu, A -> cm^-1, eV).

Given the Hessian H = d2E/dR dR (3N x 3N, atom-major, eV/A^2) at a geometry R (A)
with masses m (amu):

1. symmetrise, H <- (H + H^T) / 2, and mass-weight, K = M^-1/2 H M^-1/2 with
   M = diag(m_1, m_1, m_1, m_2, ...);
2. build the external motions in the mass-weighted space (Eckart frame): the three
   translations t_a,i = sqrt(m_i) e_a and the three infinitesimal rotations about the
   centre of mass r_a,i = sqrt(m_i) e_a x (R_i - R_com); orthonormalise them. A linear
   molecule has one null rotation (about its axis), which is dropped, leaving 5; a
   periodic system keeps only the 3 translations (rotating a crystal rotates its cell,
   so rotations are not zero modes of a fixed-cell Hessian); a single atom has 3;
3. build an orthonormal basis B (3N x n_vib) of the complement of the external space
   and diagonalise B^T K B = U diag(lambda) U^T. This equals diagonalising P K P with
   P = 1 - sum_v v v^T on its non-trivial subspace, and gives exactly n_vib = 3N - 6
   (3N - 5 linear, 3N - 3 periodic, 0 for one atom) modes instead of dropping the
   lowest eigenvalues of K;
4. frequencies nu = sqrt(lambda) / (2 pi c) in cm^-1, via the constant
   ``CM1_PER_SQRT_EV_A2_AMU`` = 1e10 sqrt(e / amu) / (2 pi c 100) = 521.4709 cm^-1 per
   sqrt(eV/A^2/amu). A negative lambda (a saddle point) is reported as a negative
   frequency, -sqrt(|lambda|), and flagged in ``imaginary``;
5. mass-weighted modes q = B U (unit vectors), Cartesian modes x = M^-1/2 q (the
   convention of ase.vibrations.VibrationsData), zero-point energy
   ZPE = sum_real h c nu / 2 (eV).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from math import pi, sqrt
from typing import Any

import numpy as np
from ase import units
from scipy.linalg import null_space

#: cm^-1 per sqrt(eV / A^2 / amu): nu~ = sqrt(lambda) * this constant.
CM1_PER_SQRT_EV_A2_AMU: float = 1e10 * sqrt(units._e / units._amu) / (2.0 * pi * units._c * 100.0)
#: eV per cm^-1 (h c x 1 cm^-1), from ase.units.
EV_PER_CM1: float = float(units.invcm)

GEOMETRIES = ("monatomic", "linear", "nonlinear", "periodic")


@dataclass
class HarmonicResult:
    """Result of :func:`harmonic_analysis`. Units: cm^-1, eV, eV/A^2, amu, A.

    ``frequencies`` (n_vib,) cm^-1, ascending, imaginary modes as negative numbers;
    ``eigenvalues`` (n_vib,) eV/A^2/amu of the projected mass-weighted Hessian;
    ``modes`` (n_vib, N, 3) Cartesian displacements M^-1/2 q; ``mass_weighted_modes``
    (n_vib, 3N) orthonormal q; ``hessian`` the original (3N, 3N) Hessian, eV/A^2.
    """

    hessian: np.ndarray
    masses: np.ndarray
    positions: np.ndarray
    geometry: str
    eigenvalues: np.ndarray
    frequencies: np.ndarray
    mass_weighted_modes: np.ndarray
    modes: np.ndarray

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
    def to_vibrations_data(self, atoms):  # noqa: ANN001, ANN201 (ase.Atoms -> VibrationsData)
        """An ``ase.vibrations.VibrationsData`` of the original (unprojected) Hessian."""
        from ase.vibrations import VibrationsData

        self._check_atoms(atoms)
        return VibrationsData.from_2d(atoms, self.hessian)

    def thermochemistry(self, atoms, **options: Any) -> dict[str, float]:  # noqa: ANN001
        """Harmonic thermochemistry of ``atoms`` (ase.Atoms) in eV and eV/K.

        Molecules: ideal gas + rigid rotor + harmonic oscillator
        (``ase.thermochemistry.IdealGasThermo``); periodic systems: harmonic
        oscillators only (``HarmonicThermo``). Imaginary modes are left out and counted
        in ``n_imaginary``. ``options`` (temperature K, pressure Pa, geometry,
        symmetrynumber, spin, potentialenergy eV) are those of
        :func:`mlip.vib.thermo.thermochemistry`, which this calls.
        """
        from mlip.vib.thermo import thermochemistry

        self._check_atoms(atoms)
        return thermochemistry(self, atoms, **options)

    def compare(self, reference: HarmonicResult):  # noqa: ANN201 (-> ModeComparison)
        """Mode-by-mode comparison with a reference (sorted order): errors, MAE, max, cm^-1."""
        from mlip.vib.compare import compare_modes

        return compare_modes(self, reference)

    def table(self) -> str:
        """A text table of the modes: index, frequency (cm^-1, ``i`` for imaginary), meV."""
        lines = [f"{'mode':>4}  {'frequency / cm^-1':>18}  {'energy / meV':>12}"]
        for k, nu in enumerate(self.frequencies):
            lines.append(f"{k:>4}  {format_frequency(nu):>18}  {abs(nu) * EV_PER_CM1 * 1e3:>12.3f}")
        lines.append(f"zero-point energy: {self.zero_point_energy:.6f} eV")
        return "\n".join(lines)

    def plot_spectrum(
        self, path: str | os.PathLike, width: float = 10.0, broadening: str = "lorentzian"
    ) -> None:
        """Save a stick spectrum with optional Lorentzian broadening (FWHM ``width`` cm^-1)."""
        from mlip.vib.plot import plot_spectrum

        plot_spectrum(self.frequencies, path, width=width, broadening=broadening)

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
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The :meth:`as_dict` content as a JSON string, also written to ``path`` if given."""
        text = json.dumps(self.as_dict(), indent=1)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
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
        )

    def _check_atoms(self, atoms) -> None:  # noqa: ANN001
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
) -> HarmonicResult:
    """Normal modes of a Cartesian Hessian with translations/rotations projected out.

    ``hessian`` (3N, 3N) eV/A^2, ``masses`` (N,) amu, ``positions`` (N, 3) A.
    ``linear=None`` detects a linear molecule from the principal moments of inertia
    (smallest < ``linear_tol`` x largest); ``periodic=True`` projects translations only.
    See the module docstring for the math. Returns a :class:`HarmonicResult`.
    """
    hessian, masses, positions = _validate(hessian, masses, positions)
    n = len(masses)
    geometry = _geometry(masses, positions, linear, periodic, linear_tol)
    sym = 0.5 * (hessian + hessian.T)
    inv_sqrt_m = np.repeat(masses**-0.5, 3)
    mass_weighted = sym * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]

    external = external_basis(masses, positions, geometry)
    basis = null_space(external.T) if external.shape[1] < 3 * n else np.zeros((3 * n, 0))
    if basis.shape[1] != 3 * n - external.shape[1]:
        raise ValueError(f"vibrational basis has {basis.shape[1]} vectors, expected "
                         f"{3 * n - external.shape[1]}")  # fmt: skip
    projected = basis.T @ mass_weighted @ basis
    eigenvalues, vectors = np.linalg.eigh(0.5 * (projected + projected.T))
    q = (basis @ vectors).T  # (n_vib, 3N), orthonormal rows
    frequencies = np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * CM1_PER_SQRT_EV_A2_AMU
    modes = (q * inv_sqrt_m[None, :]).reshape(-1, n, 3)
    return HarmonicResult(
        hessian=hessian,
        masses=masses,
        positions=positions,
        geometry=geometry,
        eigenvalues=eigenvalues,
        frequencies=frequencies,
        mass_weighted_modes=q,
        modes=modes,
    )


def external_basis(masses: np.ndarray, positions: np.ndarray, geometry: str) -> np.ndarray:
    """Orthonormal mass-weighted translations (+ rotations about the COM), (3N, n_ext).

    n_ext = 3 (monatomic, periodic), 5 (linear: the null rotation about the axis is
    dropped by keeping the 5 leading singular vectors), 6 (nonlinear).
    """
    n = len(masses)
    sqrt_m = np.sqrt(masses)
    vectors = []
    for a in range(3):
        t = np.zeros((n, 3))
        t[:, a] = sqrt_m
        vectors.append(t.reshape(-1))
    wanted = {"monatomic": 3, "periodic": 3, "linear": 5, "nonlinear": 6}[geometry]
    if wanted > 3:
        centred = positions - (masses @ positions) / masses.sum()
        for a in range(3):
            axis = np.zeros(3)
            axis[a] = 1.0
            vectors.append((np.cross(axis, centred) * sqrt_m[:, None]).reshape(-1))
    stacked = np.stack(vectors, axis=1)  # (3N, 3 or 6)
    u, s, _ = np.linalg.svd(stacked, full_matrices=False)
    if wanted == 6 and s[5] < 1e-8 * s[0]:
        raise ValueError("linear=False but the molecule is linear (a rotation is null)")
    return u[:, :wanted]


def is_linear(masses: np.ndarray, positions: np.ndarray, tol: float = 1e-5) -> bool:
    """True when the smallest principal moment of inertia is < tol x the largest."""
    centred = positions - (masses @ positions) / masses.sum()
    r2 = (centred**2).sum(1)
    inertia = np.einsum("i,ab->ab", masses * r2, np.eye(3)) - np.einsum(
        "i,ia,ib->ab", masses, centred, centred
    )
    moments = np.linalg.eigvalsh(inertia)
    return bool(moments[0] < tol * moments[-1])


def _geometry(
    masses: np.ndarray, positions: np.ndarray, linear: bool | None, periodic: bool, tol: float
) -> str:
    if periodic:
        return "periodic"
    if len(masses) == 1:
        return "monatomic"
    if linear is None:
        linear = len(masses) == 2 or is_linear(masses, positions, tol)
    return "linear" if linear else "nonlinear"


def _validate(
    hessian: np.ndarray, masses: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # copies: the result must not change when the caller's arrays do (ASE relaxes
    # atoms.positions in place)
    hessian = np.array(hessian, dtype=np.float64, copy=True)
    masses = np.array(masses, dtype=np.float64, copy=True).reshape(-1)
    positions = np.array(positions, dtype=np.float64, copy=True)
    n = len(masses)
    if n == 0:
        raise ValueError("harmonic_analysis needs at least one atom (masses is empty)")
    if positions.shape != (n, 3):
        raise ValueError(f"positions has shape {positions.shape}, expected ({n}, 3)")
    if hessian.shape != (3 * n, 3 * n):
        raise ValueError(f"hessian has shape {hessian.shape}, expected ({3 * n}, {3 * n})")
    if not (masses > 0).all():
        raise ValueError(f"masses must be > 0 amu, got {masses[masses <= 0].tolist()}")
    for name, value in (("hessian", hessian), ("positions", positions)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or inf")
    return hessian, masses, positions


def analyse_atoms(atoms, calculator=None, linear: bool | None = None) -> HarmonicResult:  # noqa: ANN001
    """Harmonic analysis of ``atoms`` with the Hessian of ``calculator.get_hessian``.

    ``calculator`` defaults to ``atoms.calc``; masses are the atoms' (amu). Periodic
    atoms (any pbc) get translations-only projection.
    """
    calculator = calculator if calculator is not None else atoms.calc
    if calculator is None or not hasattr(calculator, "get_hessian"):
        raise ValueError("analyse_atoms needs a calculator with get_hessian (MLIPCalculator)")
    hessian = calculator.get_hessian(atoms)
    return harmonic_analysis(
        hessian, atoms.get_masses(), atoms.positions, linear=linear, periodic=bool(atoms.pbc.any())
    )
