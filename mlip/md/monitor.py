"""Explosion detection for batched MD, evaluated on the device.

A system is declared exploded at the first step where

* a force is not finite or larger than ``max_force`` (eV/A): |F_a| > max_force,
* a position is not finite,
* an atom moved further than ``max_displacement`` (A) from where the run started
  (off by default; catches atoms flying apart in vacuum),
* two atoms (an edge of the neighbour list) are closer than ``min_distance`` (A).

The first three are tested after every step without reading anything on the host; the
distance test, which needs edge vectors, runs at the host synchronisation points
(``check_distances``). The host reads the flags only at those points
(``raise_if_exploded``), so the step named is exact while the stop comes at the next
synchronisation point.
"""

from __future__ import annotations

import torch

from mlip import keys
from mlip.md.config import DEFAULTS
from mlip.md.state import MDState
from mlip.nn.geometry import edge_vectors

_REASONS = {
    1: "a force is not finite or |F| exceeds max_force = {limit} eV/A (|F| = {value:.4g} eV/A)",
    2: "a position is not finite",
    3: "an atom moved {value:.4g} A from its start, more than max_displacement = {limit} A",
    4: "two atoms are {value:.4g} A apart, closer than min_distance = {limit} A",
}


class MDExplosionError(ValueError):
    """The simulation of a system blew up; names the system, the step and the reason.

    A ValueError (the timestep, the temperature or the model's range is the cause, a
    setting the user changes); ``mlip md`` exits with :attr:`exit_status` 2 on it."""

    exit_status = 2

    def __init__(self, message: str, system: int, name: str, step: int) -> None:
        super().__init__(message)
        self.system, self.name, self.step = system, name, step


def _system_max(state: MDState, per_atom: torch.Tensor) -> torch.Tensor:
    out = torch.full(
        (state.n_systems,), float("-inf"), dtype=per_atom.dtype, device=per_atom.device
    )
    return out.scatter_reduce(0, state.system_idx, per_atom, reduce="amax")


class ExplosionMonitor:
    """Per-system device flags: first bad step (-1 if none), reason code and value."""

    def __init__(
        self,
        max_force: float = DEFAULTS.max_force,
        min_distance: float = DEFAULTS.min_distance,
        max_displacement: float | None = None,
    ) -> None:
        if not max_force > 0:
            raise ValueError(f"max_force must be > 0 eV/A, got {max_force}")
        if min_distance < 0:
            raise ValueError(f"min_distance must be >= 0 A, got {min_distance}")
        if max_displacement is not None and not max_displacement > 0:
            raise ValueError(f"max_displacement must be > 0 A or None, got {max_displacement}")
        self.max_force, self.min_distance = float(max_force), float(min_distance)
        self.max_displacement = max_displacement
        self.first_bad: torch.Tensor | None = None
        self.reason: torch.Tensor | None = None
        self.value: torch.Tensor | None = None
        self.start: torch.Tensor | None = None

    def reset(self, state: MDState) -> None:
        n, device = state.n_systems, state.device
        self.first_bad = torch.full((n,), -1, dtype=torch.long, device=device)
        self.reason = torch.zeros(n, dtype=torch.long, device=device)
        self.value = torch.zeros(n, dtype=state.dtype, device=device)
        self.start = state.positions.detach().clone() if self.max_displacement else None

    def snapshot(self) -> tuple:
        return self.first_bad, self.reason, self.value

    def restore(self, snap: tuple) -> None:
        self.first_bad, self.reason, self.value = snap

    def _record(self, state: MDState, bad: torch.Tensor, code: int, value: torch.Tensor) -> None:
        new = bad & (self.first_bad < 0)
        self.first_bad = torch.where(new, state.step, self.first_bad)
        self.reason = torch.where(new, code, self.reason)
        self.value = torch.where(new, value.to(self.value.dtype), self.value)

    def update(self, state: MDState) -> None:
        """Test forces, positions and displacements of the current step (device only)."""
        force2 = (state.forces**2).sum(-1)
        fmax = torch.sqrt(_system_max(state, torch.nan_to_num(force2, nan=float("inf"))))
        self._record(state, ~(fmax <= self.max_force), 1, fmax)
        finite = torch.isfinite(state.positions).all(-1).to(state.dtype)
        self._record(state, _system_max(state, -finite) > -1, 2, torch.zeros_like(fmax))
        if self.start is not None:
            moved = torch.sqrt(_system_max(state, ((state.positions - self.start) ** 2).sum(-1)))
            self._record(state, moved > self.max_displacement, 3, moved)

    def check_distances(self, state: MDState, batch: dict[str, torch.Tensor]) -> None:
        """Test the shortest edge of each system (device only; call at sync points)."""
        if self.min_distance <= 0 or batch[keys.EDGE_INDEX].shape[1] == 0:
            return
        length = edge_vectors(batch).norm(dim=-1)
        shortest = torch.full(
            (state.n_systems,), float("inf"), dtype=length.dtype, device=length.device
        )
        shortest = shortest.scatter_reduce(
            0, state.system_idx[batch[keys.EDGE_INDEX][0]], length, reduce="amin"
        )
        self._record(state, shortest < self.min_distance, 4, shortest)

    def any_bad(self) -> torch.Tensor:
        """0-d device bool: has any system exploded?"""
        return (self.first_bad >= 0).any()

    def raise_if_exploded(self, state: MDState) -> None:
        """Read the flags (one host sync) and raise MDExplosionError for the first system."""
        first = self.first_bad.cpu()
        if not bool((first >= 0).any()):
            return
        s = int(torch.nonzero(first >= 0)[0])
        code, value = int(self.reason[s]), float(self.value[s])
        limit = {1: self.max_force, 2: None, 3: self.max_displacement, 4: self.min_distance}[code]
        name = state.names[s] if s < len(state.names) else str(s)
        reason = _REASONS[code].format(limit=limit, value=value)
        others = int((first >= 0).sum()) - 1
        more = f" ({others} other system(s) also flagged)" if others else ""
        raise MDExplosionError(
            f"MD exploded: system {s} ({name}) at step {int(first[s])}: {reason}{more}",
            system=s,
            name=name,
            step=int(first[s]),
        )
