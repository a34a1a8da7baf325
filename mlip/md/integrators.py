"""Integrators over a batched :class:`~mlip.md.state.MDState`, as ``init``/``step`` pairs.

Units: time step dt in fs, friction gamma in 1/fs, relaxation time tau in fs,
temperatures in K. With c = ``AMU_A2_FS2_PER_EV`` (one eV in amu A^2/fs^2), the
elementary operators on momenta p (amu A/fs) and positions R (A) are

    B(h): p <- p + h c F          (kick, F in eV/A)
    A(h): R <- R + h p / m        (drift)

``init(state, force_field)`` computes the initial forces and sets the per-system
bookkeeping (degrees of freedom, thermostat heat); ``step(state, force_field)`` returns
the state one dt later. No method reads device values on the host. Stochastic
integrators draw from their own ``torch.Generator`` seeded with ``seed`` on the state's
device; ``rng_state``/``set_rng_state`` save and restore it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from mlip.md.state import AMU_A2_FS2_PER_EV, KB_EV_PER_K, MDState, zero_com_momentum

ForceFn = Callable[[MDState], MDState]


def kick(state: MDState, h: float) -> MDState:
    """B(h): p <- p + h c F."""
    return state.replace(momenta=state.momenta + (h * AMU_A2_FS2_PER_EV) * state.forces)


def drift(state: MDState, h: float) -> MDState:
    """A(h): R <- R + h p / m."""
    return state.replace(positions=state.positions + h * state.momenta / state.masses[:, None])


def _per_system(value: float | Sequence[float] | torch.Tensor, state: MDState, name: str):
    out = torch.as_tensor(value, dtype=state.dtype, device=state.device)
    if out.ndim > 1 or (out.ndim == 1 and out.shape[0] not in (1, state.n_systems)):
        raise ValueError(f"{name} must be a scalar or one value per system, got {value}")
    return out.expand(state.n_systems).clone()


class VelocityVerlet:
    """NVE velocity Verlet, second order and symplectic: one step is B(dt/2) A(dt) B(dt/2).

    p(t + dt/2) = p(t) + dt/2 c F(t)
    R(t + dt)   = R(t) + dt p(t + dt/2) / m
    p(t + dt)   = p(t + dt/2) + dt/2 c F(t + dt)
    """

    stochastic = False

    def __init__(self, timestep: float) -> None:
        if not timestep > 0:
            raise ValueError(f"timestep must be > 0 fs, got {timestep}")
        self.timestep = float(timestep)

    def init(self, state: MDState, force_field: ForceFn) -> MDState:
        state = force_field(state)
        heat = state.heat if state.heat is not None else torch.zeros_like(state.energy)
        return state.replace(heat=heat)

    def step(self, state: MDState, force_field: ForceFn) -> MDState:
        dt = self.timestep
        state = drift(kick(state, 0.5 * dt), dt)
        state = kick(force_field(state), 0.5 * dt)
        return state.replace(step=state.step + 1, time=state.time + dt)

    def rng_state(self) -> torch.Tensor | None:
        return None

    def set_rng_state(self, rng_state: torch.Tensor | None) -> None:
        pass


class _Stochastic(VelocityVerlet):
    stochastic = True

    def __init__(self, timestep: float, seed: int = 0) -> None:
        super().__init__(timestep)
        self.seed = int(seed)
        self.generator: torch.Generator | None = None

    def _make_generator(self, device: torch.device) -> None:
        if self.generator is None or self.generator.device != device:
            self.generator = torch.Generator(device=device).manual_seed(self.seed)

    def _normal(self, state: MDState) -> torch.Tensor:
        shape, dtype, device = state.positions.shape, state.dtype, state.device
        return torch.randn(shape, generator=self.generator, dtype=dtype, device=device)

    def rng_state(self) -> torch.Tensor | None:
        return None if self.generator is None else self.generator.get_state()

    def set_rng_state(self, rng_state: torch.Tensor | None) -> None:
        if rng_state is not None and self.generator is not None:
            self.generator.set_state(rng_state)


class LangevinBAOAB(_Stochastic):
    """NVT Langevin dynamics, BAOAB splitting (Leimkuhler & Matthews 2013).

    One step is B(dt/2) A(dt/2) O(dt) A(dt/2) B(dt/2) with the exact Ornstein-Uhlenbeck
    update of the momenta of each system s (friction gamma_s, target T_s):

        O: p <- c1 p + sqrt((1 - c1^2) m k_B T_s c) xi,   c1 = exp(-gamma_s dt),
           xi ~ N(0, 1) independent per atom and component.

    Configurational averages are exact to O(dt^2) and the kinetic energy is canonical
    with all 3N degrees of freedom (the noise also moves the centre of mass), so the
    state's ``dof`` becomes 3N. ``heat`` accumulates the kinetic energy change of the O
    steps. ``friction`` gamma (1/fs) and the state's ``temperature`` are per system.
    """

    def __init__(
        self, timestep: float, friction: float | Sequence[float] = 0.01, seed: int = 0
    ) -> None:
        super().__init__(timestep, seed)
        if (torch.as_tensor(friction) < 0).any():
            raise ValueError(f"friction must be >= 0 1/fs, got {friction}")
        self.friction = friction
        self._gamma: torch.Tensor | None = None

    def init(self, state: MDState, force_field: ForceFn) -> MDState:
        self._make_generator(state.device)
        self._gamma = _per_system(self.friction, state, "friction")
        state = state.replace(dof=3.0 * state.num_atoms.to(state.dtype))
        return super().init(state, force_field)

    def _ornstein_uhlenbeck(self, state: MDState) -> MDState:
        c1 = torch.exp(-self._gamma * self.timestep)[state.system_idx]  # (n_atoms,)
        kt = KB_EV_PER_K * state.temperature[state.system_idx] * AMU_A2_FS2_PER_EV
        sigma = torch.sqrt((1.0 - c1 * c1) * state.masses * kt)
        before = state.kinetic_energy()
        momenta = c1[:, None] * state.momenta + sigma[:, None] * self._normal(state)
        state = state.replace(momenta=momenta)
        return state.replace(heat=state.heat + state.kinetic_energy() - before)

    def step(self, state: MDState, force_field: ForceFn) -> MDState:
        dt = self.timestep
        state = drift(kick(state, 0.5 * dt), 0.5 * dt)
        state = drift(self._ornstein_uhlenbeck(state), 0.5 * dt)
        state = kick(force_field(state), 0.5 * dt)
        return state.replace(step=state.step + 1, time=state.time + dt)


class BussiCSVR(_Stochastic):
    """NVT canonical sampling through velocity rescaling (Bussi, Donadio, Parrinello 2007).

    One step is R(dt/2) B(dt/2) A(dt) B(dt/2) R(dt/2). R(h) rescales the momenta of each
    system by alpha = sqrt(K'/K), where K' is the exact solution over time h of the
    stochastic kinetic-energy equation dK = (K_t - K) dt/tau + 2 sqrt(K K_t / N_f) dW/sqrt(tau):

        K' = c K + (1 - c) K_t / N_f (R_1^2 + sum_{i=2}^{N_f} R_i^2)
             + 2 R_1 sqrt(c (1 - c) K K_t / N_f),     c = exp(-h / tau),

    with K_t = N_f k_B T / 2, N_f = 3N - 3 (centre-of-mass momentum held at zero) and
    R_i ~ N(0, 1): the sum of squares is drawn exactly, as the squares of N_f - 1 of
    3N normal numbers per system. The kinetic energy is canonical, the dynamics stays
    close to Newtonian for large tau. ``tau`` (fs) is per system.
    """

    def __init__(self, timestep: float, tau: float | Sequence[float] = 100.0, seed: int = 0):
        super().__init__(timestep, seed)
        if (torch.as_tensor(tau) <= 0).any():
            raise ValueError(f"tau must be > 0 fs, got {tau}")
        self.tau = tau
        self._tau: torch.Tensor | None = None
        self._mask_r1: torch.Tensor | None = None
        self._mask_chi: torch.Tensor | None = None

    def init(self, state: MDState, force_field: ForceFn) -> MDState:
        self._make_generator(state.device)
        self._tau = _per_system(self.tau, state, "tau")
        n = state.num_atoms
        dof = torch.where(n > 1, 3 * n - 3, 3 * n).to(state.dtype)
        state = state.replace(momenta=zero_com_momentum(state), dof=dof)
        first_atom = torch.cumsum(n, 0) - n
        local = torch.arange(state.n_atoms, device=state.device) - first_atom[state.system_idx]
        q = 3 * local[:, None] + torch.arange(3, device=state.device)  # flat index in system
        self._mask_r1 = (q == 0).to(state.dtype)
        self._mask_chi = ((q >= 1) & (q < dof[state.system_idx, None])).to(state.dtype)
        return super().init(state, force_field)

    def _rescale(self, state: MDState, h: float) -> MDState:
        noise = self._normal(state)
        r1 = state.system_sum((noise * self._mask_r1).sum(-1))
        chi2 = state.system_sum((noise * noise * self._mask_chi).sum(-1))
        kinetic = state.kinetic_energy()
        target = 0.5 * state.dof * KB_EV_PER_K * state.temperature
        c = torch.exp(-h / self._tau)
        ratio = target / (state.dof * kinetic.clamp_min(torch.finfo(state.dtype).tiny))
        factor = c + (1 - c) * ratio * (r1 * r1 + chi2) + 2 * r1 * torch.sqrt(c * (1 - c) * ratio)
        alpha = torch.where(kinetic > 0, torch.sqrt(factor.clamp_min(0.0)), torch.ones_like(c))
        heat = state.heat + (alpha * alpha - 1.0) * kinetic
        return state.replace(momenta=state.momenta * alpha[state.system_idx, None], heat=heat)

    def step(self, state: MDState, force_field: ForceFn) -> MDState:
        dt = self.timestep
        state = drift(kick(self._rescale(state, 0.5 * dt), 0.5 * dt), dt)
        state = self._rescale(kick(force_field(state), 0.5 * dt), 0.5 * dt)
        return state.replace(step=state.step + 1, time=state.time + dt)


ENSEMBLES = ("nve", "nvt-langevin", "nvt-bussi", "nvt-nhc", "npt-langevin", "npt-bussi")


def make_integrator(
    ensemble: str,
    timestep: float,
    friction: float | Sequence[float] = 0.01,
    tau: float | Sequence[float] = 100.0,
    seed: int = 0,
    chain_length: int = 3,
    pressure: float | Sequence[float] = 0.0,
    compressibility: float | Sequence[float] = 0.01,
    tau_p: float | Sequence[float] = 1000.0,
) -> VelocityVerlet:
    """The integrator of an ensemble name (``ENSEMBLES``); dt in fs, gamma 1/fs, tau fs.

    ``tau`` is the Bussi or Nose-Hoover relaxation time, ``chain_length`` the number of
    Nose-Hoover thermostats in each chain ("nvt-nhc"). The NPT ensembles ("npt-langevin",
    "npt-bussi": stochastic cell rescaling, :mod:`mlip.md.barostat`) take the target
    ``pressure`` (GPa), the ``compressibility`` (1/GPa) and the barostat time ``tau_p`` (fs).
    """
    name = ensemble.lower()
    if name == "nve":
        return VelocityVerlet(timestep)
    if name in ("nvt-langevin", "langevin"):
        return LangevinBAOAB(timestep, friction=friction, seed=seed)
    if name in ("nvt-bussi", "bussi", "csvr"):
        return BussiCSVR(timestep, tau=tau, seed=seed)
    if name in ("nvt-nhc", "nhc", "nose-hoover"):
        from mlip.md.nose_hoover import NoseHooverChain  # imports this module

        return NoseHooverChain(timestep, tau=tau, chain_length=chain_length)
    if name in ("npt-langevin", "npt-bussi"):
        from mlip.md.barostat import NPTBussi, NPTLangevin  # imports this module

        baro = {"pressure": pressure, "compressibility": compressibility, "tau_p": tau_p}
        if name == "npt-langevin":
            return NPTLangevin(timestep, friction=friction, seed=seed, **baro)
        return NPTBussi(timestep, tau=tau, seed=seed, **baro)
    raise ValueError(f"unknown ensemble '{ensemble}', choose one of {ENSEMBLES}")
