"""Every default of the MD engine in one place: :class:`MDConfig`.

Units: temperature K, timestep fs, friction 1/fs, tau and tau_p fs, pressure GPa,
compressibility 1/GPa, skin, min_distance and max_displacement Angstrom, max_force,
max_force_std and collect_force_std eV/A.

``mlip md`` parses its arguments into an :class:`MDConfig`, :func:`mlip.md.run_md` and
``md/run_md.py`` take one, the integrators (:mod:`mlip.md.integrators`,
:mod:`mlip.md.nose_hoover`, :mod:`mlip.md.barostat`) take their parameter defaults from
``DEFAULTS`` and the ensemble registry (:mod:`mlip.md.registry`) builds them from a
config. Which of the ensemble parameters (friction, tau, chain_length, yoshida,
substeps, pressure, compressibility, tau_p) an ensemble uses is declared by the
registry; only those are recorded in a trajectory. This module imports nothing from
the rest of :mod:`mlip.md`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PerSystem = float | Sequence[float]  # one value, or one per system of the batch

#: host checks every k steps (:class:`mlip.md.runner.Simulation`): free on a CPU
CHECK_EVERY_CPU, CHECK_EVERY_GPU = 1, 20


@dataclass(frozen=True)
class MDConfig:
    """One MD run: the ensemble and its parameters, the run length, the files, the checks.

    Ensemble parameters are one value or one per system (``PerSystem``); ``temperature``
    takes one value, one per input structure or one per system. ``check_every`` None
    means 1 on a CPU and 20 on a GPU (:func:`check_every_for`).
    """

    # --- the ensemble ------------------------------------------------------------------
    ensemble: str = "nve"  # a name of mlip.md.registry.INTEGRATOR_REGISTRY
    temperature: PerSystem = 300.0  # K, thermostat target and Maxwell-Boltzmann draw
    timestep: float = 0.5  # fs
    friction: PerSystem = 0.01  # 1/fs, Langevin gamma
    tau: PerSystem = 100.0  # fs, Bussi / Nose-Hoover relaxation time
    chain_length: int = 3  # Nose-Hoover thermostats per chain
    yoshida: int = 3  # Suzuki-Yoshida weights of a Nose-Hoover half-step (1, 3 or 5)
    substeps: int = 1  # sub-steps of a Nose-Hoover half-step
    pressure: PerSystem = 0.0  # GPa, NPT target
    compressibility: PerSystem = 0.01  # 1/GPa, barostat estimate (~0.01 metals, 0.45 water)
    tau_p: PerSystem = 1000.0  # fs, barostat relaxation time
    seed: int = 0  # Maxwell-Boltzmann velocities and thermostat noise
    # --- the run -----------------------------------------------------------------------
    steps: int = 1000
    replicas: int = 1  # copies of each input system
    device: str | torch.device = "cpu"
    dtype: str | torch.dtype = torch.float64  # "float64"/"float32" are accepted
    init_velocities: bool | None = None  # None: draw unless the input carries momenta
    restart: str | Path | None = None  # trajectory to continue from its last frame
    # --- output ------------------------------------------------------------------------
    traj: str | Path | None = None  # mlip HDF5 trajectory
    log: str | Path | None = None  # CSV log
    log_every: int = 100  # steps between frames and log rows
    overwrite: bool = False  # replace an existing traj
    progress: bool = True  # progress bar
    # --- engine and checks -------------------------------------------------------------
    skin: float = 1.0  # A, Verlet-list skin
    check_every: int | None = None  # steps between host checks, None: check_every_for
    compile: bool = False  # run the model through torch.compile
    max_force: float = 100.0  # eV/A, explosion limit
    min_distance: float = 0.5  # A, explosion limit
    max_displacement: float | None = None  # A from the start, explosion limit (off)
    # --- committee uncertainty (mlip.md.uncertainty; a committee model only) ------------
    max_force_std: float | None = None  # eV/A: stop a system whose largest force std exceeds it
    collect_force_std: float | None = None  # eV/A: keep frames (at log steps) above it
    collect: str | Path | None = None  # file (e.g. .extxyz) for the collected frames

    def __post_init__(self) -> None:
        if isinstance(self.dtype, str):
            object.__setattr__(self, "dtype", getattr(torch, self.dtype))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> MDConfig:
        """A copy with some fields changed; an unknown name is a TypeError listing them."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise TypeError(
                f"unknown MD option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(self.field_names())}"
            )
        return dataclasses.replace(self, **changes)


DEFAULTS = MDConfig()


def check_every_for(device: torch.device | str) -> int:
    """Default steps between host checks: 1 on a CPU (syncs are free), 20 on a GPU."""
    return CHECK_EVERY_CPU if torch.device(device).type == "cpu" else CHECK_EVERY_GPU
