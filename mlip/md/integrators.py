"""NVE and stochastic NVT integrators over a batched :class:`~mlip.md.state.MDState`.

Each is a splitting of the elementary operators of :mod:`mlip.md.steps` (units there:
dt in fs, gamma in 1/fs, tau in fs, temperatures in K; B is the kick, A the drift, F the
force evaluation, O the Ornstein-Uhlenbeck step, R the Bussi rescaling):

    nve           B(dt/2) A(dt) F B(dt/2)                     :class:`VelocityVerlet`
    nvt-langevin  B(dt/2) A(dt/2) O(dt) A(dt/2) F B(dt/2)     :class:`LangevinBAOAB`
    nvt-bussi     R(dt/2) B(dt/2) A(dt) F B(dt/2) R(dt/2)     :class:`BussiCSVR`

Nose-Hoover chains are in :mod:`mlip.md.nose_hoover`, NPT in :mod:`mlip.md.barostat`;
:mod:`mlip.md.registry` names them all and builds them from an
:class:`~mlip.md.config.MDConfig`. ``init(state, force_field)`` computes the initial
forces and sets the per-system bookkeeping (degrees of freedom, thermostat heat);
``step(state, force_field)`` returns the state one dt later. No method reads device
values on the host. Stochastic integrators draw from their own ``torch.Generator``
seeded with ``seed`` on the state's device; ``rng_state``/``set_rng_state`` save and
restore it.
"""

from __future__ import annotations

from mlip.md.config import DEFAULTS, PerSystem
from mlip.md.steps import (
    DRIFT,
    FORCES,
    KICK,
    BussiRescale,
    Integrator,
    NoiseSource,
    OrnsteinUhlenbeck,
)


class VelocityVerlet(Integrator):
    """NVE velocity Verlet, second order and symplectic: one step is B(dt/2) A(dt) B(dt/2).

    p(t + dt/2) = p(t) + dt/2 c F(t)
    R(t + dt)   = R(t) + dt p(t + dt/2) / m
    p(t + dt)   = p(t + dt/2) + dt/2 c F(t + dt)
    """

    ensemble = "nve"

    def __init__(self, timestep: float = DEFAULTS.timestep) -> None:
        super().__init__(timestep, ((KICK, 0.5), (DRIFT, 1.0), (FORCES, 0.0), (KICK, 0.5)))


class LangevinBAOAB(Integrator):
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

    ensemble = "nvt-langevin"

    def __init__(
        self,
        timestep: float = DEFAULTS.timestep,
        friction: PerSystem = DEFAULTS.friction,
        seed: int = DEFAULTS.seed,
    ) -> None:
        noise = NoiseSource(seed)
        self.thermostat = OrnsteinUhlenbeck(friction, noise)
        o = self.thermostat
        splitting = ((KICK, 0.5), (DRIFT, 0.5), (o, 1.0), (DRIFT, 0.5), (FORCES, 0.0), (KICK, 0.5))
        super().__init__(timestep, splitting, noise)


class BussiCSVR(Integrator):
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

    ensemble = "nvt-bussi"

    def __init__(
        self,
        timestep: float = DEFAULTS.timestep,
        tau: PerSystem = DEFAULTS.tau,
        seed: int = DEFAULTS.seed,
    ) -> None:
        noise = NoiseSource(seed)
        self.thermostat = BussiRescale(tau, noise)
        r = self.thermostat
        splitting = ((r, 0.5), (KICK, 0.5), (DRIFT, 1.0), (FORCES, 0.0), (KICK, 0.5), (r, 0.5))
        super().__init__(timestep, splitting, noise)
