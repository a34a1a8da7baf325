"""Nose-Hoover chain NVT: conserved H', canonical temperature, batching, rollback, ASE."""

from __future__ import annotations

import itertools

import ase
import ase.units
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones as AseLennardJones
from ase.cluster import Icosahedron

from mlip.md import (
    ForceField,
    NoseHooverChain,
    Simulation,
    concatenate,
    from_atoms,
    make_integrator,
    maxwell_boltzmann,
)
from mlip.potentials import HarmonicBonds, LennardJones

EPS, SIGMA = 0.0104, 3.4  # argon, eV and A

pytestmark = pytest.mark.usefixtures("one_thread")


def ar13() -> ase.Atoms:
    return Icosahedron("Ar", 2, latticeconstant=5.26)


def cube() -> tuple[ase.Atoms, HarmonicBonds]:
    """8 atoms on a 1.5 A cube, springs on all 28 pairs (rigid), masses 1 and 12 amu."""
    corners = 1.5 * np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)
    atoms = ase.Atoms("H8", positions=corners)
    atoms.set_masses([(1.0, 12.0)[k % 2] for k in range(8)])
    bonds = list(itertools.combinations(range(8), 2))
    d0 = [float(np.linalg.norm(corners[a] - corners[b])) for a, b in bonds]
    return atoms, HarmonicBonds(bonds, k=5.0, d0=d0)


def with_momenta(atoms: ase.Atoms, seed: int, scale: float = 0.3) -> ase.Atoms:
    atoms = atoms.copy()
    momenta = np.random.default_rng(seed).normal(0, scale, (len(atoms), 3))
    atoms.set_momenta(momenta - momenta.mean(0))  # ASE units
    return atoms


def nhc_run(model, atoms, dt, steps, start_t, target, tau, replicas=1, seed=1, skin=1.0):
    """NHC from Maxwell-Boltzmann momenta at start_t (K): (sim, rows (steps, 4, S)) with
    rows[:, 0..3] = kinetic, potential, heat (eV) and kinetic temperature (K)."""
    state = from_atoms(atoms, replicas=replicas, temperature=target)
    generator = torch.Generator().manual_seed(seed)
    state = maxwell_boltzmann(state, temperature=start_t, generator=generator)
    sim = Simulation(state, ForceField(model, skin=skin), make_integrator("nvt-nhc", dt, tau=tau))
    rows = []
    for _ in range(steps):
        sim.advance(1)
        s = sim.state
        rows.append(torch.stack([s.kinetic_energy(), s.energy, s.heat, s.kinetic_temperature()]))
    return sim, torch.stack(rows).numpy()


@pytest.mark.parametrize("system", ["harmonic", "lj"])
def test_conserved_quantity_second_order(system):
    """H' = K + U - heat is conserved while the thermostat moves much energy; error ~ dt^2."""
    if system == "harmonic":
        (atoms, model), dt, total, start_t, target, tau = cube(), 0.4, 400.0, 100.0, 300.0, 10.0
    else:
        atoms, model = ar13(), LennardJones(EPS, SIGMA, 8.5)  # all pairs inside the cutoff
        dt, total, start_t, target, tau = 8.0, 4000.0, 10.0, 30.0, 100.0
    fluct, worst = {}, {}
    for h in (dt, dt / 2):
        sim, rows = nhc_run(model, atoms, h, int(round(total / h)), start_t, target, tau)
        kinetic, potential, heat = rows[:, 0, 0], rows[:, 1, 0], rows[:, 2, 0]
        conserved = kinetic + potential - heat
        # heat is minus the chain energy of H' (chains start at rest, heat at 0)
        chain = sim.integrator.thermostat_energy(sim.state)
        torch.testing.assert_close(sim.state.heat, -chain, rtol=0, atol=1e-12)
        work = np.ptp(heat)  # energy the thermostat moved in (the target is 3x the start)
        assert work > kinetic.mean(), (work, kinetic.mean())
        assert np.ptp(conserved) < 1e-2 * work, (h, np.ptp(conserved), work)
        # after equilibration no trend beyond the bounded O(dt^2) fluctuation (a pure
        # linear drift would give 2 sqrt(3) std)
        late = conserved[len(conserved) // 2 :]
        drift = abs(np.polyfit(np.arange(len(late)) * h, late, 1)[0]) * total / 2
        assert drift < 3 * late.std() + 1e-12, (h, drift, late.std())
        # total momentum stays zero (zeroed at init, forces and scaling keep it)
        assert float(sim.state.system_sum(sim.state.momenta).abs().max()) < 1e-10
        fluct[h], worst[h] = conserved.std(), np.abs(conserved - conserved[0]).max()
    for name, err in (("std", fluct), ("max deviation", worst)):
        ratio = err[dt] / err[dt / 2]
        assert 3.0 < ratio < 5.0, f"halving dt should divide the H' {name} by ~4, got {ratio}"


def test_per_system_targets_canonical_temperature():
    """32-atom argon crystals from 50 K reach their own targets 30/60/90 K (NVE: ~25 K)
    with canonical kinetic-energy fluctuations sqrt(2 / N_f)."""
    atoms = bulk("Ar", "fcc", a=5.3, cubic=True) * (2, 2, 2)
    targets = np.array([30.0, 60.0, 90.0, 60.0])
    _, rows = nhc_run(LennardJones(EPS, SIGMA, 7.0), atoms, 5.0, 1500, 50.0, targets, 50.0, 4)
    temps = rows[300:, 3]  # (T, S) K, after 1.5 ps
    np.testing.assert_allclose(temps.mean(0), targets, rtol=0.03)
    nf = 3 * len(atoms) - 3
    relative = temps.std(0) / temps.mean(0)  # Berendsen would give ~0, NVE at 25 K too
    np.testing.assert_allclose(relative, np.sqrt(2 / nf), rtol=0.25)


def argon_systems() -> list[ase.Atoms]:
    """Different sizes (a cluster, a crystal, a single atom in a cell, a dimer), hot."""
    dimer = molecule("H2")
    dimer.set_chemical_symbols(["Ar", "Ar"])
    dimer.positions *= 3.7 / 0.74
    systems = [ar13(), bulk("Ar", "fcc", a=5.26, cubic=True) * (2, 2, 1), bulk("Ar"), dimer]
    return [with_momenta(a, 10 + k, scale=1.5) for k, a in enumerate(systems)]


def run(atoms_list, steps, temperature, tau, check_every=1, dt=4.0):
    state = from_atoms(atoms_list, temperature=temperature)
    integrator = make_integrator("nvt-nhc", dt, tau=tau, chain_length=4)
    ff = ForceField(LennardJones(EPS, SIGMA, 7.0), skin=0.3)
    sim = Simulation(state, ff, integrator, check_every=check_every)
    for _ in range(steps // check_every):
        sim.advance(check_every)
    return sim


def test_batch_equals_single_runs_per_system_target_and_tau():
    systems = argon_systems()
    temps, taus = [20.0, 150.0, 40.0, 80.0], [30.0, 60.0, 20.0, 100.0]
    batched = run(systems, 64, temps, taus).state
    singles = [run([a], 64, t, tau).state for a, t, tau in zip(systems, temps, taus, strict=True)]
    joined = concatenate(singles)
    assert joined.thermostat.shape == (4, 8)
    assert float(joined.thermostat[:, 4].abs().min()) > 1e-6  # the chains did move
    for name in ("positions", "momenta", "thermostat"):
        want = getattr(joined, name)
        torch.testing.assert_close(getattr(batched, name), want, rtol=0, atol=1e-10)
    torch.testing.assert_close(batched.heat, torch.cat([s.heat for s in singles]))
    # same trajectory if a state with chains is continued after concatenation
    again = run(systems, 32, temps, taus).state
    cont = Simulation(
        concatenate([again]),
        ForceField(LennardJones(EPS, SIGMA, 7.0), skin=0.3),
        make_integrator("nvt-nhc", 4.0, tau=taus, chain_length=4),
    )
    cont.advance(32)
    torch.testing.assert_close(cont.state.positions, batched.positions, rtol=0, atol=1e-10)


def test_rollback_restores_chains():
    """check_every=8 (rollback when the list goes stale) equals per-step checks."""
    systems = argon_systems()[:2]
    exact = run(systems, 48, [100.0, 30.0], 20.0, check_every=1)
    deferred = run(systems, 48, [100.0, 30.0], 20.0, check_every=8)
    assert deferred.rollbacks > 0, "the test should exercise a stale list inside a chunk"
    for name in ("positions", "momenta", "thermostat", "heat"):
        got, want = getattr(deferred.state, name), getattr(exact.state, name)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9)


def test_step_by_step_agreement_with_ase_nose_hoover_chain():
    """With ASE's N_f = 3N the integrator is ASE's NoseHooverChainNVT (MTK, SY-3, M=3)."""
    from ase.md import nose_hoover_chain as nhc  # ASE >= 3.23 (pyproject's pin)

    atoms = with_momenta(ar13(), 5, scale=0.4)
    atoms.positions += np.random.default_rng(6).normal(0, 0.05, atoms.positions.shape)
    ref = atoms.copy()
    ref.calc = AseLennardJones(epsilon=EPS, sigma=SIGMA, rc=8.5)
    dt, tau, target = 5.0, 40.0, 25.0
    dyn = nhc.NoseHooverChainNVT(ref, dt * ase.units.fs, target, tau * ase.units.fs, tloop=2)
    integrator = NoseHooverChain(dt, tau=tau, chain_length=3, yoshida=3, substeps=2)
    ff = ForceField(LennardJones(EPS, SIGMA, 8.5))
    state = integrator.init(from_atoms(atoms, temperature=target), ff)
    state = state.replace(dof=torch.full_like(state.dof, 3.0 * len(atoms)))
    for _ in range(30):
        dyn.run(1)
        state = integrator.step(state, ff)
    got = state.to_atoms()[0]
    np.testing.assert_allclose(got.positions, ref.positions, atol=1e-9)
    np.testing.assert_allclose(got.get_momenta(), ref.get_momenta(), atol=1e-9)
    conserved = float(state.kinetic_energy()[0] + state.energy[0] - state.heat[0])
    assert conserved == pytest.approx(dyn.get_conserved_energy(), abs=1e-9)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="-5"):
        make_integrator("nvt-nhc", 1.0, tau=-5.0)
    with pytest.raises(ValueError, match="chain_length.*0"):
        make_integrator("nhc", 1.0, chain_length=0)
    with pytest.raises(ValueError, match="chain_length.*2.5"):
        NoseHooverChain(1.0, chain_length=2.5)
    with pytest.raises(ValueError, match="yoshida.*2"):
        NoseHooverChain(1.0, yoshida=2)
    with pytest.raises(ValueError, match="substeps.*0"):
        NoseHooverChain(1.0, substeps=0)
    integrator = make_integrator("nose-hoover", 1.0, tau=[10.0, 20.0, 30.0])
    state = from_atoms([ar13(), ar13()], temperature=30.0)
    with pytest.raises(ValueError, match="tau"):  # 3 values for 2 systems
        integrator.init(state, ForceField(LennardJones(EPS, SIGMA, 7.0)))
    with pytest.raises(ValueError, match="0.0"):
        integrator = make_integrator("nvt-nhc", 1.0)
        integrator.init(state.replace(temperature=torch.zeros(2, dtype=torch.float64)), None)
