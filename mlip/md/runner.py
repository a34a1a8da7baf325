"""The MD driver: ``run_md`` and the host/device synchronisation loop.

The loop advances the batch in chunks of at most ``check_every`` steps with no host
synchronisation inside a chunk (forces, integrator, neighbour-list staleness and
explosion tests all stay on the device). At the end of a chunk one small tensor is read:

* if the neighbour list went stale during the chunk, the chunk is rolled back to its
  snapshot (state, RNG and monitor, all immutable so the snapshot is free), the list is
  rebuilt and the chunk redone with an exact per-step check (see
  :mod:`mlip.md.forcefield`); the trajectory is the same as with per-step checks;
* if a system exploded, the run stops with :class:`MDExplosionError`.

Energies and temperatures are read, written to the trajectory/CSV and shown in the
progress bar only every ``log_every`` steps. On the CPU host syncs cost nothing and
``check_every`` defaults to 1; on a GPU it defaults to 20 (:mod:`mlip.md.config`).

The runner asks the ensemble registry (:mod:`mlip.md.registry`) what an integrator
needs and configures the force field accordingly (the stress for NPT); the defaults of
every setting are those of :class:`~mlip.md.config.MDConfig`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch

from mlip.allocator import keep_freed_memory
from mlip.derivatives import EnergyModel
from mlip.fields import resolve_device
from mlip.md.config import DEFAULTS, MDConfig, check_every_for
from mlip.md.forcefield import ForceField
from mlip.md.io import CSVLog, TrajectoryWriter, read_restart
from mlip.md.monitor import ExplosionMonitor, MDExplosionError
from mlip.md.registry import EnsembleSpec, Needs, ensemble_spec, needs_of
from mlip.md.state import (
    MDState,
    cell_volume,
    from_atoms,
    maxwell_boltzmann,
    pressure,
    select_systems,
)
from mlip.md.steps import Integrator
from mlip.md.uncertainty import UncertaintyWatch
from mlip.progress import Progress


@dataclass
class MDResult:
    """Final state, logged per-system series (n_logs, n_systems) and timings."""

    state: MDState
    steps: np.ndarray  # (n_logs,)
    time: np.ndarray  # (n_logs,) fs
    temperature: np.ndarray  # K
    potential: np.ndarray  # eV
    kinetic: np.ndarray  # eV
    conserved: np.ndarray  # eV, total energy minus thermostat heat
    volume: np.ndarray  # A^3, NaN for systems that are not 3D periodic
    pressure: np.ndarray  # GPa, NaN unless the integrator computes the stress (NPT)
    wall_seconds: float = 0.0
    neighbor_builds: int = 0
    rollbacks: int = 0
    extra: dict = field(default_factory=dict)
    # committees: largest per-atom force std per log step and system (eV/A; NaN for a
    # model without spread, and for systems stopped by max_force_std), and the watch
    force_std: np.ndarray | None = None
    uncertainty: UncertaintyWatch | None = None
    config: MDConfig | None = None  # the settings of the run

    @property
    def total(self) -> np.ndarray:
        return self.potential + self.kinetic

    def summary(self) -> str:
        """What ``mlip md`` prints at the end: speed, final temperature, the largest
        change of the conserved energy per atom, NPT means, committee spreads, files."""
        config = self.config or DEFAULTS
        state = self.state
        steps_done = int(self.steps[-1] - self.steps[0])
        wall = max(self.wall_seconds, 1e-9)
        rate = steps_done * state.n_atoms / wall
        ns_day = steps_done * config.timestep / wall * 0.0864
        atoms = state.num_atoms.cpu().numpy()
        drift = (self.conserved[-1] - self.conserved[0]) / atoms
        lines = [
            f"{state.n_systems} systems, {state.n_atoms} atoms, {steps_done} steps of "
            f"{config.timestep} fs in {self.wall_seconds:.1f} s: {rate:.3g} atom-steps/s, "
            f"{ns_day:.3g} ns/day, {self.neighbor_builds} neighbour-list builds",
            f"final T {np.nanmean(self.temperature[-1]):.1f} K (mean over systems), "
            f"max conserved-energy change {np.nanmax(np.abs(drift)):.3g} eV/atom",
        ]
        if np.isfinite(self.pressure).any():
            half = self.pressure[len(self.pressure) // 2 :]  # second half of the run
            volume = self.volume[len(self.volume) // 2 :] / atoms
            lines.append(
                f"second half: mean pressure {np.nanmean(half):.4g} GPa (target "
                f"{config.pressure}), mean volume {np.nanmean(volume):.4g} A^3/atom"
            )
        watch = self.uncertainty
        if self.force_std is not None and np.isfinite(self.force_std).any():
            lines.append("committee force std (largest per-atom, eV/A) per system:")
            if watch is not None:
                lines.append(watch.summary())
            else:
                largest = np.nanmax(self.force_std, 0)
                for name, value in zip(state.names, largest, strict=True):
                    lines.append(f"  {name}: largest logged force std {value:.4g} eV/A")
        if watch is not None and config.collect is not None:
            lines.append(f"collected {len(watch.frames)} frames -> {config.collect}")
        if config.traj is not None or config.restart is not None:
            lines.append(f"trajectory: {config.traj or config.restart}")
        if config.log:
            lines.append(f"log: {config.log}")
        return "\n".join(lines)


def configure_force_field(force_field: ForceField, needs: Needs) -> None:
    """Switch on what an ensemble needs: the stress, and neighbour lists that follow
    moving cells (NPT). Settings an ensemble does not need are left as they are."""
    if needs.stress:
        force_field.stress = True
        force_field.variable_cell = True


class Simulation:
    """Integrator + force field + monitor over one batched state, advanced in chunks.

    The force field is configured for the integrator's ensemble (its registry needs,
    :func:`configure_force_field`) before the integrator's ``init``.
    """

    def __init__(
        self,
        state: MDState,
        force_field: ForceField,
        integrator: Integrator,
        monitor: ExplosionMonitor | None = None,
        check_every: int | None = None,
    ) -> None:
        if check_every is None:
            check_every = check_every_for(state.device)
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.force_field, self.integrator = force_field, integrator
        self.monitor = monitor or ExplosionMonitor()
        self.check_every = int(check_every)
        self.rollbacks = 0
        configure_force_field(force_field, needs_of(integrator))
        self._start(state)

    def _start(self, state: MDState) -> None:
        self.force_field.check_elements(state)
        self.state = self.integrator.init(state, self.force_field)
        self.monitor.reset(self.state)
        self.monitor.update(self.state)

    def _steps(self, n: int) -> None:
        for _ in range(n):
            self.state = self.integrator.step(self.state, self.force_field)
            self.monitor.update(self.state)

    def advance(self, n: int) -> None:
        """Do n steps (n <= check_every: one host sync at the end), exact neighbour lists."""
        ff = self.force_field
        if n <= 0:
            return
        if self.check_every == 1 or ff.neighbors is None:
            ff.deferred = False
            self._steps(n)
        else:
            snapshot = (self.state, self.integrator.rng_state(), self.monitor.snapshot())
            ff.deferred = True
            self._steps(n)
            ff.deferred = False
            if ff.take_stale_flag():  # one host sync per chunk
                self.rollbacks += 1
                self.state = snapshot[0]
                self.integrator.set_rng_state(snapshot[1])
                self.monitor.restore(snapshot[2])
                self._steps(n)  # exact mode: rebuilds where needed
        self.monitor.check_distances(self.state, ff.batch(self.state))
        self.monitor.raise_if_exploded(self.state)

    def run(self, steps: int, every: int | None = None) -> Iterator[int]:
        """Advance ``steps`` steps in chunks of at most ``check_every`` steps that end on
        every multiple of ``every`` steps (counted from this call); yields the number of
        steps done after each chunk. :class:`MDExplosionError` ends it (the state is
        then that of the end of the chunk)."""
        done = 0
        while done < steps:
            n = min(self.check_every, steps - done)
            if every is not None:
                n = min(n, every - done % every)
            self.advance(n)
            done += n
            yield done

    def select(self, keep: torch.Tensor | Sequence[bool]) -> None:
        """Keep only the systems where ``keep`` (n_systems,) is True, between chunks.

        The state is restricted (:func:`~mlip.md.state.select_systems`), the integrator
        re-initialised on it (forces, per-system parameters; its random stream goes on)
        and the monitor reset. Ensemble parameters given one per system do not follow
        the selection (``init`` then raises): give them as scalars to drop systems.
        """
        self._start(select_systems(self.state, keep))

    def observables(self) -> dict[str, np.ndarray]:
        """Per-system temperature (K), potential, kinetic energy and heat (eV), volume
        (A^3, NaN unless 3D periodic), pressure (GPa, NaN without stress) and force_std
        (eV/A, the largest per-atom force std of a committee, else NaN), on the host
        (one copy)."""
        s = self.state
        volume = torch.where(s.pbc.all(-1), cell_volume(s.cell), torch.nan)
        p = pressure(s) if s.stress is not None else torch.full_like(volume, torch.nan)
        spread = s.force_std if s.force_std is not None else torch.full_like(volume, torch.nan)
        stacked = torch.stack(
            [s.kinetic_temperature(), s.energy, s.kinetic_energy(), s.heat, volume, p, spread]
        )
        names = ("temperature", "potential", "kinetic", "heat", "volume", "pressure", "force_std")
        return dict(zip(names, stacked.detach().cpu().double().numpy(), strict=True))


def _initial_state(
    atoms_or_state: ase.Atoms | Sequence | MDState | None, config: MDConfig, device: torch.device
) -> tuple[MDState, bool]:
    """The starting state on ``device`` and whether it continues a trajectory."""
    dtype, temperature = config.dtype, config.temperature
    if config.restart is not None:
        frame = read_restart(config.restart)
        state = from_atoms(frame.atoms, 1, 0.0, device, dtype)
        state = state.replace(names=frame.names, step=frame.step, time=frame.time)
        state = state.replace(temperature=_targets(temperature, state))
        as_tensor = lambda x: torch.as_tensor(x, dtype=dtype, device=state.device)  # noqa: E731
        if frame.heat is not None:  # the integrators' init keeps these
            state = state.replace(heat=as_tensor(frame.heat))
        if frame.thermostat is not None:
            state = state.replace(thermostat=as_tensor(frame.thermostat))
        return state, True
    if isinstance(atoms_or_state, MDState):
        state = atoms_or_state.to(device, dtype)
        state = state.replace(temperature=_targets(temperature, state))
    else:
        state = from_atoms(atoms_or_state, config.replicas, temperature, device, dtype)
    init_velocities = config.init_velocities
    if init_velocities is None:
        init_velocities = not bool((state.momenta != 0).any())
    if init_velocities:
        generator = torch.Generator(device=state.device).manual_seed(config.seed + 7919)
        state = maxwell_boltzmann(state, generator=generator)
    return state, False


def _device(model: EnergyModel, name: str | torch.device) -> torch.device:
    """The device of the run: ``auto`` is the model's (where its tensors are)."""
    if name == "auto":
        tensor = next(iter([*model.parameters(), *model.buffers()]), None)
        if tensor is not None:
            return tensor.device
    return resolve_device(name)


def _targets(temperature: float | Sequence[float], state: MDState) -> torch.Tensor:
    t = torch.as_tensor(temperature, dtype=state.dtype, device=state.device)
    if t.ndim == 1 and t.shape[0] not in (1, state.n_systems):
        raise ValueError(f"temperature needs 1 or {state.n_systems} values, got {t.shape[0]}")
    return t.expand(state.n_systems).clone()


def trajectory_attributes(config: MDConfig, spec: EnsembleSpec) -> dict[str, Any]:
    """The attributes of every trajectory group: ensemble, timestep_fs, seed, the mean
    target temperature_K and the parameters of this ensemble only (as float arrays)."""
    return {
        "ensemble": spec.name,
        "timestep_fs": float(config.timestep),
        "seed": int(config.seed),
        "temperature_K": float(np.mean(np.atleast_1d(config.temperature))),
        **{k: np.asarray(v, dtype=float) for k, v in spec.parameter_values(config).items()},
    }


def run_md(
    model: EnergyModel,
    atoms_or_state: ase.Atoms | Sequence | MDState | None = None,
    ensemble: str | None = None,
    config: MDConfig | None = None,
    **options: Any,
) -> MDResult:
    """Run batched MD of ``replicas`` copies of each input system on ``device``
    (``auto``, the default: the model's device).

    The settings are ``config`` (default :data:`~mlip.md.config.DEFAULTS`) with
    ``ensemble`` and any :class:`~mlip.md.config.MDConfig` field given in ``options``
    changed (e.g. ``temperature=300, timestep=0.5, steps=10_000, traj="md.h5"``; an
    unknown name is a TypeError). Units: temperature K (thermostat target and
    Maxwell-Boltzmann draw), timestep fs, skin/min_distance/max_displacement A,
    max_force eV/A. ``ensemble``: a name of :data:`mlip.md.registry.INTEGRATOR_REGISTRY`;
    of the ensemble parameters (``friction`` Langevin gamma 1/fs, ``tau`` Bussi /
    Nose-Hoover time fs, ``chain_length``, ``pressure`` GPa, ``compressibility`` 1/GPa,
    ``tau_p`` fs, each one value or one per system) it takes those the registry lists.
    Systems are ordered input by input, replicas of an input together; ``temperature``
    takes one value, one per input or one per system.
    Velocities are drawn from Maxwell-Boltzmann at ``temperature`` (``seed``) unless the
    input carries momenta (``init_velocities=None``), or when forced with True.
    ``restart``: continue from the last frame (positions, velocities) of a trajectory,
    all its systems (``atoms_or_state`` and ``replicas`` are then ignored; thermostat
    noise restarts from ``seed``); frames are appended to it unless ``traj`` names
    another file. Every ``log_every`` steps the frame goes to ``traj`` (HDF5; its
    groups record the ensemble, its parameters, timestep, seed and mean target
    temperature) and a row per system to ``log`` (CSV). Raises
    :class:`MDExplosionError` naming the system and step when a system blows up; what
    was written stays in the files. ``compile``: run the model through
    ``torch.compile`` (see :mod:`mlip.md.forcefield`; the first step compiles).
    NPT ("npt-langevin", "npt-bussi", periodic systems only, :mod:`mlip.md.barostat`):
    the cell of every frame is written to ``traj``, the log gains volume and pressure,
    and ``conserved`` is the effective energy of the barostat module.
    A committee model (:class:`mlip.committee.Committee`) drives the dynamics with its
    mean; the largest per-atom force std of each system goes to the trajectory, the log
    and ``MDResult.force_std``; ``max_force_std`` (eV/A) stops a system above it and
    ``collect_force_std`` keeps its frames (at log steps) above it, written to
    ``collect`` (:mod:`mlip.md.uncertainty`, checked at the host checks only).
    """
    if ensemble is not None:
        options["ensemble"] = ensemble
    config = (DEFAULTS if config is None else config).replace(**options)
    keep_freed_memory()  # every step reallocates the same large buffers
    steps, log_every = config.steps, config.log_every
    if steps < 0 or log_every < 1:
        raise ValueError(f"need steps >= 0 and log_every >= 1, got {steps}, {log_every}")
    if config.restart is None and atoms_or_state is None:
        raise ValueError("give a structure (atoms_or_state) or a restart trajectory")
    spec = ensemble_spec(config.ensemble)
    state, continuing = _initial_state(atoms_or_state, config, _device(model, config.device))
    integrator = spec.build(config)
    monitor = ExplosionMonitor(config.max_force, config.min_distance, config.max_displacement)
    force_field = ForceField(model, skin=config.skin, compile=config.compile)
    watch = None
    if config.max_force_std is not None or config.collect_force_std is not None:
        if not force_field.committee:
            raise ValueError(
                "max_force_std / collect_force_std need a committee model (mlip train "
                "--committee K)"
            )
        watch = UncertaintyWatch(config.max_force_std, config.collect_force_std)
    sim = Simulation(state, force_field, integrator, monitor, config.check_every)
    restart, traj = config.restart, config.traj
    same_file = restart is not None and (traj is None or Path(traj) == Path(restart))
    traj = restart if same_file else traj
    writer = None
    if traj is not None:
        writer = TrajectoryWriter(
            traj,
            sim.state,
            trajectory_attributes(config, spec),
            f"mlip MD, {type(model).__name__}",
            append=same_file,
            overwrite=config.overwrite,
        )
    csv_log = CSVLog(config.log, append=continuing) if config.log is not None else None
    try:
        result = _loop(
            sim, steps, log_every, writer, csv_log, config.progress, not same_file, watch
        )
    except MDExplosionError as err:
        if traj is not None:  # where the frames up to the explosion are
            err.args = (f"{err}; the trajectory up to the last log step is in {traj}",)
        raise
    finally:
        if writer is not None:
            writer.close()
        if csv_log is not None:
            csv_log.close()
        if watch is not None and config.collect is not None:
            watch.write_frames(config.collect)
    result.config = config
    return result


def _pressure_postfix(obs: dict[str, np.ndarray]) -> dict[str, str]:
    """Mean pressure for the progress bar, when the integrator computes one."""
    finite = obs["pressure"][np.isfinite(obs["pressure"])]
    return {"P_GPa": f"{float(finite.mean()):.3g}"} if finite.size else {}


def _loop(
    sim: Simulation,
    steps: int,
    log_every: int,
    writer: TrajectoryWriter | None,
    csv_log: CSVLog | None,
    progress: bool,
    write_first: bool,
    watch: UncertaintyWatch | None = None,
) -> MDResult:
    series: dict[str, list] = {
        k: []
        for k in (
            "step", "time", "temperature", "potential", "kinetic", "conserved", "volume",
            "pressure", "force_std",
        )
    }  # fmt: skip
    n_atoms, dt = sim.state.n_atoms, sim.integrator.timestep
    all_names = list(sim.state.names)  # columns of the series (NaN once a system stopped)

    def record(write: bool = True) -> dict[str, np.ndarray]:
        obs = sim.observables()
        st = sim.state
        full = obs
        if list(st.names) != all_names:
            columns = [all_names.index(n) for n in st.names]
            full = {k: np.full(len(all_names), np.nan) for k in obs}
            for k, v in obs.items():
                full[k][columns] = v
        for key in ("temperature", "potential", "kinetic", "volume", "pressure", "force_std"):
            series[key].append(full[key])
        series["conserved"].append(full["potential"] + full["kinetic"] - full["heat"])
        series["step"].append(st.step)
        series["time"].append(st.time)
        if writer is not None and write:
            writer.write(st)
        if csv_log is not None and write:
            csv_log.write(st.step, st.time, st.names, obs)
        return obs

    record(write=write_first)
    bar = Progress(steps, "step", "md", enabled=progress)  # no terminal: a line per log step
    start, last = time.perf_counter(), 0
    try:
        for done in sim.run(steps, every=log_every):
            bar.update(done - last)
            last = done
            log_step = done % log_every == 0 or done == steps
            if watch is not None and not watch.check(sim, log_step):
                record()  # every system stopped: their last frames
                break
            if log_step:
                obs = record()
                wall = max(time.perf_counter() - start, 1e-9)
                bar.report(
                    t_ps=f"{sim.state.time / 1000:.3f}",
                    ns_day=f"{done * dt / wall * 0.0864:.3g}",
                    atom_steps_s=f"{done * n_atoms / wall:.3g}",
                    T_K=f"{float(np.mean(obs['temperature'])):.1f}",
                    **_pressure_postfix(obs),
                )
    except MDExplosionError:
        bar.close()
        raise
    bar.close()
    wall = time.perf_counter() - start
    neighbors = sim.force_field.neighbors
    return MDResult(
        state=sim.state,
        steps=np.asarray(series["step"]),
        time=np.asarray(series["time"]),
        temperature=np.stack(series["temperature"]),
        potential=np.stack(series["potential"]),
        kinetic=np.stack(series["kinetic"]),
        conserved=np.stack(series["conserved"]),
        volume=np.stack(series["volume"]),
        pressure=np.stack(series["pressure"]),
        wall_seconds=wall,
        neighbor_builds=0 if neighbors is None else neighbors.builds,
        rollbacks=sim.rollbacks,
        force_std=np.stack(series["force_std"]),
        uncertainty=watch,
    )
