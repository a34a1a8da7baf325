"""Every default of ``mlip phonons`` in one place: :class:`PhononConfig`.

Units: Angstrom, eV, eV/A (forces), GPa (stress thresholds), THz (frequencies), K.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from mlip.integrations.phonopy import METHODS
from mlip.vib.relax import STATIONARY_FMAX, STATIONARY_STRESS_GPA

OPTIMIZERS = ("BFGS", "FIRE", "LBFGS")


@dataclass(frozen=True)
class PhononConfig:
    """One phonon calculation: structure, supercell, force constants, outputs.

    ``supercell`` repeats the input cell along its three vectors; ``qpoints`` are in
    reduced coordinates of the input cell's reciprocal lattice (without 2 pi); ``mesh``
    is three numbers or a length (A, phonopy's automatic mesh) for the DOS and the
    thermal properties.
    """

    model: str = ""  # model file (mlip.model.load_model)
    structure: str = ""  # ASE-readable file or FILE.h5[:GROUP[:INDEX]] with a 3D cell
    supercell: tuple[int, int, int] = (2, 2, 2)
    # --- relaxation and the checks before it -------------------------------------------
    relax: bool = False  # relax positions and cell first (FrechetCellFilter)
    fmax: float = 1e-3  # eV/A, --relax convergence (generalised forces of the filter)
    relax_steps: int = 500
    optimizer: str = "BFGS"  # one of OPTIMIZERS (ase.optimize)
    warn_fmax: float = STATIONARY_FMAX  # eV/A: warn above this force (not stationary)
    warn_stress: float = STATIONARY_STRESS_GPA  # GPa: warn above this residual stress
    # --- force constants and sampling ----------------------------------------------------
    method: str = "directions"  # one of mlip.integrations.phonopy.METHODS
    symprec: float = 1e-5  # A, phonopy's symmetry tolerance
    band_points: int = 51  # q-points per band-path segment
    mesh: float | tuple[int, int, int] = 30.0  # A (length) or three mesh numbers
    qpoints: tuple[tuple[float, float, float], ...] = ()
    t_min: float = 0.0  # K
    t_max: float = 1000.0  # K
    t_step: float = 50.0  # K
    imaginary_tol: float = 0.02  # THz: frequencies below -tol count as imaginary
    # --- output and device ---------------------------------------------------------------
    json: str | None = None
    plot: str | None = None  # PNG of the band structure and DOS
    device: str = "cpu"
    dtype: str = "float64"

    def __post_init__(self) -> None:
        supercell = tuple(int(k) for k in self.supercell)
        if len(supercell) != 3 or min(supercell) < 1:
            raise ValueError(f"supercell must be three integers >= 1, got {self.supercell}")
        object.__setattr__(self, "supercell", supercell)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("fmax", "warn_fmax", "warn_stress", "symprec", "t_step"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.t_min <= self.t_max:
            raise ValueError(f"need 0 <= t_min <= t_max (K), got {self.t_min}, {self.t_max}")
        if self.band_points < 2:
            raise ValueError(f"band_points must be >= 2, got {self.band_points}")
        qpoints = tuple(tuple(float(x) for x in q) for q in self.qpoints)
        if any(len(q) != 3 for q in qpoints):
            raise ValueError(f"each q-point needs three reduced coordinates, got {qpoints}")
        object.__setattr__(self, "qpoints", qpoints)
        if not isinstance(self.mesh, (int, float)):
            mesh = tuple(int(k) for k in self.mesh)
            if len(mesh) != 3 or min(mesh) < 1:
                raise ValueError(f"mesh must be a length or three integers >= 1, got {mesh}")
            object.__setattr__(self, "mesh", mesh)
        elif self.mesh <= 0:
            raise ValueError(f"mesh length must be > 0 A, got {self.mesh}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


DEFAULTS = PhononConfig()


def parse_qpoints(text: str) -> tuple[tuple[float, float, float], ...]:
    """``"qx qy qz; qx qy qz"`` (reduced coordinates, ';' between q-points) -> tuples."""
    points = []
    for part in text.split(";"):
        if not part.strip():
            continue
        values = part.replace(",", " ").split()
        try:
            q = tuple(float(v) for v in values)
        except ValueError as err:
            raise ValueError(f"q-point {part.strip()!r}: not three numbers ({err})") from err
        if len(q) != 3:
            raise ValueError(f"q-point {part.strip()!r}: expected three numbers, got {len(q)}")
        points.append(q)
    if not points:
        raise ValueError(f"no q-points in {text!r} (expected 'qx qy qz; ...')")
    return tuple(points)


def parse_mesh(values: Sequence[float]) -> float | tuple[int, int, int]:
    """``--mesh L`` (a length, A) or ``--mesh N1 N2 N3``."""
    if len(values) == 1:
        return float(values[0])
    if len(values) == 3 and all(float(v).is_integer() for v in values):
        return tuple(int(v) for v in values)
    raise ValueError(f"--mesh takes a length (A) or three integers, got {list(values)}")
