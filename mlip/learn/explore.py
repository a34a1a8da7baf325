"""Exploration: batched MD of the seeds with the current committee, candidates by spread.

Every seed runs at every temperature (``replicas`` copies each) in one batch
(:class:`mlip.md.Simulation`, ensemble from the registry); the committee mean drives the
dynamics and :class:`mlip.md.uncertainty.UncertaintyWatch` reads the spread at the host
checks of every ``sample_every`` steps (one host copy each): a frame whose largest
per-atom force std exceeds ``min_force_std`` is a candidate, a system whose spread (its
largest since the previous sample) exceeds ``stop_force_std`` (None:
``max_force_std``) stops there (it left the
region the committee knows; not at the seed itself, labelled already) and that last
frame is a candidate too, and a system that explodes
(:class:`mlip.md.MDExplosionError`) is dropped and counted; the others go on.
``starts`` (system name -> ``ase.Atoms`` with momenta, the ``last`` frames of an earlier
round) continue those systems where they were (positions, momenta and cell; a thermostat's
own variables start afresh); the other systems start at their seed with Maxwell-Boltzmann
momenta. Units: K, fs, eV/A.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms

from mlip.fields import resolve_device
from mlip.learn.config import LearnConfig
from mlip.learn.select import GROUP_KEY
from mlip.md import (
    ExplosionMonitor,
    ForceField,
    MDConfig,
    MDExplosionError,
    Simulation,
    UncertaintyWatch,
    ensemble_spec,
    from_atoms,
    maxwell_boltzmann,
)
from mlip.md.state import ASE_MOMENTUM_PER_AMU_A_FS
from mlip.progress import Progress


@dataclass
class Exploration:
    """What a round of MD found. Times in fs, spreads in eV/A."""

    candidates: list[Atoms]
    peaks: dict[str, float]  # system -> largest force std seen
    reached: dict[str, float]  # system -> MD time reached (fs)
    stopped: list[str] = field(default_factory=list)  # above stop_force_std
    exploded: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    last: list[Atoms] = field(default_factory=list)  # the systems still running at the end

    @property
    def cut_short(self) -> bool:
        """Whether a system stopped (above the stop threshold) or exploded."""
        return bool(self.stopped or self.exploded)

    def row(self) -> dict[str, float]:
        peaks = np.array(list(self.peaks.values()) or [np.nan])
        reached = np.array(list(self.reached.values()) or [np.nan])
        return {
            "md_largest_std": float(np.max(peaks)),
            "md_mean_std": float(np.mean(peaks)),
            "md_time_ps": float(np.mean(reached)) / 1000.0,
            "md_min_time_ps": float(np.min(reached)) / 1000.0,
            "md_systems": len(self.peaks),
            "md_stopped": len(self.stopped),
            "md_exploded": len(self.exploded),
            "candidates": len(self.candidates),
        }


def explore(
    committee: torch.nn.Module,
    seeds: list[tuple[str, Atoms]],
    config: LearnConfig,
    round_index: int,
    starts: dict[str, Atoms] | None = None,
) -> Exploration:
    """One round of MD from ``seeds`` ((group, atoms) pairs), systems named in ``starts``
    continued from those frames; see the module docstring."""
    import time

    temps = list(config.temperature)
    inputs = [atoms for _, atoms in seeds for _ in temps]
    groups = [group for group, _ in seeds for _ in temps]
    md = MDConfig(
        ensemble=config.ensemble, timestep=config.timestep, friction=config.friction,
        tau=config.tau, seed=config.seed + 1000 * round_index,
        device=resolve_device(config.device),
        temperature=[t for _ in seeds for t in temps], replicas=config.replicas,
    )  # fmt: skip
    state = from_atoms(inputs, md.replicas, md.temperature, md.device, md.dtype)
    generator = torch.Generator(device=state.device).manual_seed(md.seed + 7919)
    state = maxwell_boltzmann(state, generator=generator)
    if starts:
        state = _continued(state, starts)
    group_of = {name: groups[int(name[:4])] for name in state.names}  # "kkkk_formula_rR"
    sim = Simulation(state, ForceField(committee, skin=md.skin), ensemble_spec(md.ensemble)
                     .build(md), ExplosionMonitor(md.max_force, md.min_distance))  # fmt: skip
    watch = UncertaintyWatch(config.stop_std, config.min_force_std)
    reached: dict[str, float] = {}
    exploded: list[str] = []
    start_step, start = sim.state.step, time.perf_counter()
    # a bar on a terminal; else a line per tenth of the round (at a sample step)
    bar = Progress(config.md_steps, "step", f"round {round_index} MD", enabled=config.progress,
                   text_every=max(config.sample_every, config.md_steps // 10))  # fmt: skip
    # the spread of the starting frames, the seeds themselves (labelled in round 0): a
    # system is stopped only once it has moved, so that its last frame is new
    running = watch.check(sim, log_step=False, stop=False)
    while running and sim.state.step - start_step < config.md_steps:
        remaining = config.md_steps - (sim.state.step - start_step)
        try:
            for _ in sim.run(remaining, every=config.sample_every):
                step = int(sim.state.step - start_step)
                bar.update(step - bar.count)
                sample = step % config.sample_every == 0
                if not sample and step < config.md_steps:
                    continue  # the spread's running maximum goes on to the next sample
                names, time_fs = list(sim.state.names), float(sim.state.time)
                running = watch.check(sim, log_step=sample)
                for name in set(names) - set(sim.state.names) if running else names:
                    reached[name] = time_fs  # stopped above stop_force_std
                if sample:
                    bar.report(systems=sim.state.n_systems, candidates=len(watch.frames))
                if not running:
                    break
        except MDExplosionError as err:
            exploded.append(err.name)
            reached[err.name] = float(sim.state.time)
            keep = torch.ones(sim.state.n_systems, dtype=torch.bool)
            keep[err.system] = False
            running = bool(keep.any())
            if running:
                sim.select(keep)
    bar.close()
    last: list[Atoms] = []
    if running:
        reached.update({n: float(sim.state.time) for n in sim.state.names})
        for name, atoms in zip(sim.state.names, sim.state.to_atoms(), strict=True):
            atoms.info["system"] = name
            last.append(atoms)
    frames = []
    for frame in watch.frames:
        frame.info[GROUP_KEY] = group_of[frame.info["system"]]
        frames.append(frame)
    return Exploration(
        candidates=frames, peaks=dict(watch.peak), reached=reached,
        stopped=sorted(watch.stopped), exploded=exploded,
        wall_seconds=time.perf_counter() - start, last=last,
    )  # fmt: skip


def _continued(state, starts: dict[str, Atoms]):  # noqa: ANN001, ANN202 (MDState)
    """``state`` with the positions, momenta (and cells) of the systems named in ``starts``."""
    positions, momenta, cell = state.positions.clone(), state.momenta.clone(), state.cell.clone()
    for s, name in enumerate(state.names):
        atoms = starts.get(name)
        if atoms is None:
            continue
        part = state.system_idx == s  # a system's atoms (contiguous, in its order)
        if len(atoms) != int(part.sum()):
            raise ValueError(f"continuing {name}: {len(atoms)} atoms, the system has "
                             f"{int(part.sum())}")  # fmt: skip
        positions[part] = torch.as_tensor(atoms.positions, dtype=state.dtype)
        p = atoms.get_momenta() / ASE_MOMENTUM_PER_AMU_A_FS
        momenta[part] = torch.as_tensor(p, dtype=state.dtype)
        if atoms.pbc.any():
            cell[s] = torch.as_tensor(atoms.cell.array, dtype=state.dtype)
    return state.replace(positions=positions, momenta=momenta, cell=cell)
