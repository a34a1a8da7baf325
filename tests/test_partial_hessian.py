"""Partial Hessians: rows of selected atoms equal the full Hessian's, at a cost in k rows.

float64 throughout; the learned model (untrained, non-trivial weights), periodic and
molecular, one system and a batch of two; FixAtoms as ASE's Vibrations treats it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.constraints import FixAtoms
from ase.vibrations import Vibrations
from support import argon_cluster, copper, ethanol, small_model
from support.physics import evaluate

from mlip import derivatives, keys
from mlip.calculator import MLIPCalculator
from mlip.data.selection import selected_atoms
from mlip.derivatives import split_hessian
from mlip.potentials import LennardJones
from mlip.vib import analyse_atoms, harmonic_analysis


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return small_model()


def test_rows_equal_full_hessian_rows_in_a_batch(model) -> None:
    structures = [copper(size=2, seed=1), ethanol(seed=2)]
    full = evaluate(model, structures, hessian=True)
    blocks = split_hessian(
        full[keys.HESSIAN], torch.tensor([len(s.atomic_numbers) for s in structures])
    )
    n_cu = len(structures[0].atomic_numbers)
    atoms = torch.tensor([3, 0, n_cu + 4])  # two copper atoms, one ethanol atom (global)
    out = evaluate(model, structures, hessian_atoms=atoms)
    rows = out[keys.HESSIAN_ROWS]
    assert rows.shape == (9, 3 * (n_cu + 9)) and rows.dtype == torch.float64
    cu, eth = blocks[0], blocks[1]
    torch.testing.assert_close(rows[0:3, : 3 * n_cu], cu[9:12], atol=1e-10, rtol=0)
    torch.testing.assert_close(rows[3:6, : 3 * n_cu], cu[0:3], atol=1e-10, rtol=0)
    torch.testing.assert_close(rows[6:9, 3 * n_cu :], eth[12:15], atol=1e-10, rtol=0)
    assert rows[0:6, 3 * n_cu :].abs().max() == 0.0  # other system: no coupling
    assert rows[6:9, : 3 * n_cu].abs().max() == 0.0
    # energies and forces are those of the plain evaluation
    torch.testing.assert_close(out[keys.FORCES], full[keys.FORCES], atol=1e-12, rtol=0)


def test_rows_cost_three_products_per_atom(model, monkeypatch) -> None:
    """The work is 3k vector-Jacobian products (one-hot probes), not 3N."""
    seen = []
    original = derivatives._batched_vjp

    def counting(flat_grad, positions, probes, create_graph):  # noqa: ANN001, ANN202
        seen.append(probes.shape[0])
        return original(flat_grad, positions, probes, create_graph)

    monkeypatch.setattr(derivatives, "_batched_vjp", counting)
    structure = copper(size=2, seed=3)  # 8 atoms
    evaluate(model, [structure], hessian_atoms=torch.tensor([5]), hessian_chunk=2)
    assert sum(seen) == 3 and max(seen) <= 2
    seen.clear()
    evaluate(model, [structure], hessian=True)
    assert sum(seen) == 3 * 8


def test_rows_acoustic_sum_rule(model) -> None:
    """A translation changes no force: each row sums to zero over the atoms, per direction."""
    structure = copper(size=2, seed=4)
    rows = evaluate(model, [structure], hessian_atoms=torch.tensor([0, 6]))[keys.HESSIAN_ROWS]
    sums = rows.reshape(6, -1, 3).sum(1)
    assert sums.abs().max() < 1e-10 * rows.abs().max()


def test_calculator_rows_products_and_fix_atoms(model) -> None:
    atoms = copper(size=2, cubic=False, seed=5).to_atoms()
    full = MLIPCalculator(model).get_hessian(atoms)
    calc = MLIPCalculator(model)
    rows = calc.get_hessian(atoms, indices=[4, 1])
    expected = full[np.r_[12:15, 3:6]]
    np.testing.assert_allclose(rows, expected, atol=1e-10, rtol=0)
    assert calc.get_hessian(atoms, indices=[4, 1]) is not rows  # a copy from the cache
    # FixAtoms: by default only the free atoms' rows (ASE's Vibrations rule)
    fixed = atoms.copy()
    fixed.set_constraint(FixAtoms(indices=[0, 2, 3]))
    free_rows = MLIPCalculator(model).get_hessian(fixed)
    free = np.array([1, 4, 5, 6, 7])
    assert free_rows.shape == (15, 24)
    np.testing.assert_allclose(
        free_rows, full[(3 * free[:, None] + np.arange(3)).ravel()], atol=1e-10
    )
    # explicit indices are taken as given, constraints notwithstanding
    np.testing.assert_allclose(
        MLIPCalculator(model).get_hessian(fixed, indices=range(8)), full, atol=1e-10
    )
    # a cached full Hessian serves any rows
    both = MLIPCalculator(model)
    both.get_hessian(atoms)
    np.testing.assert_array_equal(both.get_hessian(atoms, indices=[2]), full[6:9])
    # Hessian-vector products
    vectors = np.random.default_rng(0).standard_normal((4, len(atoms), 3))
    products = MLIPCalculator(model).get_hessian_products(atoms, vectors)
    np.testing.assert_allclose(
        products.reshape(4, -1), vectors.reshape(4, -1) @ full.T, atol=1e-10, rtol=0
    )


def test_rows_follow_moved_atoms(model) -> None:
    atoms = ethanol(seed=6).to_atoms()
    calc = MLIPCalculator(model)
    first = calc.get_hessian(atoms, indices=[0])
    atoms.positions[0] += 0.05
    moved = calc.get_hessian(atoms, indices=[0])
    np.testing.assert_allclose(moved, MLIPCalculator(model).get_hessian(atoms)[:3], atol=1e-10)
    assert np.abs(moved - first).max() > 1e-4


def test_bad_selections_are_named(model) -> None:
    atoms = ethanol().to_atoms()
    calc = MLIPCalculator(model)
    with pytest.raises(ValueError, match=r"\[9\] out of range for 9 atoms"):
        calc.get_hessian(atoms, indices=[0, 9])
    with pytest.raises(ValueError, match="repeat"):
        calc.get_hessian(atoms, indices=[1, 1])
    with pytest.raises(ValueError, match="empty"):
        calc.get_hessian(atoms, indices=[])
    atoms.set_constraint(FixAtoms(indices=range(9)))
    with pytest.raises(ValueError, match="all 9 atoms are fixed"):
        calc.get_hessian(atoms)
    with pytest.raises(ValueError, match=r"shape \(K, 9, 3\)"):
        calc.get_hessian_products(atoms, np.zeros((2, 8, 3)))
    assert selected_atoms(atoms, [-1]).tolist() == [8]


def test_partial_vibrations_match_ase(tmp_path) -> None:
    """FixAtoms: a partial analysis (the free atoms' block, unprojected) equals ASE's
    Vibrations (finite differences of the same calculator, same default indices)."""
    cluster = argon_cluster(7, seed=8)
    lj = LennardJones(epsilon=0.0104, sigma=3.4, r_max=8.5)
    cluster.calc = MLIPCalculator(lj)
    cluster.set_constraint(FixAtoms(indices=[0, 3, 5]))
    result = analyse_atoms(cluster)
    assert result.geometry == "partial" and result.num_modes == 12
    assert result.indices.tolist() == [1, 2, 4, 6]
    vib = Vibrations(cluster, delta=1e-3, nfree=4, name=str(tmp_path / "vib"))
    vib.run()
    data = vib.get_vibrations()
    assert data.get_indices().tolist() == [1, 2, 4, 6]
    np.testing.assert_allclose(result.hessian, data.get_hessian_2d(), atol=1e-6)

    def signed(frequencies: np.ndarray) -> np.ndarray:  # ASE: imaginary as i|nu|
        return np.sort(np.where(frequencies.imag > 0, -frequencies.imag, frequencies.real))

    assert result.imaginary.sum() == 2  # a rattled cluster: not a minimum
    np.testing.assert_allclose(result.frequencies, signed(data.get_frequencies()), atol=0.05)
    ours = result.to_vibrations_data(cluster)
    np.testing.assert_allclose(signed(ours.get_frequencies()), result.frequencies, rtol=1e-8)
    # explicit indices choose the atoms whatever the constraints
    explicit = analyse_atoms(cluster, indices=[2, 4])
    coords = np.r_[6:9, 12:15]
    block = MLIPCalculator(lj).get_hessian(cluster, indices=range(7))[coords][:, coords]
    direct = harmonic_analysis(
        block, cluster.get_masses()[[2, 4]], cluster.positions[[2, 4]], indices=[2, 4]
    )
    np.testing.assert_allclose(explicit.frequencies, direct.frequencies, rtol=1e-10)
