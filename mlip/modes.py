"""Normal modes of a Cartesian Hessian: the one definition, for vib and the loss.

Given the Hessian H = d2E/dR dR (3N x 3N, atom-major, eV/A^2) at a geometry R (A)
with masses m (amu):

1. symmetrise, H <- (H + H^T) / 2, and mass-weight, K = M^-1/2 H M^-1/2 with
   M = diag(m_1, m_1, m_1, m_2, ...);
2. build the external motions in the mass-weighted space (Eckart frame): the three
   translations t_a,i = sqrt(m_i) e_a and the three infinitesimal rotations about the
   centre of mass r_a,i = sqrt(m_i) e_a x (R_i - R_com); orthonormalise them. A linear
   molecule has one null rotation (about its axis), which is dropped, leaving 5; a
   periodic system keeps only the 3 translations (rotating a crystal rotates its cell,
   so rotations are not zero modes of a fixed-cell Hessian); a single atom has 3; a
   partial Hessian (the block of some atoms while the others stay fixed, as in ASE's
   ``Vibrations(indices=...)``) has none: the fixed atoms anchor the free ones;
3. build an orthonormal basis B (3N x n_vib) of the complement of the external space
   and diagonalise B^T K B = U diag(lambda) U^T. This equals diagonalising P K P with
   P = 1 - sum_v v v^T on its non-trivial subspace, and gives exactly n_vib = 3N - 6
   (3N - 5 linear, 3N - 3 periodic, 0 for one atom) modes instead of dropping the
   lowest eigenvalues of K;
4. frequencies nu = sqrt(lambda) / (2 pi c) in cm^-1, via the constant
   ``CM1_PER_SQRT_EV_A2_AMU`` = 1e10 sqrt(e / amu) / (2 pi c 100) = 521.4709 cm^-1 per
   sqrt(eV/A^2/amu); a negative lambda (a saddle point) is a negative frequency.
   Mass-weighted modes q = B U (orthonormal rows), Cartesian modes x = M^-1/2 q.

:mod:`mlip.vib` builds its analysis (thermochemistry, comparisons, plots) on
:func:`normal_modes`; :mod:`mlip.loss` builds its mode probes on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import pi, sqrt

import numpy as np
from ase import units
from scipy.linalg import null_space

#: cm^-1 per sqrt(eV / A^2 / amu): nu~ = sqrt(lambda) * this constant.
CM1_PER_SQRT_EV_A2_AMU: float = 1e10 * sqrt(units._e / units._amu) / (2.0 * pi * units._c * 100.0)
#: eV per cm^-1 (h c x 1 cm^-1), from ase.units.
EV_PER_CM1: float = float(units.invcm)

GEOMETRIES = ("monatomic", "linear", "nonlinear", "periodic", "partial")


@dataclass(frozen=True)
class NormalModes:
    """Eckart-projected modes of one Hessian (see the module docstring).

    ``eigenvalues`` (n_vib,) eV/A^2/amu, ascending; ``mass_weighted`` (n_vib, 3N)
    orthonormal q; ``masses`` (N,) amu; ``geometry`` one of :data:`GEOMETRIES`.
    """

    geometry: str
    eigenvalues: np.ndarray
    mass_weighted: np.ndarray
    masses: np.ndarray

    @property
    def frequencies(self) -> np.ndarray:
        """(n_vib,) cm^-1, imaginary modes as negative numbers."""
        lam = self.eigenvalues
        return np.sign(lam) * np.sqrt(np.abs(lam)) * CM1_PER_SQRT_EV_A2_AMU

    @property
    def cartesian(self) -> np.ndarray:
        """(n_vib, 3N) Cartesian displacements x = M^-1/2 q (not normalised)."""
        return self.mass_weighted * np.repeat(self.masses**-0.5, 3)[None, :]


def normal_modes(
    hessian: np.ndarray,
    masses: np.ndarray,
    positions: np.ndarray,
    linear: bool | None = None,
    periodic: bool = False,
    linear_tol: float = 1e-5,
    partial: bool = False,
) -> NormalModes:
    """Normal modes of a Cartesian Hessian with translations/rotations projected out.

    ``hessian`` (3N, 3N) eV/A^2, ``masses`` (N,) amu, ``positions`` (N, 3) A.
    ``linear=None`` detects a linear molecule from the principal moments of inertia
    (smallest < ``linear_tol`` x largest); ``periodic=True`` projects translations only;
    ``partial=True`` (the block of a subset of atoms, the rest fixed) projects nothing.
    """
    hessian, masses, positions = validate(hessian, masses, positions)
    n = len(masses)
    geometry = (
        "partial" if partial else geometry_of(masses, positions, linear, periodic, linear_tol)
    )
    sym = 0.5 * (hessian + hessian.T)
    inv_sqrt_m = np.repeat(masses**-0.5, 3)
    mass_weighted = sym * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]

    external = external_basis(masses, positions, geometry)
    if external.shape[1] == 0:
        basis = np.eye(3 * n)
    elif external.shape[1] < 3 * n:
        basis = null_space(external.T)
    else:
        basis = np.zeros((3 * n, 0))
    if basis.shape[1] != 3 * n - external.shape[1]:
        raise ValueError(f"vibrational basis has {basis.shape[1]} vectors, expected "
                         f"{3 * n - external.shape[1]}")  # fmt: skip
    projected = basis.T @ mass_weighted @ basis
    eigenvalues, vectors = np.linalg.eigh(0.5 * (projected + projected.T))
    return NormalModes(geometry, eigenvalues, (basis @ vectors).T, masses)


def external_basis(masses: np.ndarray, positions: np.ndarray, geometry: str) -> np.ndarray:
    """Orthonormal mass-weighted translations (+ rotations about the COM), (3N, n_ext).

    n_ext = 3 (monatomic, periodic), 5 (linear: the null rotation about the axis is
    dropped by keeping the 5 leading singular vectors), 6 (nonlinear), 0 (partial).
    """
    n = len(masses)
    if geometry == "partial":
        return np.zeros((3 * n, 0))
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


def geometry_of(
    masses: np.ndarray, positions: np.ndarray, linear: bool | None, periodic: bool, tol: float
) -> str:
    """One of :data:`GEOMETRIES`; ``linear=None`` detects a linear molecule."""
    if periodic:
        return "periodic"
    if len(masses) == 1:
        return "monatomic"
    if linear is None:
        linear = len(masses) == 2 or is_linear(masses, positions, tol)
    return "linear" if linear else "nonlinear"


def validate(
    hessian: np.ndarray, masses: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 copies of the inputs; ValueError for bad shapes, masses or values."""
    # copies: the result must not change when the caller's arrays do (ASE relaxes
    # atoms.positions in place)
    hessian = np.array(hessian, dtype=np.float64, copy=True)
    masses = np.array(masses, dtype=np.float64, copy=True).reshape(-1)
    positions = np.array(positions, dtype=np.float64, copy=True)
    n = len(masses)
    if n == 0:
        raise ValueError("normal modes need at least one atom (masses is empty)")
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
