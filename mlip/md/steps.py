"""Elementary operators of the splitting integrators, and :class:`Integrator`, which
composes them into one MD step.

Units: time step dt and h in fs, friction gamma in 1/fs, relaxation time tau in fs,
temperatures in K. With c = ``AMU_A2_FS2_PER_EV`` (one eV in amu A^2/fs^2), the
operators on momenta p (amu A/fs) and positions R (A) of every system s are

    B(h): p <- p + h c F                                   (kick, F in eV/A)
    A(h): R <- R + h p / m                                 (drift)
    F:    energy, forces (and stress) at the current R and cell (the force field)
    O(h): p <- c1 p + sqrt((1 - c1^2) m k_B T_s c) xi,     c1 = exp(-gamma_s h)
    R(h): p <- alpha_s p                                   (Bussi rescaling)

with xi ~ N(0, 1) per atom and component and alpha_s drawn so that the kinetic energy
follows the Bussi stochastic equation over h (:class:`BussiRescale`). The Nose-Hoover
chain half-step NHC(h) is in :mod:`mlip.md.nose_hoover`, the cell rescaling C.A(h) in
:mod:`mlip.md.barostat`; the compositions of the ensembles in :mod:`mlip.md.integrators`
and those two modules, their names and needs in :mod:`mlip.md.registry`.

An operator has ``setup(state, force_field) -> state``, run once by
:meth:`Integrator.init` (per-system parameters, degrees of freedom, thermostat
variables), and ``__call__(state, h, force_field) -> state``. The stochastic operators
of one integrator draw, in the order of its splitting, from one :class:`NoiseSource`.
No operator reads device values on the host after ``setup``; none changes the force
field (the runner configures it, :mod:`mlip.md.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from mlip.md.config import DEFAULTS, PerSystem
from mlip.md.state import (
    AMU_A2_FS2_PER_EV,
    KB_EV_PER_K,
    MDState,
    degrees_of_freedom,
    per_system,
    zero_com_momentum,
)

ForceFn = Callable[[MDState], MDState]


class Operator(Protocol):
    """One factor of a splitting (see the module doc)."""

    def setup(self, state: MDState, force_field: ForceFn) -> MDState: ...

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState: ...


# --- deterministic operators ---------------------------------------------------------------
def kick(state: MDState, h: float) -> MDState:
    """B(h): p <- p + h c F."""
    return state.replace(momenta=state.momenta + (h * AMU_A2_FS2_PER_EV) * state.forces)


def drift(state: MDState, h: float) -> MDState:
    """A(h): R <- R + h p / m."""
    return state.replace(positions=state.positions + h * state.momenta / state.masses[:, None])


class Kick:
    """B(h): p <- p + h c F (the forces of the state)."""

    def setup(self, state: MDState, force_field: ForceFn) -> MDState:
        return state

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState:
        return kick(state, h)


class Drift:
    """A(h): R <- R + h p / m."""

    def setup(self, state: MDState, force_field: ForceFn) -> MDState:
        return state

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState:
        return drift(state, h)


class Forces:
    """F: energy, forces (and stress) from the force field at the current positions."""

    def setup(self, state: MDState, force_field: ForceFn) -> MDState:
        return state

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState:
        return force_field(state)


KICK, DRIFT, FORCES = Kick(), Drift(), Forces()


# --- stochastic operators --------------------------------------------------------------
@dataclass(eq=False)
class NoiseSource:
    """The random stream of a stochastic integrator: a ``torch.Generator`` seeded with
    ``seed`` on the state's device, created at the first :meth:`start` (and again only
    if the device changes, so a re-initialised integrator continues its stream)."""

    seed: int = DEFAULTS.seed
    generator: torch.Generator | None = None

    def start(self, device: torch.device) -> None:
        if self.generator is None or self.generator.device != device:
            self.generator = torch.Generator(device=device).manual_seed(int(self.seed))

    def normal(self, shape: tuple[int, ...], state: MDState) -> torch.Tensor:
        """xi ~ N(0, 1) of ``shape``, in the state's dtype and on its device."""
        return torch.randn(shape, generator=self.generator, dtype=state.dtype, device=state.device)

    def get_state(self) -> torch.Tensor | None:
        return None if self.generator is None else self.generator.get_state()

    def set_state(self, rng_state: torch.Tensor | None) -> None:
        if rng_state is not None and self.generator is not None:
            self.generator.set_state(rng_state)


class OrnsteinUhlenbeck:
    """O(h): the exact Ornstein-Uhlenbeck update of the momenta of each system s,

        p <- c1 p + sqrt((1 - c1^2) m k_B T_s c) xi,   c1 = exp(-gamma_s h),

    xi ~ N(0, 1) per atom and component, T_s = ``state.temperature``. The noise also
    moves the centre of mass, so ``setup`` sets ``dof`` = 3N; ``heat`` accumulates the
    kinetic-energy change. ``friction`` gamma (1/fs, >= 0) is a scalar or per system.
    """

    def __init__(self, friction: PerSystem, noise: NoiseSource) -> None:
        if (torch.as_tensor(friction) < 0).any():
            raise ValueError(f"friction must be >= 0 1/fs, got {friction}")
        self.friction, self.noise = friction, noise
        self.gamma: torch.Tensor | None = None  # (n_systems,) 1/fs, set by setup

    def setup(self, state: MDState, force_field: ForceFn) -> MDState:
        self.gamma = per_system(self.friction, state, "friction")
        return state.replace(dof=degrees_of_freedom(state.num_atoms, state.dtype, fixed_com=False))

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState:
        c1 = torch.exp(-self.gamma * h)[state.system_idx]  # (n_atoms,)
        kt = KB_EV_PER_K * state.temperature[state.system_idx] * AMU_A2_FS2_PER_EV
        sigma = torch.sqrt((1.0 - c1 * c1) * state.masses * kt)
        before = state.kinetic_energy()
        noise = self.noise.normal(tuple(state.positions.shape), state)
        state = state.replace(momenta=c1[:, None] * state.momenta + sigma[:, None] * noise)
        return state.replace(heat=state.heat + state.kinetic_energy() - before)


@dataclass(frozen=True)
class BussiMasks:
    """Which of the 3N normal numbers of each system make R_1 and the chi^2 sum."""

    r1: torch.Tensor  # (n_atoms, 3): the first component of the system's first atom
    chi: torch.Tensor  # (n_atoms, 3): the next N_f - 1 components


class BussiRescale:
    """R(h): canonical velocity rescaling (Bussi, Donadio, Parrinello 2007) over time h.

    The momenta of system s are scaled by alpha = sqrt(K'/K), K' the exact solution
    over h of dK = (K_t - K) dt/tau + 2 sqrt(K K_t / N_f) dW/sqrt(tau):

        K' = c K + (1 - c) K_t / N_f (R_1^2 + sum_{i=2}^{N_f} R_i^2)
             + 2 R_1 sqrt(c (1 - c) K K_t / N_f),     c = exp(-h / tau),

    K_t = N_f k_B T / 2, R_i ~ N(0, 1) (the sum of squares drawn as the squares of
    N_f - 1 of 3N normal numbers per system). ``setup`` zeroes the centre-of-mass
    momenta and sets N_f = 3N - 3; ``heat`` accumulates (alpha^2 - 1) K. ``tau`` (fs,
    > 0) is a scalar or per system.
    """

    def __init__(self, tau: PerSystem, noise: NoiseSource) -> None:
        if (torch.as_tensor(tau) <= 0).any():
            raise ValueError(f"tau must be > 0 fs, got {tau}")
        self.tau, self.noise = tau, noise
        self.tau_s: torch.Tensor | None = None  # (n_systems,) fs, set by setup
        self.masks: BussiMasks | None = None

    def setup(self, state: MDState, force_field: ForceFn) -> MDState:
        self.tau_s = per_system(self.tau, state, "tau")
        n = state.num_atoms
        dof = degrees_of_freedom(n, state.dtype)
        state = state.replace(momenta=zero_com_momentum(state), dof=dof)
        first_atom = torch.cumsum(n, 0) - n
        local = torch.arange(state.n_atoms, device=state.device) - first_atom[state.system_idx]
        q = 3 * local[:, None] + torch.arange(3, device=state.device)  # flat index in system
        self.masks = BussiMasks(
            r1=(q == 0).to(state.dtype),
            chi=((q >= 1) & (q < dof[state.system_idx, None])).to(state.dtype),
        )
        return state

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState:
        noise = self.noise.normal(tuple(state.positions.shape), state)
        r1 = state.system_sum((noise * self.masks.r1).sum(-1))
        chi2 = state.system_sum((noise * noise * self.masks.chi).sum(-1))
        kinetic = state.kinetic_energy()
        target = 0.5 * state.dof * KB_EV_PER_K * state.temperature
        c = torch.exp(-h / self.tau_s)
        ratio = target / (state.dof * kinetic.clamp_min(torch.finfo(state.dtype).tiny))
        factor = c + (1 - c) * ratio * (r1 * r1 + chi2) + 2 * r1 * torch.sqrt(c * (1 - c) * ratio)
        alpha = torch.where(kinetic > 0, torch.sqrt(factor.clamp_min(0.0)), torch.ones_like(c))
        heat = state.heat + (alpha * alpha - 1.0) * kinetic
        return state.replace(momenta=state.momenta * alpha[state.system_idx, None], heat=heat)


# --- the composition ---------------------------------------------------------------------
class Integrator:
    """One MD step as a splitting: operators applied in turn, each over a fraction of dt.

    ``splitting`` is a sequence of (operator, fraction): velocity Verlet is
    ``((KICK, 0.5), (DRIFT, 1.0), (FORCES, 0.0), (KICK, 0.5))``, B(dt/2) A(dt) F B(dt/2).
    ``init(state, force_field)`` runs every operator's ``setup`` (in order of first
    appearance), computes the forces and starts ``heat`` at zero (a state that carries
    heat keeps it); ``step(state, force_field)`` returns the state one dt later.
    ``noise`` is the random stream of the stochastic operators (None: deterministic);
    ``rng_state``/``set_rng_state`` save and restore it. ``ensemble`` is the name of the
    integrator in :data:`mlip.md.registry.INTEGRATOR_REGISTRY`, which declares what it
    needs from the force field and the systems.
    """

    ensemble: str = "custom"

    def __init__(
        self,
        timestep: float,
        splitting: Sequence[tuple[Operator, float]],
        noise: NoiseSource | None = None,
    ) -> None:
        if not timestep > 0:
            raise ValueError(f"timestep must be > 0 fs, got {timestep}")
        self.timestep = float(timestep)
        self.splitting = tuple((op, float(fraction)) for op, fraction in splitting)
        self.noise = noise

    @property
    def stochastic(self) -> bool:
        return self.noise is not None

    @property
    def operators(self) -> list[Operator]:
        """The distinct operators of the splitting, in order of first appearance."""
        out: list[Operator] = []
        for op, _ in self.splitting:
            if not any(op is seen for seen in out):
                out.append(op)
        return out

    def init(self, state: MDState, force_field: ForceFn) -> MDState:
        if self.noise is not None:
            self.noise.start(state.device)
        for op in self.operators:
            state = op.setup(state, force_field)
        state = force_field(state)
        heat = state.heat if state.heat is not None else torch.zeros_like(state.energy)
        return state.replace(heat=heat)

    def step(self, state: MDState, force_field: ForceFn) -> MDState:
        dt = self.timestep
        for op, fraction in self.splitting:
            state = op(state, fraction * dt, force_field)
        return state.replace(step=state.step + 1, time=state.time + dt)

    def rng_state(self) -> torch.Tensor | None:
        return None if self.noise is None else self.noise.get_state()

    def set_rng_state(self, rng_state: torch.Tensor | None) -> None:
        if self.noise is not None:
            self.noise.set_state(rng_state)
