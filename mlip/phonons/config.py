"""Every default of ``mlip phonons`` in one place: :class:`PhononConfig`.

Units: Angstrom, eV, eV/A (forces), GPa (stress thresholds), THz (frequencies), K.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from mlip.fields import device_field, dtype_field, option
from mlip.integrations.phonopy import METHODS
from mlip.vib.relax import STATIONARY_FMAX, STATIONARY_STRESS_GPA

OPTIMIZERS = ("BFGS", "FIRE", "LBFGS")


@dataclass(frozen=True)
class PhononConfig:
    """One phonon calculation: structure, supercell, force constants, outputs.

    ``supercell`` repeats the input cell along its three vectors; ``qpoints`` are in
    reduced coordinates of the input cell's reciprocal lattice (without 2 pi); ``mesh``
    is three numbers or a length (A, phonopy's automatic mesh) for the DOS and the
    thermal properties. Each field's help (metadata) is its ``mlip phonons`` option.
    """

    model: str = option("", "model file (mlip.model.load_model)")
    structure: str = option(
        "", "crystal with a 3D cell: ASE-readable file or FILE.h5[:GROUP[:INDEX]]"
    )
    supercell: tuple[int, int, int] = option(
        (2, 2, 2),
        "repeats of the input cell along its vectors (its width should exceed the model's "
        "num_layers x r_max)",
        metavar=("A", "B", "C"),
    )
    # --- relaxation and the checks before it -------------------------------------------
    relax: bool = option(False, "relax positions and cell first (FrechetCellFilter)")
    fmax: float = option(
        1e-3, "--relax convergence (generalised forces: eV/A, and eV per atom)", unit="eV/A"
    )
    relax_steps: int = option(500, "--relax: optimiser steps at most")
    optimizer: str = option("BFGS", "--relax: optimiser (ase.optimize)", choices=OPTIMIZERS)
    warn_fmax: float = option(
        STATIONARY_FMAX, "warn above this force (not a stationary point)", unit="eV/A"
    )
    warn_stress: float = option(
        STATIONARY_STRESS_GPA, "warn above this residual stress component", unit="GPa"
    )
    # --- force constants and sampling ----------------------------------------------------
    method: str = option(
        "directions",
        "directions: phonopy's symmetry-reduced displacement directions (fewest products); "
        "rows: the 3 Cartesian Hessian rows of each irreducible atom",
        choices=METHODS,
    )
    symprec: float = option(1e-5, "phonopy's symmetry tolerance", unit="A")
    band_points: int = option(51, "q-points per band-path segment")
    mesh: float | tuple[int, int, int] = option(
        30.0,
        "DOS and thermal mesh: a length (A, phonopy's automatic mesh) or three numbers N1 N2 N3",
        metavar="N",
    )
    qpoints: tuple[tuple[float, float, float], ...] = option(
        (),
        "q-points in reduced coordinates of the input cell's reciprocal lattice, "
        "'QX QY QZ; ...' (none: the special points of the band path)",
        metavar='"QX QY QZ; ..."',
    )
    t_min: float = option(0.0, "lowest temperature of the thermal table", unit="K", flag="--tmin")
    t_max: float = option(
        1000.0, "highest temperature of the thermal table", unit="K", flag="--tmax"
    )
    t_step: float = option(50.0, "temperature step of the thermal table", unit="K", flag="--tstep")
    imaginary_tol: float = option(
        0.02, "frequencies below minus this count as imaginary", unit="THz"
    )
    # --- output and device ---------------------------------------------------------------
    json: str | None = option(
        None, "q-points, frequencies, thermal table as JSON", metavar="OUT.json"
    )
    plot: str | None = option(None, "band structure and DOS (PNG)", metavar="OUT.png")
    device: str = device_field()
    dtype: str = dtype_field("float64")

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
        qpoints = self.qpoints
        if isinstance(qpoints, str):  # the command line's "qx qy qz; ..."
            qpoints = parse_qpoints(qpoints) if qpoints.strip() else ()
        qpoints = tuple(tuple(float(x) for x in q) for q in qpoints)
        if any(len(q) != 3 for q in qpoints):
            raise ValueError(f"each q-point needs three reduced coordinates, got {qpoints}")
        object.__setattr__(self, "qpoints", qpoints)
        mesh = self.mesh
        if not isinstance(mesh, (int, float)):
            mesh = parse_mesh(mesh)
            object.__setattr__(self, "mesh", mesh)
        if isinstance(mesh, tuple):
            if min(mesh) < 1:
                raise ValueError(f"mesh must be a length or three integers >= 1, got {mesh}")
        elif mesh <= 0:
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
    """``[L]`` (a length, A) -> L, ``[N1, N2, N3]`` (integers) -> the tuple."""
    if len(values) == 1:
        return float(values[0])
    if len(values) == 3 and all(float(v).is_integer() for v in values):
        return tuple(int(v) for v in values)
    raise ValueError(f"--mesh takes a length (A) or three integers, got {list(values)}")
