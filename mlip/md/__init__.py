"""Batched molecular dynamics on any torch device (units: eV, Angstrom, amu, fs, K).

Many systems (replicas, or molecules and cells of different sizes) are integrated
together in one :class:`MDState`; forces come from any energy model of the package
through :func:`mlip.derivatives.compute` with a neighbour list built on the device.

    from mlip.md import run_md
    result = run_md(model, atoms, ensemble="nvt-langevin", temperature=300, timestep=0.5,
                    steps=10_000, replicas=64, device="cuda", traj="md.h5", log="md.csv")
"""

from mlip.md.barostat import NPTBussi, NPTLangevin, StochasticCellRescaling
from mlip.md.forcefield import ForceField
from mlip.md.integrators import (
    ENSEMBLES,
    BussiCSVR,
    LangevinBAOAB,
    VelocityVerlet,
    make_integrator,
)
from mlip.md.io import CSVLog, RestartFrame, TrajectoryWriter, read_restart, read_structures
from mlip.md.monitor import ExplosionMonitor, MDExplosionError
from mlip.md.neighbors import VerletList, batched_neighbor_list, neighbor_list
from mlip.md.nose_hoover import NoseHooverChain
from mlip.md.runner import MDResult, Simulation, run_md
from mlip.md.state import (
    AMU_A2_FS2_PER_EV,
    KB_EV_PER_K,
    MDState,
    concatenate,
    from_atoms,
    maxwell_boltzmann,
    zero_com_momentum,
)

__all__ = [
    "AMU_A2_FS2_PER_EV",
    "ENSEMBLES",
    "KB_EV_PER_K",
    "BussiCSVR",
    "CSVLog",
    "ExplosionMonitor",
    "ForceField",
    "LangevinBAOAB",
    "MDExplosionError",
    "MDResult",
    "MDState",
    "NPTBussi",
    "NPTLangevin",
    "NoseHooverChain",
    "Simulation",
    "StochasticCellRescaling",
    "TrajectoryWriter",
    "VelocityVerlet",
    "VerletList",
    "batched_neighbor_list",
    "concatenate",
    "from_atoms",
    "make_integrator",
    "maxwell_boltzmann",
    "neighbor_list",
    "RestartFrame",
    "read_restart",
    "read_structures",
    "run_md",
    "zero_com_momentum",
]
