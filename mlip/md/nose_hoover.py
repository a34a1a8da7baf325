"""Deterministic NVT: Nose-Hoover chains, batched, one chain per system.

Units: time in fs, energies in eV, temperatures in K, particle momenta in amu*A/fs
(see :mod:`mlip.md.state`). The chain of system s has M thermostat positions xi_k
(dimensionless) and momenta p_xi_k (eV fs) with masses Q_k (eV fs^2):

    Q_1 = N_f k_B T tau^2,     Q_k = k_B T tau^2  (k >= 2),

N_f = 3N - 3 (the centre-of-mass momentum is zeroed at ``init`` and stays zero; 3 for
a single atom), T the system's target ``state.temperature`` and tau (fs) its
relaxation time. Equations of motion (Martyna, Klein, Tuckerman 1992), with
K = sum p^2 / (2 m) in eV and c = ``AMU_A2_FS2_PER_EV``:

    dR/dt      = p / m
    dp/dt      = c F - (p_xi_1 / Q_1) p
    dxi_k/dt   = p_xi_k / Q_k
    dp_xi_1/dt = (2 K - N_f k_B T)              - p_xi_1 p_xi_2 / Q_2
    dp_xi_k/dt = (p_xi_{k-1}^2 / Q_{k-1} - k_B T) - p_xi_k p_xi_{k+1} / Q_{k+1}
    dp_xi_M/dt =  p_xi_{M-1}^2 / Q_{M-1} - k_B T

They conserve (eV)

    H' = K + U + sum_k p_xi_k^2 / (2 Q_k) + N_f k_B T xi_1 + k_B T sum_{k>=2} xi_k

and, when ergodic, sample the canonical distribution of (R, p) at T.

Integration (Martyna, Tuckerman, Tobias, Klein 1996): one step is
NHC(dt/2) B(dt/2) A(dt) B(dt/2) NHC(dt/2), time reversible and second order. NHC(h)
is split into ``substeps`` n_c repetitions of the Suzuki-Yoshida weights w_j
(``yoshida`` = 1, 3 or 5 of them); each piece of length d = w_j h / n_c kicks the chain momenta from
p_xi_M down to p_xi_1 over d/2 (each kick of p_xi_k wrapped in the scalings
exp(-d/4 p_xi_{k+1} / Q_{k+1})), moves xi_k by d p_xi_k / Q_k, scales the particle
momenta by exp(-d p_xi_1 / Q_1) and kicks the chain back up from p_xi_1 to p_xi_M.

The chain variables (:class:`NHCChains`) are stored packed in ``state.thermostat``
(n_systems, 2 M): columns [0, M) are xi_1..xi_M, columns [M, 2M) are p_xi_1..p_xi_M
(eV fs), so snapshots, rollbacks, trajectories and :func:`~mlip.md.state.concatenate`
carry them with the particles. ``state.heat`` is
decreased by every change of the thermostat energy sum p_xi^2 / (2Q) + N_f k_B T xi_1
+ k_B T sum_{k>=2} xi_k, hence K + U - heat = H' + const. The thermostat masses
follow ``state.temperature`` at every step (which must stay > 0 K).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlip.md.config import DEFAULTS, PerSystem
from mlip.md.state import (
    KB_EV_PER_K,
    MDState,
    degrees_of_freedom,
    per_system,
    zero_com_momentum,
)
from mlip.md.steps import DRIFT, FORCES, KICK, ForceFn, Integrator


def suzuki_yoshida_weights(order: int) -> tuple[float, ...]:
    """The 1, 3 or 5 Suzuki-Yoshida weights (sum 1) of a symmetric composition."""
    if order == 1:
        return (1.0,)
    if order == 3:
        w = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
        return (w, 1.0 - 2.0 * w, w)
    if order == 5:
        w = 1.0 / (4.0 - 4.0 ** (1.0 / 3.0))
        return (w, w, 1.0 - 4.0 * w, w, w)
    raise ValueError(f"yoshida must be 1, 3 or 5 weights, got {order}")


@dataclass
class NHCChains:
    """The chain variables of every system: positions xi_k (dimensionless) and momenta
    p_xi_k (eV fs), k = 1..M, each a (n_systems,) tensor; packed in ``state.thermostat``."""

    xi: list[torch.Tensor]
    p: list[torch.Tensor]

    @classmethod
    def unpack(cls, packed: torch.Tensor, chain_length: int) -> NHCChains:
        """From ``state.thermostat`` (n_systems, 2 M)."""
        m = chain_length
        return cls(list(packed[:, :m].unbind(1)), list(packed[:, m:].unbind(1)))

    def pack(self) -> torch.Tensor:
        """(n_systems, 2 M): [xi_1..xi_M, p_xi_1..p_xi_M]."""
        return torch.stack(self.xi + self.p, dim=1)


@dataclass(frozen=True)
class ChainMasses:
    """k_B T and N_f k_B T (eV) and the masses [Q_1, ..., Q_M] (eV fs^2), per system."""

    kt: torch.Tensor
    nf_kt: torch.Tensor
    q: list[torch.Tensor]


class NoseHooverHalfStep:
    """NHC(h): the Nose-Hoover chain propagator over time h (equations: module doc).

    ``tau`` (fs, > 0) is a scalar or per system, ``chain_length`` M >= 1, ``yoshida`` the
    number of Suzuki-Yoshida weights (1, 3 or 5), ``substeps`` n_c >= 1. ``setup`` checks
    the targets (> 0 K), zeroes the centre-of-mass momenta, sets N_f = 3N - 3 and starts
    the chains at rest unless the state carries chains of the right shape (a continued
    run keeps them).
    """

    def __init__(
        self,
        tau: PerSystem = DEFAULTS.tau,
        chain_length: int = DEFAULTS.chain_length,
        yoshida: int = DEFAULTS.yoshida,
        substeps: int = DEFAULTS.substeps,
    ) -> None:
        if not bool((torch.as_tensor(tau) > 0).all()):
            raise ValueError(f"tau must be > 0 fs, got {tau}")
        if isinstance(chain_length, bool) or int(chain_length) != chain_length or chain_length < 1:
            raise ValueError(f"chain_length must be an integer >= 1, got {chain_length}")
        if isinstance(substeps, bool) or int(substeps) != substeps or substeps < 1:
            raise ValueError(f"substeps must be an integer >= 1, got {substeps}")
        self.weights = suzuki_yoshida_weights(yoshida)
        self.tau = tau
        self.chain_length, self.yoshida, self.substeps = int(chain_length), yoshida, int(substeps)
        self.tau_s: torch.Tensor | None = None  # (n_systems,) fs, set by setup

    def setup(self, state: MDState, force_field: ForceFn) -> MDState:
        if bool((state.temperature <= 0).any()):  # host check, once per run
            raise ValueError(
                f"Nose-Hoover needs target temperatures > 0 K, got {state.temperature.tolist()}"
            )
        self.tau_s = per_system(self.tau, state, "tau")
        dof = degrees_of_freedom(state.num_atoms, state.dtype)
        shape = (state.n_systems, 2 * self.chain_length)
        chains = state.thermostat
        if chains is None or tuple(chains.shape) != shape:
            chains = torch.zeros(shape, dtype=state.dtype, device=state.device)
        return state.replace(momenta=zero_com_momentum(state), dof=dof, thermostat=chains)

    def masses(self, state: MDState) -> ChainMasses:
        """Q_1 = N_f k_B T tau^2, Q_k = k_B T tau^2 (k >= 2), from the current targets."""
        kt = KB_EV_PER_K * state.temperature
        q_rest = kt * self.tau_s * self.tau_s
        q = [state.dof * q_rest] + [q_rest] * (self.chain_length - 1)
        return ChainMasses(kt=kt, nf_kt=state.dof * kt, q=q)

    @staticmethod
    def _energy(chains: NHCChains, masses: ChainMasses) -> torch.Tensor:
        """sum p_xi^2 / (2 Q) + N_f k_B T xi_1 + k_B T sum_{k>=2} xi_k (eV)."""
        xi, p, q = chains.xi, chains.p, masses.q
        out = masses.nf_kt * xi[0]
        for k in range(len(p)):
            out = out + p[k] * p[k] / (2.0 * q[k])
            if k > 0:
                out = out + masses.kt * xi[k]
        return out

    def _kick_chain(
        self, p: list[torch.Tensor], masses: ChainMasses, kin2: torch.Tensor, d: float, order: range
    ) -> None:
        """Kick p_xi_k by d/2 times its force, in the given order of k (in place in p)."""
        q, kt, last = masses.q, masses.kt, self.chain_length - 1
        for k in order:
            force = kin2 - masses.nf_kt if k == 0 else p[k - 1] * p[k - 1] / q[k - 1] - kt
            if k == last:
                p[k] = p[k] + (0.5 * d) * force
            else:
                a = torch.exp((-0.25 * d) * p[k + 1] / q[k + 1])
                p[k] = (p[k] * a + (0.5 * d) * force) * a

    def __call__(self, state: MDState, h: float, force_field: ForceFn) -> MDState:
        """NHC(h) over time h (fs), with the heat bookkeeping."""
        m = self.chain_length
        chains = NHCChains.unpack(state.thermostat, m)
        masses = self.masses(state)
        before = self._energy(chains, masses)
        xi, p = chains.xi, chains.p
        kin2 = 2.0 * state.kinetic_energy()  # eV
        scale = torch.ones_like(kin2)
        down, up = range(m - 1, -1, -1), range(m)
        for _ in range(self.substeps):
            for w in self.weights:
                d = w * h / self.substeps
                self._kick_chain(p, masses, kin2, d, down)
                xi = [xi[k] + d * p[k] / masses.q[k] for k in range(m)]
                factor = torch.exp(-d * p[0] / masses.q[0])
                scale = scale * factor
                kin2 = kin2 * factor * factor
                self._kick_chain(p, masses, kin2, d, up)
        chains = NHCChains(xi, p)
        after = self._energy(chains, masses)
        return state.replace(
            momenta=state.momenta * scale[state.system_idx, None],
            thermostat=chains.pack(),
            heat=state.heat + before - after,
        )

    def energy(self, state: MDState) -> torch.Tensor:
        """(n_systems,) eV: the chain terms of H' (so H' = K + U + this)."""
        return self._energy(
            NHCChains.unpack(state.thermostat, self.chain_length), self.masses(state)
        )


class NoseHooverChain(Integrator):
    """NVT Nose-Hoover chain thermostat, MTK 1996 integrator (equations: module doc).

    One step is NHC(dt/2) B(dt/2) A(dt) B(dt/2) NHC(dt/2). ``tau`` (fs, > 0) is a
    scalar or one value per system, ``chain_length`` M >= 1 (M = 1 is the plain
    Nose-Hoover thermostat, not ergodic for stiff or small systems), ``yoshida`` the
    number of Suzuki-Yoshida weights (1, 3 or 5) and ``substeps`` n_c >= 1 the sub-steps
    of each thermostat half-step. The dynamics is deterministic; the state's
    ``temperature`` is the per-system target.
    """

    ensemble = "nvt-nhc"

    def __init__(
        self,
        timestep: float = DEFAULTS.timestep,
        tau: PerSystem = DEFAULTS.tau,
        chain_length: int = DEFAULTS.chain_length,
        yoshida: int = DEFAULTS.yoshida,
        substeps: int = DEFAULTS.substeps,
    ) -> None:
        self.thermostat = NoseHooverHalfStep(tau, chain_length, yoshida, substeps)
        n = self.thermostat
        splitting = ((n, 0.5), (KICK, 0.5), (DRIFT, 1.0), (FORCES, 0.0), (KICK, 0.5), (n, 0.5))
        super().__init__(timestep, splitting)

    def thermostat_energy(self, state: MDState) -> torch.Tensor:
        """(n_systems,) eV: the chain terms of H' (so H' = K + U + this)."""
        return self.thermostat.energy(state)
