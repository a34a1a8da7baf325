"""Physics of the model and its autograd derivatives (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import assert_equivariant, copper, ethanol, evaluate, small_model

from mlip import keys
from mlip.data.graph import Structure
from mlip.derivatives import split_hessian


@pytest.fixture(scope="module")
def model():
    return small_model()


def test_invariance_molecule(model):
    assert_equivariant(model, ethanol(1))


def test_invariance_periodic(model):
    assert_equivariant(model, copper(2, seed=3))


def test_permutation(model):
    s = ethanol(2)
    perm = np.random.default_rng(0).permutation(s.num_atoms)
    permuted = Structure(s.atomic_numbers[perm], s.positions[perm])
    a, b = evaluate(model, [s]), evaluate(model, [permuted])
    assert torch.allclose(a[keys.ENERGY], b[keys.ENERGY], rtol=1e-12, atol=0)
    assert torch.allclose(a[keys.FORCES][perm], b[keys.FORCES], rtol=0, atol=1e-12)


def test_forces_are_finite_differences(model):
    s = ethanol(3)
    forces = evaluate(model, [s])[keys.FORCES].numpy()
    h = 1e-4
    fd = np.zeros_like(forces)
    for a in range(s.num_atoms):
        for x in range(3):
            energies = []
            for sign in (1, -1):
                p = s.positions.copy()
                p[a, x] += sign * h
                energies.append(evaluate(model, [Structure(s.atomic_numbers, p)])[keys.ENERGY])
            fd[a, x] = -float(energies[0] - energies[1]) / (2 * h)
    assert np.abs(forces - fd).max() < 1e-7 * max(1.0, np.abs(forces).max())


def test_hessian_symmetric_and_finite_difference_of_forces(model):
    s = ethanol(4)
    hess = split_hessian(
        evaluate(model, [s], hessian=True)[keys.HESSIAN], torch.tensor([s.num_atoms])
    )[0].numpy()
    assert np.abs(hess - hess.T).max() < 1e-12 * np.abs(hess).max()
    h = 1e-4
    fd = np.zeros_like(hess)
    for k in range(3 * s.num_atoms):
        forces = []
        for sign in (1, -1):
            p = s.positions.copy().reshape(-1)
            p[k] += sign * h
            s2 = Structure(s.atomic_numbers, p.reshape(-1, 3))
            forces.append(evaluate(model, [s2])[keys.FORCES].numpy().reshape(-1))
        fd[k] = -(forces[0] - forces[1]) / (2 * h)
    assert np.abs(hess - fd).max() < 1e-6 * np.abs(hess).max()


def test_hessian_of_batch_equals_single(model):
    structures = [ethanol(5), copper(1, seed=1), ethanol(6)]
    out = evaluate(model, structures, hessian=True)
    n = torch.tensor([s.num_atoms for s in structures])
    blocks = split_hessian(out[keys.HESSIAN], n)
    for s, block in zip(structures, blocks, strict=True):
        single = evaluate(model, [s], hessian=True)[keys.HESSIAN].reshape(block.shape)
        assert torch.allclose(block, single, rtol=0, atol=1e-11)


def test_stress_is_strain_derivative(model):
    s = copper(1, cubic=True, seed=2)
    stress = evaluate(model, [s], stress=True)[keys.STRESS][0].numpy()
    volume = abs(np.linalg.det(s.cell))
    h = 1e-5
    fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                eps = np.zeros((3, 3))
                eps[a, b] += sign * h / 2
                eps[b, a] += sign * h / 2
                deformed = np.eye(3) + eps
                s2 = Structure(s.atomic_numbers, s.positions @ deformed, s.cell @ deformed, s.pbc)
                energies.append(float(evaluate(model, [s2])[keys.ENERGY]))
            fd[a, b] = (energies[0] - energies[1]) / (2 * h) / volume
    assert np.abs(stress - fd).max() < 1e-7 * max(1e-3, np.abs(stress).max())


def test_supercell_energy_is_extensive_small_cell(model):
    # The primitive fcc cell (2.55 A vectors) is far smaller than the 5 A cutoff:
    # every atom sees many images of itself.
    unit = copper(1, noise=0.0)
    energy_unit = float(evaluate(model, [unit])[keys.ENERGY])
    for size in (2, 3):
        supercell = copper(size, noise=0.0)
        energy = float(evaluate(model, [supercell])[keys.ENERGY])
        assert energy == pytest.approx(size**3 * energy_unit, rel=1e-11)


def test_batched_equals_one_by_one(model):
    structures = [ethanol(7), copper(2, seed=4), ethanol(8), copper(1, seed=5)]
    batched = evaluate(model, structures, stress=True)
    offset = 0
    for k, s in enumerate(structures):
        single = evaluate(model, [s], stress=True)
        assert torch.allclose(batched[keys.ENERGY][k], single[keys.ENERGY][0], rtol=1e-13)
        sl = slice(offset, offset + s.num_atoms)
        assert torch.allclose(batched[keys.FORCES][sl], single[keys.FORCES], atol=1e-12, rtol=0)
        assert torch.allclose(batched[keys.STRESS][k], single[keys.STRESS][0], atol=1e-12)
        offset += s.num_atoms


def test_smooth_at_cutoff(model):
    """E, F and dF/dr continuous as a dimer crosses r_max; a pair beyond it adds nothing."""
    r_max = model.r_max

    def dimer(r: float) -> Structure:
        return Structure(np.array([6, 8]), np.array([[0.0, 0, 0], [r, 0, 0]]))

    far = evaluate(model, [dimer(r_max + 0.5)])
    isolated = evaluate(model, [Structure(np.array([6]), np.zeros((1, 3)))])
    isolated_o = evaluate(model, [Structure(np.array([8]), np.zeros((1, 3)))])
    e_far = float(far[keys.ENERGY])
    assert e_far == pytest.approx(float(isolated[keys.ENERGY] + isolated_o[keys.ENERGY]), abs=1e-12)
    assert far[keys.FORCES].abs().max() == 0
    eps = 1e-4
    inside = evaluate(model, [dimer(r_max - eps)], hessian=True)
    # Envelope goes to zero with its first two derivatives: E - E_far = O(eps^3), F = O(eps^2).
    assert abs(float(inside[keys.ENERGY]) - e_far) < 1e-8
    assert inside[keys.FORCES].abs().max() < 1e-5
    assert inside[keys.HESSIAN].abs().max() < 1e-2


def test_derivatives_work_under_no_grad(model):
    structures = [copper(1, seed=6), ethanol(10)]
    ref = evaluate(model, structures, stress=True)
    with torch.no_grad():
        out = evaluate(model, structures, stress=True)
    assert out[keys.FORCES].abs().max() > 0
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS):
        assert torch.equal(out[key], ref[key])


def test_batched_hessian_probes_equal_single_probes(model):
    structures = [ethanol(11), copper(1, seed=7)]
    n = sum(s.num_atoms for s in structures)
    probes = torch.randn(3, n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    batched = evaluate(model, structures, hessian_probes=probes)[keys.HESSIAN_PROBED]
    for k in range(3):
        single = evaluate(model, structures, hessian_probes=probes[k])[keys.HESSIAN_PROBED]
        assert torch.allclose(batched[k], single, rtol=0, atol=1e-12)
