"""MD input and output: structures, HDF5 trajectories (mlip layout), CSV logs, restarts.

Trajectories follow the mlip HDF5 layout (:data:`mlip.data.hdf5.FORMAT_NAME`, version 1):
one group per simulated system with ``atomic_numbers`` (N,), ``positions`` (M, N, 3) A,
``energy`` (M,) eV (potential energy), ``forces`` (M, N, 3) eV/A, ``cell`` (M, 3, 3) A
for periodic systems and ``pbc`` (3,). Extra datasets: ``velocities`` (M, N, 3) A/fs,
``masses`` (N,) amu, ``step`` (M,), ``time`` (M,) fs, ``kinetic_energy`` (M,) eV,
``heat`` (M,) eV (what the thermostat/barostat put in, see :class:`~mlip.md.state.MDState`)
and, for Nose-Hoover chains, ``thermostat`` (M, k) (the chain variables). A restart
takes positions, velocities, cell, heat and chain variables from the last frame, so a
deterministic run (NVE, Nose-Hoover) continues exactly and the conserved energy stays
continuous. Frames are appended and the file flushed at every write, so a crash keeps
them.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

import ase
import h5py
import numpy as np

from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION
from mlip.data.spec import read_atoms
from mlip.errors import DataError
from mlip.md.state import ASE_MOMENTUM_PER_AMU_A_FS, MDState

_FRAME_FIELDS = ("positions", "energy", "forces", "velocities", "step", "time", "kinetic_energy")


def read_structures(spec: str) -> list[ase.Atoms]:
    """Systems to simulate from ``FILE.h5[:GROUP[:INDEX]]`` (mlip HDF5) or any ASE file.

    The rules are those of :mod:`mlip.data.spec`: for HDF5, INDEX (default 0, negative
    counts from the end) picks one conformer of the group; GROUP may be left out when
    the file has one group. Any other file is read with ``ase.io.read(path, index=":")``:
    every frame becomes a system of the batch.
    """
    return read_atoms(spec, ase_index=":")


class TrajectoryWriter:
    """Append MD frames of every system of a state to an mlip HDF5 file.

    ``append=True`` continues the groups of an existing trajectory (same systems);
    otherwise a new file is written, refusing to replace one unless ``overwrite``.
    ``attrs`` become attributes of every group (e.g. ensemble, timestep_fs).
    """

    def __init__(
        self,
        path: str | Path,
        state: MDState,
        attrs: dict | None = None,
        level_of_theory: str = "mlip MD",
        append: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.path = str(path)
        self.names = list(state.names)
        self._bounds = np.concatenate([[0], np.cumsum(state.num_atoms.cpu().numpy())])
        self._periodic = state.pbc.any(-1).cpu().numpy()
        if append:
            self.file = h5py.File(self.path, "a")
            self._check_groups(state)
            return
        if os.path.exists(self.path) and not overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True to replace it")
        self.file = h5py.File(self.path, "w")
        self.file.attrs.update(
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            energy_unit="eV",
            length_unit="Angstrom",
            time_unit="fs",
            velocity_unit="Angstrom/fs",
            level_of_theory=level_of_theory,
        )
        numbers = state.atomic_numbers.cpu().numpy()
        masses, pbcs = state.masses.detach().cpu().double().numpy(), state.pbc.cpu().numpy()
        for s, name in enumerate(self.names):
            a, b = self._bounds[s], self._bounds[s + 1]
            g = self.file.create_group(name)
            g.attrs.update(sampling="molecular dynamics", system_index=s, **(attrs or {}))
            g.create_dataset("atomic_numbers", data=numbers[a:b])
            g.create_dataset("masses", data=masses[a:b])
            g.create_dataset("pbc", data=pbcs[s])
            n = b - a
            shapes = {
                "positions": (n, 3),
                "forces": (n, 3),
                "velocities": (n, 3),
                "energy": (),
                "kinetic_energy": (),
                "time": (),
                "step": (),
                "heat": (),
            }
            if self._periodic[s]:
                shapes["cell"] = (3, 3)
            if state.thermostat is not None:
                shapes["thermostat"] = tuple(state.thermostat.shape[1:])
            if state.force_std is not None:  # a committee: largest per-atom force std, eV/A
                shapes["force_std"] = ()
            for field, shape in shapes.items():
                kind = np.int64 if field == "step" else np.float64
                g.create_dataset(
                    field,
                    shape=(0, *shape),
                    maxshape=(None, *shape),
                    dtype=kind,
                    chunks=(16, *shape),
                )
        self.file.flush()

    def _check_groups(self, state: MDState) -> None:
        numbers = state.atomic_numbers.cpu().numpy()
        for s, name in enumerate(self.names):
            if name not in self.file:
                raise DataError(
                    "trajectory has no group for this system", file=self.path, group=name
                )
            stored = self.file[name]["atomic_numbers"][()]
            if not np.array_equal(stored, numbers[self._bounds[s] : self._bounds[s + 1]]):
                raise DataError(
                    "atoms differ from the state's",
                    file=self.path,
                    group=name,
                    field="atomic_numbers",
                )

    def write(self, state: MDState) -> None:
        """Append the current frame of every system of ``state`` and flush (one host
        copy); systems stopped since the start (:meth:`Simulation.select`) are absent."""
        host = {
            "positions": state.positions.detach().cpu().double().numpy(),
            "forces": state.forces.detach().cpu().double().numpy(),
            "velocities": state.velocities.detach().cpu().double().numpy(),
            "energy": state.energy.detach().cpu().double().numpy(),
            "kinetic_energy": state.kinetic_energy().detach().cpu().double().numpy(),
        }
        cells = state.cell.detach().cpu().double().numpy()
        heat = None if state.heat is None else state.heat.detach().cpu().double().numpy()
        chains = None if state.thermostat is None else state.thermostat.detach().cpu().numpy()
        spread = None if state.force_std is None else state.force_std.detach().cpu().numpy()
        bounds = self._bounds
        if list(state.names) != self.names:
            bounds = np.concatenate([[0], np.cumsum(state.num_atoms.cpu().numpy())])
        for s, name in enumerate(state.names):
            g, (a, b) = self.file[name], bounds[s : s + 2]
            frame = {
                "positions": host["positions"][a:b],
                "forces": host["forces"][a:b],
                "velocities": host["velocities"][a:b],
                "energy": host["energy"][s],
                "kinetic_energy": host["kinetic_energy"][s],
                "time": state.time,
                "step": state.step,
            }
            if "cell" in g:
                frame["cell"] = cells[s]
            if "heat" in g:  # files written before heat was stored lack it
                frame["heat"] = 0.0 if heat is None else heat[s]
            if "thermostat" in g and chains is not None:
                frame["thermostat"] = chains[s]
            if "force_std" in g:
                frame["force_std"] = np.nan if spread is None else spread[s]
            for field, value in frame.items():
                d = g[field]
                d.resize(d.shape[0] + 1, axis=0)
                d[-1] = value
        self.file.flush()

    def close(self) -> None:
        if self.file.id.valid:
            self.file.close()


class RestartFrame(NamedTuple):
    """The last frame of a trajectory, one entry per system (see :func:`read_restart`)."""

    atoms: list[ase.Atoms]  # positions, cell, momenta (ASE units)
    names: list[str]
    step: int
    time: float  # fs
    heat: np.ndarray | None  # (n_systems,) eV; None for files without it
    thermostat: np.ndarray | None  # (n_systems, k) chain variables; None if not stored


def read_restart(path: str | Path) -> RestartFrame:
    """Last frame of every group of a trajectory (atoms with momenta, heat, chains).

    Groups are ordered by their ``system_index`` attribute. Momenta are set in ASE units
    from the stored velocities (A/fs) and masses (amu).
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"restart file not found: {path}")
    atoms, names, steps, times, heats, chains = [], [], [], [], [], []
    with h5py.File(path, "r") as f:
        groups = sorted(f.keys(), key=lambda k: (int(f[k].attrs.get("system_index", 0)), k))
        for name in groups:
            g = f[name]
            for field in ("atomic_numbers", "masses", "pbc", *_FRAME_FIELDS):
                if field not in g:
                    raise DataError("not an mlip MD trajectory", file=path, group=name, field=field)
            if g["positions"].shape[0] == 0:
                raise DataError("trajectory has no frame", file=path, group=name, field="positions")
            masses = g["masses"][()]
            cell = g["cell"][-1] if "cell" in g else np.zeros((3, 3))
            a = ase.Atoms(
                g["atomic_numbers"][()], positions=g["positions"][-1], cell=cell, pbc=g["pbc"][()]
            )
            a.set_masses(masses)
            a.set_momenta(g["velocities"][-1] * masses[:, None] * ASE_MOMENTUM_PER_AMU_A_FS)
            atoms.append(a)
            names.append(name)
            steps.append(int(g["step"][-1]))
            times.append(float(g["time"][-1]))
            heats.append(float(g["heat"][-1]) if "heat" in g else None)
            chains.append(g["thermostat"][-1] if "thermostat" in g else None)
    if not atoms:
        raise DataError("trajectory has no group", file=path)
    heat = None if None in heats else np.asarray(heats)
    thermostat = None if any(c is None for c in chains) else np.stack(chains)
    return RestartFrame(atoms, names, max(steps), max(times), heat, thermostat)


def _optional(values: dict[str, np.ndarray], key: str, system: int) -> str:
    """A finite value as text, '' for NaN or a missing series."""
    if key not in values or not np.isfinite(values[key][system]):
        return ""
    return f"{values[key][system]:.10g}"


class CSVLog:
    """Per-system energies and temperatures, one row per system and log step (flushed).

    Columns: step, time_fs, system, name, temperature_K (kinetic), potential_eV,
    kinetic_eV, total_eV, conserved_eV (total minus the heat a thermostat put in),
    volume_A3 (3D periodic systems) and pressure_GPa (when the integrator computes the
    stress, i.e. NPT) and force_std_eVA (a committee: the largest per-atom force std);
    empty otherwise.
    """

    COLUMNS = (
        "step",
        "time_fs",
        "system",
        "name",
        "temperature_K",
        "potential_eV",
        "kinetic_eV",
        "total_eV",
        "conserved_eV",
        "volume_A3",
        "pressure_GPa",
        "force_std_eVA",
    )

    def __init__(self, path: str | Path, append: bool = False) -> None:
        new = not (append and os.path.exists(path))
        self.handle = open(path, "a" if append else "w", newline="")  # noqa: SIM115
        self.writer = csv.writer(self.handle)
        if new:
            self.writer.writerow(self.COLUMNS)

    def write(self, step: int, time: float, names: list[str], values: dict[str, np.ndarray]):
        for s, name in enumerate(names):
            kin, pot = values["kinetic"][s], values["potential"][s]
            self.writer.writerow(
                [
                    step,
                    f"{time:.6g}",
                    s,
                    name,
                    f"{values['temperature'][s]:.6g}",
                    f"{pot:.10g}",
                    f"{kin:.10g}",
                    f"{pot + kin:.10g}",
                    f"{pot + kin - values['heat'][s]:.10g}",
                    _optional(values, "volume", s),
                    _optional(values, "pressure", s),
                    _optional(values, "force_std", s),
                ]
            )
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()
