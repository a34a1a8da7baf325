"""MLIPCalculator against ASE's own Lennard-Jones, finite differences and ASE drivers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.lj import LennardJones as AseLJ
from ase.constraints import FixAtoms
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list
from ase.optimize import BFGS, FIRE
from ase.vibrations import Vibrations
from support import argon_cluster, argon_crystal

from mlip.calculator import MLIPCalculator
from mlip.errors import CheckpointError, UnknownElementError
from mlip.potentials import HarmonicBonds, LennardJones

EPS, SIGMA, RC = 0.0104, 3.4, 8.5  # argon, eV and Angstrom


SMALL = os.path.join(os.path.dirname(__file__), "..", "datasets", "ethanol_small.h5")


def lj_model() -> LennardJones:
    return LennardJones(epsilon=EPS, sigma=SIGMA, r_max=RC)


def ase_lj() -> AseLJ:
    return AseLJ(epsilon=EPS, sigma=SIGMA, rc=RC)


@pytest.mark.parametrize("make", [argon_cluster, argon_crystal], ids=["cluster", "periodic"])
def test_matches_ase_lennard_jones(make) -> None:
    atoms = make()
    reference = atoms.copy()
    reference.calc = ase_lj()
    atoms.calc = MLIPCalculator(lj_model())
    energy = reference.get_potential_energy()
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-10)
    np.testing.assert_allclose(
        atoms.calc.get_property("energies"), reference.calc.results["energies"], atol=1e-10
    )
    if atoms.pbc.any():
        np.testing.assert_allclose(atoms.get_stress(), reference.get_stress(), atol=1e-10)
    else:
        with pytest.raises(PropertyNotImplementedError):
            atoms.get_stress()


@pytest.mark.parametrize("make", [argon_cluster, argon_crystal], ids=["cluster", "periodic"])
def test_hessian_matches_ase_finite_differences(make, tmp_path) -> None:
    atoms = argon_crystal(repeat=(2, 1, 1)) if make is argon_crystal else make(5)
    # the shifted LJ force jumps at the cutoff: keep displaced pairs away from it
    distances = neighbor_list("d", atoms, RC + 0.5)
    assert np.abs(distances - RC).min() > 0.05
    atoms.calc = MLIPCalculator(lj_model())
    analytic = atoms.calc.get_hessian(atoms)
    vib = Vibrations(atoms, delta=1e-3, nfree=4, name=str(tmp_path / "vib"))
    vib.run()
    numeric = vib.get_vibrations().get_hessian_2d()
    assert analytic.shape == (3 * len(atoms), 3 * len(atoms))
    np.testing.assert_allclose(analytic, analytic.T, atol=1e-12)
    scale = np.abs(analytic).max()
    assert np.abs(analytic - numeric).max() < 1e-6 * scale


def test_hessian_cache_follows_positions() -> None:
    atoms = argon_cluster(5)
    calc = MLIPCalculator(lj_model())
    first = calc.get_hessian(atoms)
    atoms.positions[0] += [0.1, 0.0, 0.0]
    moved = calc.get_hessian(atoms)
    fresh = MLIPCalculator(lj_model()).get_hessian(atoms)
    assert np.abs(moved - first).max() > 1e-4
    np.testing.assert_allclose(moved, fresh, atol=1e-12)


@pytest.mark.parametrize("optimizer", [BFGS, FIRE])
def test_relaxation_matches_ase_lj(optimizer) -> None:
    atoms = argon_cluster(6, seed=3)
    atoms.rattle(0.1, seed=4)
    reference = atoms.copy()
    atoms.calc = MLIPCalculator(lj_model())
    reference.calc = ase_lj()
    e0 = atoms.get_potential_energy()
    for a in (atoms, reference):
        assert optimizer(a, logfile=None).run(fmax=1e-3, steps=300)
    assert atoms.get_potential_energy() < e0
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MaxwellBoltzmann in ASE >= 3.29
def test_velocity_verlet_conserves_energy() -> None:
    atoms = argon_cluster(13, seed=5)
    atoms.calc = MLIPCalculator(lj_model())
    BFGS(atoms, logfile=None).run(fmax=1e-2, steps=100)
    MaxwellBoltzmannDistribution(atoms, temperature_K=20, rng=np.random.default_rng(0))
    Stationary(atoms)
    total = [atoms.get_total_energy()]
    dyn = VelocityVerlet(atoms, timestep=2 * units.fs, logfile=None)
    for _ in range(5):
        dyn.run(10)
        total.append(atoms.get_total_energy())
    kinetic = atoms.get_kinetic_energy()
    assert kinetic > 0
    assert np.ptp(total) < 1e-3 * kinetic


def test_langevin_with_fixed_atoms_periodic() -> None:
    atoms = argon_crystal()
    atoms.set_constraint(FixAtoms(indices=[0, 1]))
    atoms.calc = MLIPCalculator(lj_model())
    start = atoms.positions.copy()
    dyn = Langevin(
        atoms,
        timestep=5 * units.fs,
        temperature_K=60,
        friction=0.02,
        fixcm=False,
        rng=np.random.default_rng(1),
    )
    dyn.run(30)
    np.testing.assert_array_equal(atoms.positions[:2], start[:2])
    assert np.abs(atoms.positions[2:] - start[2:]).max() > 1e-3
    assert np.isfinite(atoms.get_stress()).all()
    assert np.isfinite(atoms.get_temperature()) and atoms.get_temperature() > 0


def test_fix_atoms_in_bfgs() -> None:
    atoms = argon_cluster(6, seed=6)
    atoms.set_constraint(FixAtoms(indices=[0]))
    atoms.calc = MLIPCalculator(lj_model())
    start = atoms.positions[0].copy()
    raw = atoms.get_forces(apply_constraint=False)[0]
    assert np.abs(raw).max() > 1e-4
    np.testing.assert_array_equal(atoms.get_forces()[0], 0.0)
    assert BFGS(atoms, logfile=None).run(fmax=1e-3, steps=300)
    np.testing.assert_array_equal(atoms.positions[0], start)


def test_atom_count_elements_and_cell_can_change() -> None:
    calc = MLIPCalculator(lj_model())
    systems = [argon_cluster(3), argon_cluster(5), argon_crystal(), argon_crystal()[:-2]]
    systems[2].set_cell(systems[2].cell * 1.02, scale_atoms=True)
    mixed = argon_cluster(4)
    mixed.numbers = [18, 18, 10, 10]  # LJ is element-agnostic; the element change must register
    systems.append(mixed)
    for atoms in systems:
        atoms.calc = calc
        reference = atoms.copy()
        reference.calc = ase_lj()
        assert atoms.get_potential_energy() == pytest.approx(
            reference.get_potential_energy(), abs=1e-10
        )
        np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-10)
        assert calc.get_hessian(atoms).shape == (3 * len(atoms), 3 * len(atoms))


class Scaled(torch.nn.Module):
    """LJ times a float32 parameter: checks that the caller's module is left untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = lj_model()
        self.scale = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float32))
        self.r_max, self.atomic_numbers = self.inner.r_max, None

    def forward(self, batch):  # noqa: ANN001, ANN201
        out = self.inner(batch)
        return {k: v * self.scale.to(v.dtype) for k, v in out.items()}


def test_default_dtype_untouched_and_model_converted_locally() -> None:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        model = Scaled()
        atoms = argon_cluster(5)
        reference = atoms.copy()
        reference.calc = ase_lj()
        for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
            atoms.calc = MLIPCalculator(model, dtype=dtype)
            forces = atoms.get_forces()
            assert forces.dtype == np.float64
            scale = np.abs(reference.get_forces()).max()
            np.testing.assert_allclose(forces, reference.get_forces(), atol=tol * scale)
            assert atoms.calc.get_hessian(atoms).dtype == np.float64
            assert torch.get_default_dtype() == torch.float32
        assert model.scale.dtype == torch.float32
    finally:
        torch.set_default_dtype(previous)


def test_unknown_element_is_named() -> None:
    model = HarmonicBonds([(0, 1)], k=10.0, d0=1.0)
    model.atomic_numbers = [1, 8]
    calc = MLIPCalculator(model)
    water_like = Atoms("OH", positions=[[0, 0, 0], [0, 0, 1.0]], calculator=calc)
    assert np.isfinite(water_like.get_potential_energy())
    bad = Atoms("CH", positions=[[0, 0, 0], [0, 0, 1.0]], calculator=calc)
    with pytest.raises(UnknownElementError, match=r"\bC\b.*H, O"):
        bad.get_potential_energy()


def test_model_path_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        MLIPCalculator(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    with pytest.raises(CheckpointError, match="junk.pt"):
        MLIPCalculator(junk)


def test_bad_dtype_named() -> None:
    with pytest.raises(ValueError, match="float16"):
        MLIPCalculator(lj_model(), dtype="float16")


def test_learned_model_by_path_matches_module(tmp_path) -> None:
    from mlip import model as model_module
    from mlip.vib import read_structure

    torch.manual_seed(0)
    config = model_module.ModelConfig(num_channels=8, num_layers=1, radial_hidden=8)
    model = model_module.MLIPModel(config).to(torch.float64)
    model.save(tmp_path / "model.pt")
    atoms, _ = read_structure(f"{SMALL}:ethanol_minimum")
    by_path = MLIPCalculator(tmp_path / "model.pt")
    by_module = MLIPCalculator(model)
    assert by_path.get_potential_energy(atoms) == pytest.approx(
        by_module.get_potential_energy(atoms), abs=1e-10
    )
    analytic = by_path.get_hessian(atoms)
    # central differences of the forces for the coordinates of atoms 0 (C) and 8 (H)
    delta = 1e-4
    for k in (0, 1, 2, 24, 25, 26):
        displaced = []
        for sign in (1.0, -1.0):
            moved = atoms.copy()
            moved.positions[k // 3, k % 3] += sign * delta
            displaced.append(by_path.get_forces(moved).reshape(-1))
        column = -(displaced[0] - displaced[1]) / (2 * delta)
        np.testing.assert_allclose(analytic[:, k], column, atol=1e-6 * np.abs(analytic).max())
