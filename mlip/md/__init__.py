"""Batched molecular dynamics on any torch device (units: eV, Angstrom, amu, fs, K).

Many systems (replicas, or molecules and cells of different sizes) are integrated
together in one :class:`MDState`; forces come from any energy model of the package
through :func:`mlip.derivatives.compute` with a neighbour list built on the device.

    from mlip.md import run_md
    result = run_md(model, atoms, ensemble="nvt-langevin", temperature=300, timestep=0.5,
                    steps=10_000, replicas=64, device="cuda", traj="md.h5", log="md.csv")

Layers (each module imports only from those above it): :mod:`~mlip.md.config` (every
default, :class:`MDConfig`) and :mod:`~mlip.md.state` (the state and its observables);
:mod:`~mlip.md.steps` (the elementary operators and :class:`Integrator`, a splitting of
them); :mod:`~mlip.md.integrators`, :mod:`~mlip.md.nose_hoover` and
:mod:`~mlip.md.barostat` (the ensembles' integrators); :mod:`~mlip.md.registry` (the
ensembles by name, their needs and parameters); :mod:`~mlip.md.uncertainty` (a
committee's force std at the host checks: stop or collect); :mod:`~mlip.md.runner`
(``run_md``).
"""

from mlip.md.barostat import NPTBussi, NPTLangevin, StochasticCellRescaling
from mlip.md.config import DEFAULTS, MDConfig
from mlip.md.forcefield import ForceField
from mlip.md.integrators import BussiCSVR, LangevinBAOAB, VelocityVerlet
from mlip.md.io import CSVLog, RestartFrame, TrajectoryWriter, read_restart, read_structures
from mlip.md.monitor import ExplosionMonitor, MDExplosionError
from mlip.md.neighbors import VerletList, batched_neighbor_list
from mlip.md.nose_hoover import NoseHooverChain
from mlip.md.registry import (
    ENSEMBLES,
    INTEGRATOR_REGISTRY,
    EnsembleSpec,
    Needs,
    build_integrator,
    ensemble_spec,
    make_integrator,
)
from mlip.md.runner import MDResult, Simulation, run_md
from mlip.md.state import (
    AMU_A2_FS2_PER_EV,
    GPA,
    KB_EV_PER_K,
    MDState,
    cell_volume,
    concatenate,
    degrees_of_freedom,
    from_atoms,
    maxwell_boltzmann,
    pressure,
    select_systems,
    zero_com_momentum,
)
from mlip.md.steps import Integrator, NoiseSource
from mlip.md.uncertainty import Stopped, UncertaintyWatch

__all__ = [
    "AMU_A2_FS2_PER_EV",
    "DEFAULTS",
    "ENSEMBLES",
    "GPA",
    "INTEGRATOR_REGISTRY",
    "KB_EV_PER_K",
    "BussiCSVR",
    "CSVLog",
    "EnsembleSpec",
    "ExplosionMonitor",
    "ForceField",
    "Integrator",
    "LangevinBAOAB",
    "MDConfig",
    "MDExplosionError",
    "MDResult",
    "MDState",
    "NPTBussi",
    "NPTLangevin",
    "Needs",
    "NoiseSource",
    "NoseHooverChain",
    "RestartFrame",
    "Simulation",
    "StochasticCellRescaling",
    "Stopped",
    "TrajectoryWriter",
    "UncertaintyWatch",
    "VelocityVerlet",
    "VerletList",
    "batched_neighbor_list",
    "build_integrator",
    "cell_volume",
    "concatenate",
    "degrees_of_freedom",
    "ensemble_spec",
    "from_atoms",
    "make_integrator",
    "maxwell_boltzmann",
    "pressure",
    "read_restart",
    "read_structures",
    "run_md",
    "select_systems",
    "zero_com_momentum",
]
