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
the rest of :mod:`mlip.md`. The field metadata (help, unit, group) is what ``mlip md``'s
options are made of (:mod:`mlip.cli.options`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mlip.fields import device_field, dtype_field, option

PerSystem = float | Sequence[float]  # one value, or one per system of the batch

#: host checks every k steps (:class:`mlip.md.runner.Simulation`): free on a CPU
CHECK_EVERY_CPU, CHECK_EVERY_GPU = 1, 20

#: the option groups of ``mlip md``'s help; MD_GROUP is shared with ``mlip learn``
MD_GROUP, OUTPUT, CHECKS, COMMITTEE = "molecular dynamics", "output", "checks", "committee"

#: help and unit of the MD settings, the one declaration of the fields ``mlip md``
#: (:class:`MDConfig`) and ``mlip learn`` (:class:`mlip.learn.config.LearnConfig`) share
MD_OPTIONS: dict[str, tuple[str, str | None]] = {
    "ensemble": (
        "ensemble: nve (velocity Verlet), nvt-langevin (BAOAB), nvt-bussi (CSVR), nvt-nhc "
        "(Nose-Hoover chains), npt-langevin, npt-bussi (stochastic cell rescaling; periodic "
        "cells only)",
        None,
    ),
    "temperature": (
        "thermostat target and Maxwell-Boltzmann temperature: one value, one per input "
        "structure or one per system",
        "K",
    ),
    "timestep": ("timestep", "fs"),
    "friction": ("Langevin friction gamma (nvt-langevin, npt-langevin)", "1/fs"),
    "tau": ("Bussi / Nose-Hoover relaxation time (nvt-bussi, nvt-nhc, npt-bussi)", "fs"),
    "chain_length": ("Nose-Hoover thermostats per chain (nvt-nhc)", None),
    "yoshida": ("Suzuki-Yoshida weights of a Nose-Hoover half-step: 1, 3 or 5 (nvt-nhc)", None),
    "substeps": ("sub-steps of a Nose-Hoover half-step (nvt-nhc)", None),
    "pressure": ("NPT target pressure (npt-*)", "GPa"),
    "compressibility": (
        "NPT barostat compressibility estimate (~0.01 metals, 0.45 water; npt-*)",
        "1/GPa",
    ),
    "tau_p": ("NPT barostat relaxation time (npt-*)", "fs"),
}


def md_option(name: str, default: Any, help: str | None = None) -> Any:  # noqa: A002
    """The field of the MD setting ``name`` (:data:`MD_OPTIONS`) with ``default``."""
    text, unit = MD_OPTIONS[name]
    return option(default, help or text, unit=unit, group=MD_GROUP)


@dataclass(frozen=True)
class MDConfig:
    """One MD run: the ensemble and its parameters, the run length, the files, the checks.

    Ensemble parameters are one value or one per system (``PerSystem``); ``temperature``
    takes one value, one per input structure or one per system. ``check_every`` None
    means 1 on a CPU and 20 on a GPU (:func:`check_every_for`).
    """

    # --- the ensemble ------------------------------------------------------------------
    ensemble: str = md_option("ensemble", "nve")
    temperature: PerSystem = md_option("temperature", 300.0)
    timestep: float = md_option("timestep", 0.5)
    friction: PerSystem = md_option("friction", 0.01)
    tau: PerSystem = md_option("tau", 100.0)
    chain_length: int = md_option("chain_length", 3)
    yoshida: int = md_option("yoshida", 3)
    substeps: int = md_option("substeps", 1)
    pressure: PerSystem = md_option("pressure", 0.0)
    compressibility: PerSystem = md_option("compressibility", 0.01)
    tau_p: PerSystem = md_option("tau_p", 1000.0)
    seed: int = option(0, "seed of the Maxwell-Boltzmann velocities and thermostat noise")
    # --- the run -----------------------------------------------------------------------
    steps: int = option(1000, "MD steps")
    replicas: int = option(1, "copies of each input system")
    device: str | torch.device = device_field()
    dtype: str | torch.dtype = dtype_field("float64")  # a torch.dtype after __post_init__
    init_velocities: bool | None = option(
        None, "draw Maxwell-Boltzmann velocities (none: unless the input carries momenta)"
    )
    restart: str | Path | None = option(
        None, "trajectory to continue from its last frame", metavar="TRAJ.h5"
    )
    # --- output ------------------------------------------------------------------------
    traj: str | Path | None = option(
        None, "trajectory file (mlip HDF5 layout)", metavar="OUT.h5", group=OUTPUT
    )
    log: str | Path | None = option(
        None, "CSV log (none: the trajectory's name with .csv)", metavar="OUT.csv", group=OUTPUT
    )
    log_every: int = option(100, "steps between frames and log rows", group=OUTPUT)
    overwrite: bool = option(False, "replace an existing --traj", group=OUTPUT)
    progress: bool = option(
        True, "progress bar on a terminal; one line per log row without one", group=OUTPUT
    )
    # --- engine and checks -------------------------------------------------------------
    skin: float = option(1.0, "Verlet-list skin", unit="A")
    check_every: int | None = option(
        None,
        f"steps between host checks (none: {CHECK_EVERY_CPU} on a CPU, {CHECK_EVERY_GPU} on a GPU)",
        group=CHECKS,
    )
    compile: bool = option(False, "run the model through torch.compile (the first step compiles)")
    max_force: float = option(100.0, "explosion limit on a force", unit="eV/A", group=CHECKS)
    min_distance: float = option(
        0.5, "explosion limit on an interatomic distance", unit="A", group=CHECKS
    )
    max_displacement: float | None = option(
        None, "explosion limit on the distance from the start", unit="A", group=CHECKS
    )
    # --- committee uncertainty (mlip.md.uncertainty; a committee model only) ------------
    max_force_std: float | None = option(
        None,
        "committee models: stop a system whose largest per-atom force std exceeds this "
        "(checked at the host checks); the others go on",
        unit="eV/A",
        group=COMMITTEE,
    )
    collect_force_std: float | None = option(
        None,
        "committee models: keep the frames (at log steps) whose largest force std exceeds "
        "this, written to --collect",
        unit="eV/A",
        group=COMMITTEE,
    )
    collect: str | Path | None = option(
        None,
        "file for the collected frames (any ASE format; 'mlip label' reads it)",
        metavar="OUT.extxyz",
        group=COMMITTEE,
    )

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
