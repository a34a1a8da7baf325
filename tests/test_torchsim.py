"""TorchSim interop: mlip models as TorchSim ModelInterfaces (skipped without TorchSim).

Against MLIPCalculator (float64, 1e-10), TorchSim's own validate_model_outputs on its Si
and Fe systems, and TorchSim's integrator (NVE energy conservation) and optimiser
(FIRE with the cell, against ASE's FrechetCellFilter + FIRE with the calculator).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from support import ethanol, small_model

from mlip.calculator import MLIPCalculator
from mlip.potentials import LennardJones

ts = pytest.importorskip("torch_sim")
from mlip.integrations.torchsim import MLIPTorchSimModel  # noqa: E402


def systems() -> list:
    copper = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1))
    copper.rattle(0.05, seed=1)
    sheared = bulk("Cu", "fcc", a=3.7).repeat(2)
    sheared.set_cell(sheared.cell[:] @ np.array([[1, 0.05, 0], [0, 1, 0], [0.02, 0, 1]]), True)
    sheared.rattle(0.03, seed=2)
    return [copper, sheared]


def test_matches_calculator_one_by_one_and_batched() -> None:
    model = small_model()
    wrapped = MLIPTorchSimModel(model, compute_stress=True)
    crystals = systems()
    state = ts.io.atoms_to_state(crystals, torch.device("cpu"), torch.float64)
    out = wrapped(state)
    offset = 0
    for k, atoms in enumerate(crystals):
        calc = MLIPCalculator(model)
        atoms.calc = calc
        n = len(atoms)
        assert float(out["energy"][k]) == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(
            out["forces"][offset : offset + n], atoms.get_forces(), atol=1e-10
        )
        expected = atoms.get_stress(voigt=False)
        np.testing.assert_allclose(out["stress"][k].numpy(), expected, atol=1e-10)
        offset += n
    # a plain state dict with the column-vector cell of TorchSim
    as_dict = {
        "positions": state.positions,
        "cell": state.cell,
        "pbc": state.pbc,
        "atomic_numbers": state.atomic_numbers,
        "system_idx": state.system_idx,
    }
    again = wrapped(as_dict)
    torch.testing.assert_close(again["forces"], out["forces"], atol=1e-12, rtol=0)
    # a molecule (no cell, no stress)
    molecule = ethanol().to_atoms()
    molecule.calc = MLIPCalculator(model)
    plain = MLIPTorchSimModel(model)
    result = plain(ts.io.atoms_to_state([molecule], torch.device("cpu"), torch.float64))
    np.testing.assert_allclose(result["forces"], molecule.get_forces(), atol=1e-10)
    assert "stress" not in result
    with pytest.raises(ValueError, match="stress needs periodic"):
        wrapped(ts.io.atoms_to_state([molecule], torch.device("cpu"), torch.float64))


def test_torchsim_validate_model_outputs() -> None:
    """TorchSim's own interface check builds diamond Si and fcc Fe (20 atoms in all)."""
    from torch_sim.models.interface import validate_model_outputs

    model = MLIPTorchSimModel(small_model(atomic_numbers=(14, 26)), compute_stress=True)
    validate_model_outputs(model, torch.device("cpu"), torch.float64)
    with pytest.raises(ValueError, match=r"element\(s\) Cu not known"):
        model(ts.io.atoms_to_state([bulk("Cu")], torch.device("cpu"), torch.float64))


def test_torchsim_nve_conserves_energy() -> None:
    lj = LennardJones(epsilon=0.0104, sigma=3.4, r_max=8.5)
    model = MLIPTorchSimModel(lj, skin=0.5)
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    state = ts.io.atoms_to_state([atoms, atoms.copy()], torch.device("cpu"), torch.float64)
    init, update = ts.nve(model=model, dt=torch.tensor(0.005), kT=torch.tensor(40 * 8.617e-5))
    md = init(state)
    energies = []
    for _ in range(200):
        md = update(md)
        energies.append(
            (
                md.energy
                + ts.calc_kinetic_energy(
                    masses=md.masses, momenta=md.momenta, system_idx=md.system_idx
                )
            ).numpy()
        )
    energies = np.array(energies)
    kinetic = ts.calc_kinetic_energy(masses=md.masses, momenta=md.momenta, system_idx=md.system_idx)
    assert (kinetic > 0).all()
    assert np.ptp(energies, axis=0).max() < 2e-3 * float(kinetic.min())
    assert model.neighbors.builds >= 1


def test_torchsim_optimizer_matches_ase() -> None:
    """TorchSim's FIRE with the Frechet cell filter and ASE's, through the same model."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    lj = LennardJones(epsilon=0.0104, sigma=3.4, r_max=8.5)
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True)
    atoms.rattle(0.05, seed=4)
    model = MLIPTorchSimModel(lj, compute_stress=True)
    final = ts.optimize(
        system=atoms.copy(),
        model=model,
        optimizer=ts.frechet_cell_fire,
        convergence_fn=ts.generate_force_convergence_fn(force_tol=1e-4, include_cell_forces=True),
        max_steps=3000,
    )
    reference = atoms.copy()
    reference.calc = MLIPCalculator(lj)
    FIRE(FrechetCellFilter(reference), logfile=None).run(fmax=1e-4, steps=3000)
    assert float(final.energy[0]) == pytest.approx(reference.get_potential_energy(), abs=1e-6)
    volume = float(torch.linalg.det(final.cell[0]))
    assert volume == pytest.approx(reference.get_volume(), rel=1e-4)
