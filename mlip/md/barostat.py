"""Isothermal-isobaric (NPT) MD: isotropic stochastic cell rescaling, batched per system.

Stochastic cell rescaling (Bernetti & Bussi, J. Chem. Phys. 153, 114107 (2020)) is a
first-order barostat with the correct volume fluctuations: the logarithm of the volume,
epsilon = ln V, follows the Ito equation

    d epsilon = -(beta_T / tau_p) (P_0 - P_int - (3N - N_f) k_B T / (3V)) dt
                + sqrt(2 k_B T beta_T / (V tau_p)) dW,

with P_0 the target pressure, beta_T the (estimated) isothermal compressibility, tau_p
the relaxation time, T the thermostat target of the system and N_f = ``state.dof`` its
kinetic degrees of freedom. The internal pressure estimator is

    P_int = 2 K / (3 V) - tr(sigma) / 3,

K the kinetic energy and sigma = (1/V) dE/d(strain) the stress of the force field
(ASE sign, ``state.stress``); the (3N - N_f) k_B T / (3V) term is the ideal-gas
pressure of the centre-of-mass momenta a thermostat keeps at zero (k_B T / V for
Bussi, 0 for Langevin, which thermalises all 3N momenta). A change d epsilon scales,
with s = exp(d epsilon / 3),

    cell <- s cell,   R <- s R,   p <- p / s,

which keeps the scaled coordinates R V^(-1/3) and momenta p V^(1/3) unchanged. With the
particle thermostat, the stationary distribution is the NPT ensemble
exp(-(U + K + P_0 V) / k_B T); in particular <P_int V> = P_0 <V> - (1 + (3N - N_f)/3)
k_B T, a difference of k_B T / V from P_0, negligible for condensed systems.

Time-reversible integration (the scheme of Bernetti & Bussi's reference SimpleMD
code). The noise is additive in lambda = sqrt(V) (A^1.5): d lambda = (D / k_B T) f dt
+ sqrt(2 D) dW, D = k_B T beta_T / (4 tau_p) constant, f the force on lambda from the
effective energy

    H~ = K + U + P_0 V - c k_B T ln V,       c = (3N - N_f) / 3 + 1/2,

(at fixed scaled coordinates and momenta): f = -2 lambda (P_0 - P_int - (3N - N_f)
k_B T / (3V) - k_B T / (2V)) (eV/A^1.5). One step of the combined move C.A(dt):

1. f from the state (after the first half kick); d lambda = (beta_T / (4 tau_p)) f dt
   + sqrt(k_B T beta_T dt / (2 tau_p)) xi, xi ~ N(0, 1) per system;
2. V' = (lambda + d lambda)^2, x = ln(V'/V) / 3, s = e^x; the exact flow over dt of
   dR/dt = p/m + (x/dt) R, dp/dt = -(x/dt) p at a constant rate of scaling:
   R' = s R + (sinh(x)/x) dt p/m, p' = p/s, cell' = s cell (reversible, volume
   preserving in (R, p));
3. forces and stress at the new positions and cell; f' from them.

The move is accounted for like a Metropolis step (Crooks): W, the sum over moves of
0.5 d lambda (f + f') + (beta_T / (16 tau_p)) dt (f'^2 - f^2), is the energy the
barostat's friction and noise took out of H~, so that H~ + W minus the thermostat heat
is conserved up to the discretisation error of the integrator (Bernetti & Bussi's
effective energy). ``state.heat`` accumulates

    heat = (thermostat heat) - P_0 (V - V_0) + c k_B T ln(V / V_0) - W,

hence the runner's ``conserved = potential + kinetic - heat`` is, for NPT, the
effective energy K + U + P_0 (V - V_0) - c k_B T ln(V / V_0) - (thermostat heat) + W
(V_0: volume at the start); its drift measures the time-step error. In equilibrium it
is small (tests/test_md_npt.py bounds it over picoseconds of argon at large time steps).
The volume step is Euler-Maruyama in lambda, so while the volume relaxes far from
equilibrium the error is first order in dt (in the deterministic T = 0 limit it halves
with dt, as the same tests check); the particle part is second order.

Integrators: :class:`NPTBussi` is R(dt/2) B(dt/2) C.A(dt) B(dt/2) R(dt/2) with the
Bussi velocity rescaling R (:class:`~mlip.md.steps.BussiRescale`);
:class:`NPTLangevin` is O(dt) B(dt/2) C.A(dt) B(dt/2) with the Ornstein-Uhlenbeck step
O (:class:`~mlip.md.steps.OrnsteinUhlenbeck`; an OBABO scheme: BAOAB has no force
evaluation right after the drift, which the accounting needs). The move C.A(dt) is the
operator :class:`StochasticCellRescaling`; its noise comes from the same stream as the
thermostat's.

Units: pressure in GPa at the API (``GPA`` of :mod:`mlip.md.state`, one GPa in eV/A^3,
is the only conversion), compressibility in 1/GPa, tau_p in fs; internally eV, A, fs.
Every system of the batch must be periodic in all three directions; the cell is written
to the trajectory at every frame by :class:`~mlip.md.io.TrajectoryWriter`. The move
needs the stress (``state.stress``): the runner switches it on in the force field
(:mod:`mlip.md.registry` declares it), the barostat only checks that it is on. The
volume and the pressure estimator P_int are :func:`~mlip.md.state.cell_volume` and
:func:`~mlip.md.state.pressure`.
"""

from __future__ import annotations

import torch

from mlip.md.config import DEFAULTS, PerSystem
from mlip.md.state import GPA, KB_EV_PER_K, MDState, cell_volume, per_system, pressure
from mlip.md.steps import KICK, BussiRescale, ForceFn, Integrator, NoiseSource, OrnsteinUhlenbeck


def _check_values(value: PerSystem, name: str, unit: str, positive: bool) -> None:
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.ndim > 1 or not bool(torch.isfinite(t).all()) or (positive and not bool((t > 0).all())):
        need = "finite and > 0" if positive else "finite"
        raise ValueError(f"{name} must be {need} {unit} (a scalar or one per system), got {value}")


def check_stress_on(force_field: ForceFn) -> None:
    """Raise unless ``force_field`` computes the stress and follows moving cells."""
    if not hasattr(force_field, "stress"):
        raise TypeError(f"a barostat needs a ForceField with a stress option, got {force_field}")
    if not (force_field.stress and getattr(force_field, "variable_cell", True)):
        raise ValueError(
            "a barostat needs the stress and cell-following neighbour lists: use "
            "ForceField(stress=True) (Simulation and run_md switch it on for NPT ensembles)"
        )


class StochasticCellRescaling:
    """C.A(h): isotropic stochastic cell rescaling of every system (equations: module doc).

    ``pressure`` P_0 (GPa, any finite value), ``compressibility`` beta_T (1/GPa, > 0:
    roughly the material's, e.g. 0.01 for metals and oxides, 0.45 for water; a larger
    value relaxes the volume faster, tau_p beta_true / beta_T) and ``tau_p`` (fs, > 0)
    are scalars or one value per system; ``noise`` is the random stream (shared with the
    thermostat in the NPT integrators). The move needs ``state.stress``.
    """

    def __init__(
        self,
        pressure: PerSystem = DEFAULTS.pressure,
        compressibility: PerSystem = DEFAULTS.compressibility,
        tau_p: PerSystem = DEFAULTS.tau_p,
        noise: NoiseSource | None = None,
    ) -> None:
        _check_values(pressure, "pressure", "GPa", positive=False)
        _check_values(compressibility, "compressibility", "1/GPa", positive=True)
        _check_values(tau_p, "tau_p", "fs", positive=True)
        self.pressure, self.compressibility, self.tau_p = pressure, compressibility, tau_p
        self.noise = NoiseSource() if noise is None else noise
        self.p0: torch.Tensor | None = None  # eV/A^3, set by setup
        self.mobility: torch.Tensor | None = None  # beta_T / (4 tau_p), A^3/(eV fs)

    def setup(self, state: MDState, force_field: ForceFn) -> MDState:
        """Check the systems (host reads, once) and the force field, set the parameters."""
        periodic = state.pbc.all(-1).tolist()
        volume = cell_volume(state.cell).tolist()
        for s, (ok, v) in enumerate(zip(periodic, volume, strict=True)):
            name = state.names[s] if s < len(state.names) else str(s)
            if not ok:
                raise ValueError(
                    f"system {s} ('{name}') is not periodic in all three directions "
                    f"(pbc {state.pbc[s].tolist()}): the barostat needs a periodic cell"
                )
            if not v > 0:
                raise ValueError(f"system {s} ('{name}') has a cell of volume {v} A^3")
        check_stress_on(force_field)
        self.p0 = per_system(self.pressure, state, "pressure") * GPA
        beta = per_system(self.compressibility, state, "compressibility") / GPA
        self.mobility = beta / (4.0 * per_system(self.tau_p, state, "tau_p"))
        return state

    def _log_volume_factor(self, state: MDState) -> torch.Tensor:
        """c = (3N - N_f) / 3 + 1/2 of the effective energy's -c k_B T ln V."""
        return (3.0 * state.num_atoms.to(state.dtype) - state.dof) / 3.0 + 0.5

    def lambda_force(self, state: MDState) -> torch.Tensor:
        """(n_systems,) eV/A^1.5: f = -dH~/d lambda = -2 lambda (dH~/dV)."""
        volume = cell_volume(state.cell)
        kt = KB_EV_PER_K * state.temperature
        p_int = pressure(state, unit=1.0)  # eV/A^3
        dh_dv = self.p0 - p_int - self._log_volume_factor(state) * kt / volume
        return -2.0 * torch.sqrt(volume) * dh_dv

    def move(self, state: MDState, force_field: ForceFn, dt: float, noise: torch.Tensor) -> MDState:
        """C.A(dt): draw the volume change, scaled drift, forces and stress, accounting.

        ``noise`` is xi ~ N(0, 1), one per system (n_systems,).
        """
        volume = cell_volume(state.cell)
        f = self.lambda_force(state)
        mob, kt = self.mobility, KB_EV_PER_K * state.temperature
        lam = torch.sqrt(volume)
        dlam = mob * f * dt + torch.sqrt(2.0 * kt * mob * dt) * noise
        x = (2.0 / 3.0) * torch.log1p(dlam / lam)  # ln s, s^3 = V'/V
        s = torch.exp(x)
        small = x.abs() < 1e-4
        sinhc = torch.where(small, 1.0 + x * x / 6.0, torch.sinh(x) / torch.where(small, 1.0, x))
        idx = state.system_idx
        positions = s[idx, None] * state.positions + (dt * sinhc)[idx, None] * state.velocities
        state = state.replace(
            positions=positions,
            momenta=state.momenta / s[idx, None],
            cell=state.cell * s[:, None, None],
        )
        state = force_field(state)
        new_volume = cell_volume(state.cell)
        f_new = self.lambda_force(state)
        log_ratio = torch.log(new_volume) - torch.log(volume)
        work = 0.5 * dlam * (f + f_new) + 0.25 * mob * dt * (f_new * f_new - f * f)
        c = self._log_volume_factor(state)
        change = self.p0 * (new_volume - volume) - c * kt * log_ratio + work
        return state.replace(heat=state.heat - change)

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState:
        return self.move(state, force_field, h, self.noise.normal((state.n_systems,), state))


class NPTBussi(Integrator):
    """NPT: Bussi CSVR thermostat (``tau``, fs) + isotropic stochastic cell rescaling.

    One step is R(dt/2) B(dt/2) C.A(dt) B(dt/2) R(dt/2) (module doc); ``pressure``
    (GPa), ``compressibility`` (1/GPa) and ``tau_p`` (fs) are scalars or per system.
    """

    ensemble = "npt-bussi"

    def __init__(
        self,
        timestep: float = DEFAULTS.timestep,
        tau: PerSystem = DEFAULTS.tau,
        pressure: PerSystem = DEFAULTS.pressure,
        compressibility: PerSystem = DEFAULTS.compressibility,
        tau_p: PerSystem = DEFAULTS.tau_p,
        seed: int = DEFAULTS.seed,
    ) -> None:
        noise = NoiseSource(seed)
        self.thermostat = BussiRescale(tau, noise)
        self.barostat = StochasticCellRescaling(pressure, compressibility, tau_p, noise)
        r, c = self.thermostat, self.barostat
        super().__init__(timestep, ((r, 0.5), (KICK, 0.5), (c, 1.0), (KICK, 0.5), (r, 0.5)), noise)


class NPTLangevin(Integrator):
    """NPT: Langevin thermostat (``friction``, 1/fs) + isotropic stochastic cell rescaling.

    One step is O(dt) B(dt/2) C.A(dt) B(dt/2) (module doc); ``pressure`` (GPa),
    ``compressibility`` (1/GPa) and ``tau_p`` (fs) are scalars or per system.
    """

    ensemble = "npt-langevin"

    def __init__(
        self,
        timestep: float = DEFAULTS.timestep,
        friction: PerSystem = DEFAULTS.friction,
        pressure: PerSystem = DEFAULTS.pressure,
        compressibility: PerSystem = DEFAULTS.compressibility,
        tau_p: PerSystem = DEFAULTS.tau_p,
        seed: int = DEFAULTS.seed,
    ) -> None:
        noise = NoiseSource(seed)
        self.thermostat = OrnsteinUhlenbeck(friction, noise)
        self.barostat = StochasticCellRescaling(pressure, compressibility, tau_p, noise)
        o, c = self.thermostat, self.barostat
        super().__init__(timestep, ((o, 1.0), (KICK, 0.5), (c, 1.0), (KICK, 0.5)), noise)
