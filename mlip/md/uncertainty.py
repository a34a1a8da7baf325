"""Committee uncertainty during MD, read at the host checks only.

With a committee model (:class:`mlip.committee.Committee`) the force field leaves on
the device, every step, each system's largest per-atom force std (eV/A) and its running
maximum since the last check (``MDState.force_std``, ``MDState.force_std_max``,
:mod:`mlip.md.forcefield`). At each host check (the end of a chunk,
:class:`mlip.md.runner.Simulation`) :meth:`UncertaintyWatch.check` copies these two
small vectors to the host, once, clears the running maximum and

* records the largest force std of every system so far (``peak``);
* with ``max_force_std``: stops the systems whose running maximum exceeded it (removed
  from the batch with :meth:`Simulation.select`; ``stopped`` keeps the step, time and
  value; the others go on);
* with ``collect_force_std``: at log steps, keeps the frames of the systems whose force
  std exceeds it, and the last frame of every system stopped (``frames``: ``ase.Atoms``
  with ``info`` system, step, time_fs, force_std_eVA, stopped), written by
  :meth:`UncertaintyWatch.write_frames` to any ASE format (extxyz).

Nothing here runs inside a chunk, so MD stays free of host syncs between checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import ase
import numpy as np
import torch

from mlip.fileio import atomic_path
from mlip.md.state import MDState


@dataclass(frozen=True)
class Stopped:
    """Where a system was stopped: step, time (fs) and its force std (eV/A) then."""

    step: int
    time: float
    force_std: float


class UncertaintyWatch:
    """Peaks, stops and collected frames of a committee MD run (see the module docstring).

    ``max_force_std`` and ``collect_force_std`` in eV/A (None: off).
    """

    def __init__(
        self, max_force_std: float | None = None, collect_force_std: float | None = None
    ) -> None:
        for name, value in (("max_force_std", max_force_std),
                            ("collect_force_std", collect_force_std)):  # fmt: skip
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 eV/A, got {value}")
        self.max_force_std = max_force_std
        self.collect_force_std = collect_force_std
        self.peak: dict[str, float] = {}
        self.stopped: dict[str, Stopped] = {}
        self.frames: list[ase.Atoms] = []

    def check(self, sim, log_step: bool, stop: bool = True) -> bool:  # noqa: ANN001 (Simulation)
        """Read the spread (one host copy), stop and collect; False once no system is left
        (the state then still holds the systems stopped last). ``stop=False`` only
        records the peaks and collects (e.g. the starting frames, which are known)."""
        state: MDState = sim.state
        if state.force_std is None:
            raise ValueError("uncertainty needs a committee model (mlip train --committee K)")
        current, largest = torch.stack([state.force_std, state.force_std_max]).cpu().double()
        current, largest = current.numpy(), largest.numpy()
        sim.state = state.replace(force_std_max=None)
        for name, value in zip(state.names, largest, strict=True):
            self.peak[name] = max(self.peak.get(name, 0.0), float(value))
        over = np.zeros(len(largest), dtype=bool)
        if stop and self.max_force_std is not None:
            over = largest > self.max_force_std
        if self.collect_force_std is not None:
            chosen = current > self.collect_force_std
            chosen = (chosen & log_step) | over  # a stopped system's last frame too
            if chosen.any():
                atoms = state.to_atoms()
                for s in np.nonzero(chosen)[0].tolist():
                    frame = atoms[s]
                    frame.info.update(
                        system=state.names[s],
                        step=int(state.step),
                        time_fs=float(state.time),
                        force_std_eVA=float(current[s]),
                        stopped=bool(over[s]),
                    )
                    self.frames.append(frame)
        if not over.any():
            return True
        for s in np.nonzero(over)[0].tolist():
            self.stopped[state.names[s]] = Stopped(
                int(state.step), float(state.time), float(largest[s])
            )
        if over.all():
            return False
        sim.select(torch.as_tensor(~over))
        return True

    def write_frames(self, path: str | os.PathLike) -> int:
        """Write the collected frames to ``path`` (any ASE format), atomically; returns
        how many (none: no file)."""
        if not self.frames:
            return 0
        import ase.io

        with atomic_path(path) as temp:
            ase.io.write(str(temp), self.frames, format=_format(path))
        return len(self.frames)

    def summary(self) -> str:
        """One line per system: largest force std, and where it was stopped."""
        lines = []
        for name, value in self.peak.items():
            stop = self.stopped.get(name)
            where = f", stopped at step {stop.step} ({stop.time / 1000:.3g} ps)" if stop else ""
            lines.append(f"  {name}: largest force std {value:.4g} eV/A{where}")
        return "\n".join(lines)


def _format(path: str | os.PathLike) -> str | None:
    name = os.fspath(path).lower()
    return "extxyz" if name.endswith((".xyz", ".extxyz")) else None
