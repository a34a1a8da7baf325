"""Physics of the batched integrators: NVE conservation and order, thermostats, ASE agreement."""

from __future__ import annotations

import itertools

import ase
import ase.units
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones as AseLennardJones
from ase.cluster import Icosahedron
from ase.md.verlet import VelocityVerlet as AseVelocityVerlet

from mlip.md import (
    AMU_A2_FS2_PER_EV,
    KB_EV_PER_K,
    ForceField,
    Simulation,
    from_atoms,
    make_integrator,
    maxwell_boltzmann,
)
from mlip.potentials import HarmonicBonds, LennardJones

EPS, SIGMA, RC = 0.0104, 3.4, 8.5  # argon


pytestmark = pytest.mark.usefixtures("one_thread")


def ar13() -> ase.Atoms:
    return Icosahedron("Ar", 2, latticeconstant=5.26)


def cube(masses: tuple[float, float]) -> tuple[ase.Atoms, HarmonicBonds]:
    """8 atoms on a 1.5 A cube, springs on all 28 pairs (rigid), alternating masses."""
    corners = 1.5 * np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)
    atoms = ase.Atoms("H8", positions=corners)
    atoms.set_masses([masses[k % 2] for k in range(8)])
    bonds = list(itertools.combinations(range(8), 2))
    d0 = [float(np.linalg.norm(corners[a] - corners[b])) for a, b in bonds]
    return atoms, HarmonicBonds(bonds, k=5.0, d0=d0)


def simulate(model, atoms, ensemble, dt, steps, temperature, replicas=1, seed=1, **kw):
    """Energies per step: returns (sim, [(kinetic (S,), potential (S,), heat (S,))...])."""
    state = from_atoms(atoms, replicas=replicas, temperature=temperature)
    state = maxwell_boltzmann(state, generator=torch.Generator().manual_seed(seed))
    integrator = make_integrator(ensemble, dt, seed=seed, **kw)
    sim = Simulation(state, ForceField(model, skin=1.0), integrator)
    rows = []
    for _ in range(steps):
        sim.advance(1)
        s = sim.state
        rows.append((s.kinetic_energy(), s.energy, s.heat, s.momenta))
    return sim, rows


def total_energy_series(rows) -> np.ndarray:
    return np.array([float(k.sum() + p.sum()) for k, p, _, _ in rows])


@pytest.mark.parametrize("system", ["lj", "harmonic"])
def test_nve_conserves_energy_second_order(system):
    if system == "lj":
        atoms, model, temperature, dt, total_time = (
            ar13(),
            LennardJones(EPS, SIGMA, RC),
            20,
            8.0,
            2000,
        )
    else:
        atoms, model = cube((1.0, 12.0))
        temperature, dt, total_time = 300, 0.4, 400
    fluct = {}
    for step in (dt, dt / 2):
        _, rows = simulate(model, atoms, "nve", step, int(total_time / step), temperature)
        e = total_energy_series(rows)
        kinetic = np.array([float(k.sum()) for k, *_ in rows])
        fluct[step] = e.std()
        drift = abs(np.polyfit(np.arange(len(e)) * step, e, 1)[0]) * total_time
        assert e.std() < 5e-3 * kinetic.mean(), (step, e.std(), kinetic.mean())
        assert drift < 3 * e.std() + 1e-9, (step, drift, e.std())
    ratio = fluct[dt] / fluct[dt / 2]
    assert 3.0 < ratio < 5.0, f"halving dt should divide the fluctuation by ~4, got {ratio}"


def test_step_by_step_agreement_with_ase_velocity_verlet():
    crystal = bulk("Ar", "fcc", a=5.26) * (2, 2, 2)
    crystal.set_cell(crystal.cell.array + [[0.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.4, 0.0, 0.0]])
    for atoms in (ar13(), crystal):
        rng = np.random.default_rng(3)
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        atoms.set_momenta(rng.normal(0, 0.3, (len(atoms), 3)))  # ASE units
        ref = atoms.copy()
        ref.calc = AseLennardJones(epsilon=EPS, sigma=SIGMA, rc=RC)
        dyn = AseVelocityVerlet(ref, timestep=5.0 * ase.units.fs)
        integrator = make_integrator("nve", 5.0)
        ff = ForceField(LennardJones(EPS, SIGMA, RC), skin=0.5)
        state = integrator.init(from_atoms(atoms), ff)
        assert float(state.energy) == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        for _ in range(40):
            dyn.run(1)
            state = integrator.step(state, ff)
            got = state.to_atoms()[0]
            np.testing.assert_allclose(got.positions, ref.positions, atol=1e-9)
            np.testing.assert_allclose(got.get_momenta(), ref.get_momenta(), atol=1e-9)
            np.testing.assert_allclose(state.forces.numpy(), ref.get_forces(), atol=1e-9)
            kinetic = float(state.kinetic_energy()[0])  # eV, via AMU_A2_FS2_PER_EV
            assert kinetic == pytest.approx(ref.get_kinetic_energy(), rel=1e-12)
        assert float(state.energy) == pytest.approx(ref.get_potential_energy(), abs=1e-9)


def test_mlip_calculator_agrees():
    from mlip import calculator

    atoms = ar13()
    atoms.set_momenta(np.random.default_rng(4).normal(0, 0.3, (len(atoms), 3)))
    ref = atoms.copy()
    ref.calc = calculator.MLIPCalculator(LennardJones(EPS, SIGMA, RC))
    dyn = AseVelocityVerlet(ref, timestep=5.0 * ase.units.fs)
    integrator = make_integrator("nve", 5.0)
    ff = ForceField(LennardJones(EPS, SIGMA, RC))
    state = integrator.init(from_atoms(atoms), ff)
    for _ in range(20):
        dyn.run(1)
        state = integrator.step(state, ff)
    np.testing.assert_allclose(state.to_atoms()[0].positions, ref.positions, atol=1e-8)


def per_dof_kinetic(rows, masses: np.ndarray, skip: int) -> np.ndarray:
    """Time- and replica-averaged p_x^2 / (2 m) (eV) of each atom of the base system."""
    n = len(masses)
    mom = np.stack([m.numpy() for *_, m in rows[skip:]])  # (T, R n, 3)
    per = (mom**2).reshape(mom.shape[0], -1, n, 3) / (2 * masses[None, None, :, None])
    return per.mean(axis=(0, 1, 3)) / AMU_A2_FS2_PER_EV


def test_langevin_temperature_and_equipartition():
    atoms, model = cube((1.0, 16.0))
    target, replicas = 300.0, 64
    sim, rows = simulate(
        model, atoms, "nvt-langevin", 0.5, 3000, target, replicas=replicas, friction=0.05
    )
    temps = np.array([float((2 * k / (24 * KB_EV_PER_K)).mean()) for k, *_ in rows[600:]])
    assert temps.mean() == pytest.approx(target, rel=0.03)
    per_atom = per_dof_kinetic(rows, atoms.get_masses(), 600)
    expected = 0.5 * KB_EV_PER_K * target  # all 3N dof are thermalised
    light, heavy = per_atom[0::2].mean(), per_atom[1::2].mean()
    assert light == pytest.approx(expected, rel=0.05)
    assert heavy == pytest.approx(expected, rel=0.05)
    assert float(sim.state.dof[0]) == 24


def test_bussi_canonical_temperature_fluctuations_and_equipartition():
    atoms = bulk("Ar", "fcc", a=5.3, cubic=True) * (2, 2, 2)  # 32 atoms
    masses = np.where(np.arange(len(atoms)) % 2 == 0, 40.0, 4.0)
    atoms.set_masses(masses)
    target, replicas, nf = 70.0, 8, 3 * len(atoms) - 3
    model = LennardJones(EPS, SIGMA, 7.0)
    sim, rows = simulate(model, atoms, "nvt-bussi", 5.0, 1200, target, replicas, tau=50.0)
    kinetic = np.stack([k.numpy() for k, *_ in rows[200:]])  # (T, R)
    temps = 2 * kinetic / (nf * KB_EV_PER_K)
    assert temps.mean() == pytest.approx(target, rel=0.03)
    # canonical K: relative standard deviation sqrt(2 / N_f) (a Berendsen thermostat gives ~0)
    assert kinetic.std() / kinetic.mean() == pytest.approx(np.sqrt(2 / nf), rel=0.2)
    # zero total momentum: <p_a^2 / 2 m_a> per component = k_B T (1 - m_a / M) / 2.
    # Bussi rescales all atoms alike: light and heavy atoms share energy only through the
    # (nearly harmonic, slowly mixing) crystal dynamics, hence the looser tolerance
    # (seeds 1-4 stay within 6.5%).
    expected = 0.5 * KB_EV_PER_K * target * (1 - masses / masses.sum())
    per_atom = per_dof_kinetic(rows, masses, 200)
    for kind in (0, 1):
        got, want = per_atom[kind::2].mean(), expected[kind::2].mean()
        assert got == pytest.approx(want, rel=0.1), (kind, got, want)
    conserved = np.array([float((k + p - h).sum()) for k, p, h, _ in rows])
    assert np.ptp(conserved) < 0.05 * float(kinetic.sum(1).mean())
