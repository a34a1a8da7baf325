"""Batched MD state: many systems of different sizes in one set of tensors.

Units: positions in Angstrom, momenta in amu*Angstrom/fs, masses in amu, time in fs,
energies in eV, forces in eV/Angstrom, temperatures in K.

With these units a kinetic energy p^2 / (2 m) comes out in amu*A^2/fs^2; one eV is
``AMU_A2_FS2_PER_EV`` of those (= ``ase.units.fs**2`` ~ 0.009649, because ASE's time
unit is A*sqrt(amu/eV) and ``ase.units.fs`` is one femtosecond in it). Hence

    K [eV]            = sum p^2 / (2 m) / AMU_A2_FS2_PER_EV
    dp/dt [amu A/fs^2] = F [eV/A] * AMU_A2_FS2_PER_EV
    k_B T [amu A^2/fs^2] = k_B T [eV] * AMU_A2_FS2_PER_EV

This is the only place where the conversions are defined (pressures: ``GPA``, one GPa
in eV/A^3). The observables of a state live here too: kinetic energy and temperature
(methods), :func:`degrees_of_freedom`, :func:`cell_volume` and :func:`pressure`; and the
per-system helpers the integrators share: :func:`per_system`, :func:`zero_com_momentum`,
:func:`select_systems`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import ase
import ase.data
import ase.units
import numpy as np
import torch

from mlip.fields import resolve_device
from mlip.md.config import DEFAULTS

AMU_A2_FS2_PER_EV: float = ase.units.fs**2  # one eV in amu*Angstrom^2/fs^2
KB_EV_PER_K: float = ase.units.kB  # Boltzmann constant, eV/K
ASE_MOMENTUM_PER_AMU_A_FS: float = 1.0 / ase.units.fs  # ASE momentum units per amu*A/fs
GPA: float = ase.units.GPa  # one GPa in eV/A^3 (~0.0062415)


@dataclass
class MDState:
    """Positions, momenta and per-system data of a batch of systems (see module units).

    Atom-wise tensors are concatenated over systems; ``system_idx[a]`` is the system of
    atom ``a`` (non-decreasing). Per-system tensors have length ``n_systems``.
    ``dof`` is the number of kinetic degrees of freedom of each system, used for the
    kinetic temperature T = 2 K / (dof k_B): 3N - 3 when the centre-of-mass momentum
    is held at zero (NVE, Bussi), 3N under Langevin dynamics. ``heat`` accumulates the
    energy (eV) that a thermostat put into each system, so ``total_energy - heat`` is
    conserved up to discretisation error. ``thermostat`` holds the per-system dynamical
    variables of a deterministic thermostat (Nose-Hoover chain positions and momenta),
    kept in the state so that snapshots and rollbacks restore them. ``step`` and
    ``time`` (fs) count the steps done since the start of the trajectory.
    """

    positions: torch.Tensor  # (n_atoms, 3) A
    momenta: torch.Tensor  # (n_atoms, 3) amu A/fs
    masses: torch.Tensor  # (n_atoms,) amu
    atomic_numbers: torch.Tensor  # (n_atoms,) int64
    cell: torch.Tensor  # (n_systems, 3, 3) A, rows; zeros without a cell
    pbc: torch.Tensor  # (n_systems, 3) bool
    system_idx: torch.Tensor  # (n_atoms,) int64
    num_atoms: torch.Tensor  # (n_systems,) int64
    temperature: torch.Tensor  # (n_systems,) K, thermostat target
    dof: torch.Tensor  # (n_systems,) float, kinetic degrees of freedom
    energy: torch.Tensor | None = None  # (n_systems,) eV, potential energy
    forces: torch.Tensor | None = None  # (n_atoms, 3) eV/A
    heat: torch.Tensor | None = None  # (n_systems,) eV, energy given by the thermostat
    thermostat: torch.Tensor | None = None  # (n_systems, k) integrator-owned per-system variables
    stress: torch.Tensor | None = None  # (n_systems,3,3) eV/A^3
    # committees (mlip.committee): the largest per-atom force std of each system at this
    # step, and its running maximum since the runner last cleared it (eV/A)
    force_std: torch.Tensor | None = None  # (n_systems,) eV/A
    force_std_max: torch.Tensor | None = None  # (n_systems,) eV/A
    step: int = 0
    time: float = 0.0  # fs
    names: list[str] = field(default_factory=list)  # one label per system

    # --- sizes and conversions ---------------------------------------------------------
    @property
    def n_atoms(self) -> int:
        return self.positions.shape[0]

    @property
    def n_systems(self) -> int:
        return self.num_atoms.shape[0]

    @property
    def device(self) -> torch.device:
        return self.positions.device

    @property
    def dtype(self) -> torch.dtype:
        return self.positions.dtype

    @property
    def velocities(self) -> torch.Tensor:
        """(n_atoms, 3) A/fs."""
        return self.momenta / self.masses[:, None]

    def replace(self, **changes) -> MDState:  # noqa: ANN003
        """A shallow copy with some fields replaced (tensors are shared, not copied)."""
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """Move to a device and/or cast the floating-point fields to ``dtype``."""
        changes = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                cast = dtype if (dtype is not None and value.is_floating_point()) else None
                changes[f.name] = value.to(device=device, dtype=cast)
        return self.replace(**changes)

    def system_sum(self, per_atom: torch.Tensor) -> torch.Tensor:
        """Sum a per-atom quantity (n_atoms, ...) over the atoms of each system."""
        out = per_atom.new_zeros((self.n_systems, *per_atom.shape[1:]))
        return out.index_add(0, self.system_idx, per_atom)

    def kinetic_energy(self) -> torch.Tensor:
        """(n_systems,) eV: K = sum_a |p_a|^2 / (2 m_a), converted from amu A^2/fs^2."""
        per_atom = (self.momenta**2).sum(-1) / (2.0 * self.masses)
        return self.system_sum(per_atom) / AMU_A2_FS2_PER_EV

    def kinetic_temperature(self) -> torch.Tensor:
        """(n_systems,) K: T = 2 K / (dof k_B)."""
        return 2.0 * self.kinetic_energy() / (self.dof.clamp_min(1.0) * KB_EV_PER_K)

    def to_atoms(self) -> list[ase.Atoms]:
        """One ``ase.Atoms`` per system, with momenta in ASE units (one host copy)."""
        pos = self.positions.detach().cpu().double().numpy()
        mom = self.momenta.detach().cpu().double().numpy() * ASE_MOMENTUM_PER_AMU_A_FS
        masses = self.masses.detach().cpu().double().numpy()
        numbers = self.atomic_numbers.cpu().numpy()
        cells, pbcs = self.cell.detach().cpu().double().numpy(), self.pbc.cpu().numpy()
        bounds = np.concatenate([[0], np.cumsum(self.num_atoms.cpu().numpy())])
        out = []
        for s in range(self.n_systems):
            a, b = bounds[s], bounds[s + 1]
            atoms = ase.Atoms(numbers[a:b], positions=pos[a:b], cell=cells[s], pbc=pbcs[s])
            atoms.set_masses(masses[a:b])
            atoms.set_momenta(mom[a:b])
            out.append(atoms)
        return out


def _as_atoms(item) -> ase.Atoms:  # noqa: ANN001 (ase.Atoms or mlip Structure)
    if isinstance(item, ase.Atoms):
        return item
    if hasattr(item, "to_atoms"):  # an mlip Structure
        return item.to_atoms()
    raise TypeError(f"expected ase.Atoms or mlip Structure, got {type(item).__name__}")


def from_atoms(
    systems: ase.Atoms | Sequence,
    replicas: int = DEFAULTS.replicas,
    temperature: float | Sequence[float] = DEFAULTS.temperature,
    device: torch.device | str = DEFAULTS.device,
    dtype: torch.dtype = DEFAULTS.dtype,
) -> MDState:
    """Build a state from ``ase.Atoms`` or :class:`mlip.data.graph.Structure` objects.

    Every input system is repeated ``replicas`` times, replicas of one input next to
    each other (system order: in0_r0, in0_r1, ..., in1_r0, ...). Masses come from
    ``Atoms.get_masses()`` (ASE standard masses for Structures) and momenta from the
    Atoms' momenta, converted to amu*A/fs (zero if none were set). ``temperature`` (K) is
    the thermostat target: one value, one per input or one per system. Non-periodic systems get
    a zero cell. ``dof`` is 3N - 3 (3 for one atom) until an integrator sets it.
    """
    device = resolve_device(device)  # "auto": cuda if torch sees a GPU, else cpu
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    items = [systems] if isinstance(systems, ase.Atoms) else list(systems)
    if not items:
        raise ValueError("from_atoms needs at least one system")
    temps = np.atleast_1d(np.asarray(temperature, dtype=np.float64))
    if temps.ndim != 1 or len(temps) not in (1, len(items), len(items) * replicas):
        raise ValueError(
            f"temperature needs 1, {len(items)} (per input) or {len(items) * replicas} "
            f"(per system) values, got {temperature}"
        )
    if (temps < 0).any():
        raise ValueError(f"temperature must be >= 0 K, got {temperature}")
    if len(temps) != len(items) * replicas:
        temps = np.repeat(np.broadcast_to(temps, (len(items),)), replicas)
    atoms_list = [_as_atoms(x) for x in items for _ in range(replicas)]
    names = [
        f"{k:04d}_{_as_atoms(x).get_chemical_formula()}_r{r}"
        for k, x in enumerate(items)
        for r in range(replicas)
    ]
    num_atoms = np.array([len(a) for a in atoms_list], dtype=np.int64)
    if (num_atoms == 0).any():
        raise ValueError("every system needs at least one atom")
    cells = np.stack([a.cell.array if a.pbc.any() else np.zeros((3, 3)) for a in atoms_list])
    momenta = np.concatenate([a.get_momenta() for a in atoms_list]) / ASE_MOMENTUM_PER_AMU_A_FS

    def t(x, kind=dtype):  # noqa: ANN001, ANN202
        return torch.as_tensor(np.asarray(x), dtype=kind, device=device)

    return MDState(
        positions=t(np.concatenate([a.positions for a in atoms_list])),
        momenta=t(momenta),
        masses=t(np.concatenate([a.get_masses() for a in atoms_list])),
        atomic_numbers=t(np.concatenate([a.numbers for a in atoms_list]), torch.long),
        cell=t(cells),
        pbc=t(np.stack([a.pbc for a in atoms_list]), torch.bool),
        system_idx=t(np.repeat(np.arange(len(atoms_list)), num_atoms), torch.long),
        num_atoms=t(num_atoms, torch.long),
        temperature=t(temps),
        dof=degrees_of_freedom(t(num_atoms, torch.long)).to(dtype),
        names=names,
    )


def zero_com_momentum(state: MDState) -> torch.Tensor:
    """Momenta with each system's total momentum removed, mass-weighted.

    p_a <- p_a - m_a P_s / M_s with P_s = sum_{a in s} p_a and M_s the system mass, the
    orthogonal projection (in mass-weighted coordinates) onto sum_a p_a = 0. Systems of
    one atom are left unchanged.
    """
    total = state.system_sum(state.momenta)  # (n_systems, 3)
    mass = state.system_sum(state.masses)  # (n_systems,)
    keep = (state.num_atoms > 1).to(state.dtype)[:, None]
    per_mass = keep * total / mass[:, None]
    return state.momenta - state.masses[:, None] * per_mass[state.system_idx]


def maxwell_boltzmann(
    state: MDState,
    temperature: float | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> MDState:
    """Draw momenta from the Maxwell-Boltzmann distribution, zero COM momentum per system.

    p_a,x = sqrt(m_a k_B T) xi with xi ~ N(0, 1) (m k_B T in amu^2 A^2/fs^2), then the
    centre-of-mass momentum of each system is removed, so <K> = (3N - 3) k_B T / 2.
    ``temperature`` (K, scalar or per system) defaults to ``state.temperature``;
    ``generator`` (on the state's device) makes the draw reproducible.
    """
    target = state.temperature if temperature is None else temperature
    target = torch.as_tensor(target, dtype=state.dtype, device=state.device)
    target = target.expand(state.n_systems)
    if (target < 0).any():
        raise ValueError(f"temperature must be >= 0 K, got {target.min()}")
    kt = KB_EV_PER_K * target[state.system_idx] * AMU_A2_FS2_PER_EV  # amu A^2/fs^2
    noise = torch.randn(
        state.positions.shape, generator=generator, dtype=state.dtype, device=state.device
    )
    momenta = torch.sqrt(state.masses * kt)[:, None] * noise
    return state.replace(momenta=zero_com_momentum(state.replace(momenta=momenta)))


def concatenate(states: Sequence[MDState]) -> MDState:
    """Join states into one batch (energies/forces are dropped; step/time of the first).

    ``thermostat`` variables are joined when every state has them (same width), else
    dropped (the integrator's ``init`` restarts them).
    """
    if not states:
        raise ValueError("concatenate needs at least one state")
    offsets = np.cumsum([0] + [s.n_systems for s in states[:-1]])
    cat = lambda name: torch.cat([getattr(s, name) for s in states])  # noqa: E731
    return states[0].replace(
        positions=cat("positions"),
        momenta=cat("momenta"),
        masses=cat("masses"),
        atomic_numbers=cat("atomic_numbers"),
        cell=cat("cell"),
        pbc=cat("pbc"),
        system_idx=torch.cat([s.system_idx + int(o) for s, o in zip(states, offsets, strict=True)]),
        num_atoms=cat("num_atoms"),
        temperature=cat("temperature"),
        dof=cat("dof"),
        energy=None,
        forces=None,
        stress=None,
        force_std=None,
        force_std_max=None,
        heat=None,
        thermostat=_cat_thermostat(states),
        names=[n for s in states for n in s.names],
    )


def _cat_thermostat(states: Sequence[MDState]) -> torch.Tensor | None:
    chains = [s.thermostat for s in states]
    if any(c is None for c in chains) or len({c.shape[1:] for c in chains}) != 1:
        return None
    return torch.cat(chains)


# --- observables -------------------------------------------------------------------------
def degrees_of_freedom(
    num_atoms: torch.Tensor, dtype: torch.dtype = torch.float64, fixed_com: bool = True
) -> torch.Tensor:
    """(n_systems,) kinetic degrees of freedom N_f of systems of ``num_atoms`` atoms.

    N_f = 3N - 3 when the centre-of-mass momentum is held at zero (NVE, Bussi,
    Nose-Hoover; 3 for a single atom, whose momentum is not removed), 3N when every
    momentum is thermalised (``fixed_com=False``: Langevin).
    """
    n = num_atoms
    dof = torch.where(n > 1, 3 * n - 3, 3 * n) if fixed_com else 3 * n
    return dof.to(dtype)


def cell_volume(cell: torch.Tensor) -> torch.Tensor:
    """(n_systems,) A^3: |a . (b x c)| of the cell rows (no LAPACK call, no host sync)."""
    return (cell[:, 0] * torch.cross(cell[:, 1], cell[:, 2], dim=-1)).sum(-1).abs()


def pressure(state: MDState, unit: float = GPA) -> torch.Tensor:
    """(n_systems,) P_int = 2 K / (3 V) - tr(sigma) / 3 from ``state.stress``, in GPa.

    K is the kinetic energy (eV), V the cell volume (A^3) and sigma the stress of the
    force field (eV/A^3, ASE sign); ``unit=1.0`` gives eV/A^3.
    """
    if state.stress is None:
        raise ValueError("the state has no stress; use ForceField(stress=True)")
    volume = cell_volume(state.cell)
    trace = torch.diagonal(state.stress, dim1=1, dim2=2).sum(-1)
    return (2.0 * state.kinetic_energy() / (3.0 * volume) - trace / 3.0) / unit


# --- per-system helpers ----------------------------------------------------------------
def per_system(value: float | Sequence[float] | torch.Tensor, state: MDState, name: str):
    """(n_systems,) tensor of a parameter given as one value or one value per system."""
    out = torch.as_tensor(value, dtype=state.dtype, device=state.device)
    if out.ndim > 1 or (out.ndim == 1 and out.shape[0] not in (1, state.n_systems)):
        raise ValueError(f"{name} must be a scalar or one value per system, got {value}")
    return out.expand(state.n_systems).clone()


def select_systems(state: MDState, keep: torch.Tensor | Sequence[bool]) -> MDState:
    """The state restricted to the systems where ``keep`` (n_systems,) bool is True.

    Every atom-wise and per-system field follows (thermostat variables, stress and heat
    included); ``system_idx`` is renumbered. A host operation (data-dependent sizes), for
    use between chunks, e.g. to drop systems that blew up.
    """
    keep = torch.as_tensor(keep, dtype=torch.bool, device=state.device)
    if keep.shape != (state.n_systems,):
        raise ValueError(f"keep needs one bool per system ({state.n_systems}), got {keep.shape}")
    atoms = keep[state.system_idx]
    num_atoms = state.num_atoms[keep]
    new_idx = torch.repeat_interleave(torch.arange(len(num_atoms), device=state.device), num_atoms)
    per_atom = lambda x: None if x is None else x[atoms]  # noqa: E731
    per_sys = lambda x: None if x is None else x[keep]  # noqa: E731
    return state.replace(
        positions=state.positions[atoms],
        momenta=state.momenta[atoms],
        masses=state.masses[atoms],
        atomic_numbers=state.atomic_numbers[atoms],
        forces=per_atom(state.forces),
        system_idx=new_idx,
        num_atoms=num_atoms,
        cell=state.cell[keep],
        pbc=state.pbc[keep],
        temperature=state.temperature[keep],
        dof=state.dof[keep],
        energy=per_sys(state.energy),
        heat=per_sys(state.heat),
        thermostat=per_sys(state.thermostat),
        stress=per_sys(state.stress),
        force_std=per_sys(state.force_std),
        force_std_max=per_sys(state.force_std_max),
        names=[n for n, k in zip(state.names, keep.tolist(), strict=True) if k],
    )
