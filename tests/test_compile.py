"""torch.compile in the MD force field and the ASE calculator: same results as eager."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from support import small_model

from mlip.calculator import MLIPCalculator
from mlip.committee import Committee
from mlip.md import ForceField, Simulation, VelocityVerlet, from_atoms, maxwell_boltzmann


@pytest.fixture(autouse=True)
def two_threads():
    """Two torch threads: TorchInductor's multi-threaded CPU kernels for this model crashed
    (segfault) on batches of several systems, which one thread does not show."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def simulate(model, compile_model: bool, steps: int = 30) -> Simulation:
    """Ethanol x2 and a Cu cell in one batch, with a small skin so the list is rebuilt."""
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    state = from_atoms([molecule("CH3CH2OH"), cu], replicas=2, temperature=600.0)
    state = maxwell_boltzmann(state, generator=torch.Generator().manual_seed(3))
    force_field = ForceField(model, skin=0.05, compile=compile_model)
    sim = Simulation(state, force_field, VelocityVerlet(1.0))
    for _ in range(steps):
        sim.advance(1)
    return sim


def test_compiled_model_follows_the_eager_trajectory() -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model = small_model().eval()
    eager = simulate(model, False)
    compiled = simulate(model, True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, "nothing was compiled"
    assert compiled.force_field.neighbors.builds > 2, "the test should cross list rebuilds"
    assert compiled.force_field.neighbors.builds == eager.force_field.neighbors.builds
    a, b = eager.state, compiled.state
    torch.testing.assert_close(b.positions, a.positions, rtol=0, atol=1e-10)
    torch.testing.assert_close(b.momenta, a.momenta, rtol=0, atol=1e-10)
    torch.testing.assert_close(b.energy, a.energy, rtol=0, atol=1e-9)


def test_compiled_calculator_equals_eager() -> None:
    """Energy, forces and stress agree; atoms of another size reuse the compiled graph."""
    model = small_model().eval()
    eager, compiled = MLIPCalculator(model), MLIPCalculator(model, compile=True)
    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)
    cu.rattle(0.05, seed=1)
    for atoms in (molecule("CH3CH2OH"), cu, molecule("CH3OH")):
        a = atoms.copy()
        a.calc = eager
        b = atoms.copy()
        b.calc = compiled
        assert abs(b.get_potential_energy() - a.get_potential_energy()) < 1e-10
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), rtol=0, atol=1e-10)
        if atoms.pbc.any():
            np.testing.assert_allclose(b.get_stress(), a.get_stress(), rtol=0, atol=1e-12)
    hessian = compiled.get_hessian(b)  # double backward: the eager model
    np.testing.assert_allclose(hessian, eager.get_hessian(a), rtol=0, atol=1e-9)


def test_compiled_committee_equals_eager() -> None:
    """The members themselves are compiled (the MD and calculator path of a committee
    calls them one by one); mean, spread and member forces agree with eager."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    committee = Committee([small_model(seed=s).eval() for s in (1, 2)])
    eager, compiled = MLIPCalculator(committee), MLIPCalculator(committee, compile=True)
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=2)
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = eager, compiled
    np.testing.assert_allclose(b.get_forces(), a.get_forces(), rtol=0, atol=1e-10)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, "nothing was compiled"
    for key in ("energy", "energy_std"):
        assert abs(compiled.results[key] - eager.results[key]) < 1e-10
    np.testing.assert_allclose(
        compiled.results["forces_std"], eager.results["forces_std"], rtol=0, atol=1e-10
    )
    assert eager.results["energy_std"] > 0
