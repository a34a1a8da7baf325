"""Batching: replicas and mixed systems in one batch follow their single-system trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.cluster import Icosahedron
from support import small_model

from mlip.data.graph import Structure
from mlip.md import (
    ForceField,
    Simulation,
    concatenate,
    from_atoms,
    make_integrator,
    maxwell_boltzmann,
)
from mlip.potentials import LennardJones

pytestmark = pytest.mark.usefixtures("one_thread")


def with_momenta(atoms, seed: int, scale: float = 0.3):
    atoms = atoms.copy()
    rng = np.random.default_rng(seed)
    momenta = rng.normal(0, scale, (len(atoms), 3))
    atoms.set_momenta(momenta - momenta.mean(0))  # ASE units
    return atoms


def argon_systems():
    """Different sizes: a cluster, a crystal, a cell smaller than the cutoff, a dimer."""
    tiny = bulk("Ar", "fcc", a=5.26)  # 1 atom, heights ~3 A < cutoff
    crystal = bulk("Ar", "fcc", a=5.26, cubic=True) * (2, 2, 1)
    dimer = molecule("H2")
    dimer.set_chemical_symbols(["Ar", "Ar"])
    dimer.positions *= 3.7 / 0.74
    cluster = Icosahedron("Ar", 2, latticeconstant=5.26)
    return [with_momenta(a, k) for k, a in enumerate([cluster, crystal, tiny, dimer])]


def run(model, atoms_list, steps, ensemble="nve", check_every=1, replicas=1, dt=4.0, **kw):
    state = from_atoms(atoms_list, replicas=replicas, temperature=100.0)
    integrator = make_integrator(ensemble, dt, **kw)
    sim = Simulation(state, ForceField(model, skin=0.3), integrator, check_every=check_every)
    for _ in range(steps // check_every):
        sim.advance(check_every)
    return sim


def test_mixed_batch_equals_single_runs():
    model = LennardJones(0.0104, 3.4, 7.0)
    systems = argon_systems()
    batched = run(model, systems, 60).state
    singles = [run(model, [a], 60).state for a in systems]
    joined = concatenate(singles)
    torch.testing.assert_close(batched.positions, joined.positions, rtol=0, atol=1e-10)
    torch.testing.assert_close(batched.momenta, joined.momenta, rtol=0, atol=1e-10)
    torch.testing.assert_close(batched.energy, torch.cat([s.energy for s in singles]))
    assert batched.step == 60 and batched.time == pytest.approx(240.0)


def test_replicas_equal_single_runs_learned_model():
    model = small_model(atomic_numbers=(1, 6, 8), r_max=3.0)
    ethanol = molecule("CH3CH2OH")
    starts = [with_momenta(ethanol, seed, scale=0.5) for seed in range(3)]
    batched = run(model, starts, 15, dt=0.5).state
    for k, atoms in enumerate(starts):
        single = run(model, [atoms], 15, dt=0.5).state
        rows = slice(9 * k, 9 * (k + 1))
        torch.testing.assert_close(batched.positions[rows], single.positions, rtol=0, atol=1e-10)
    # replicas=R copies one input R times, identical initial conditions: identical runs
    copies = run(model, [starts[0]], 15, replicas=3, dt=0.5).state.positions.reshape(3, 9, 3)
    torch.testing.assert_close(copies[1], copies[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(copies[0], batched.positions[:9], rtol=0, atol=1e-10)


@pytest.mark.parametrize("ensemble", ["nve", "nvt-langevin"])
def test_deferred_checks_with_rollback_equal_per_step_checks(ensemble):
    """check_every=8 (device-side flag, rollback when stale) must equal per-step checks."""
    model = LennardJones(0.0104, 3.4, 7.0)
    hot = [with_momenta(a, 10 + k, scale=1.5) for k, a in enumerate(argon_systems()[:2])]
    exact = run(model, hot, 48, ensemble, check_every=1, seed=3)
    deferred = run(model, hot, 48, ensemble, check_every=8, seed=3)
    assert deferred.rollbacks > 0, "the test should exercise a stale list inside a chunk"
    assert deferred.force_field.neighbors.builds >= exact.force_field.neighbors.builds
    torch.testing.assert_close(deferred.state.positions, exact.state.positions, rtol=0, atol=1e-9)
    torch.testing.assert_close(deferred.state.momenta, exact.state.momenta, rtol=0, atol=1e-9)


def test_state_from_structures_and_maxwell_boltzmann():
    systems = argon_systems()
    from_structs = from_atoms([Structure.from_atoms(a) for a in systems], replicas=2)
    from_ase = from_atoms(systems, replicas=2)
    torch.testing.assert_close(from_structs.positions, from_ase.positions)
    torch.testing.assert_close(from_structs.masses, from_ase.masses)
    assert from_ase.n_systems == 8 and from_ase.names[1].endswith("_r1")
    assert from_ase.system_idx.tolist() == sorted(from_ase.system_idx.tolist())
    # Maxwell-Boltzmann: zero total momentum per system, <T> at the target over many atoms
    big = from_atoms(bulk("Ar", "fcc", a=5.26, cubic=True) * (4, 4, 4), replicas=4, temperature=50)
    drawn = maxwell_boltzmann(big, generator=torch.Generator().manual_seed(0))
    assert drawn.system_sum(drawn.momenta).abs().max() < 1e-10
    assert float(drawn.kinetic_temperature().mean()) == pytest.approx(50.0, rel=0.05)
    again = maxwell_boltzmann(big, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(drawn.momenta, again.momenta, rtol=0, atol=0)
