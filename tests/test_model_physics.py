"""Physics of the learned model beyond the model contract (float64).

The checks every energy model passes (E(3) equivariance, forces, Hessian and stress
against finite differences, batching, the cutoff) are in test_model_contract.py; here
are those particular to the learned model and its derivatives: permutations, cells
smaller than the cutoff, evaluation under no_grad, batched Hessian probes, edges in
pairs against the plain list.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import copper, ethanol, evaluate, small_model

from mlip import derivatives, keys
from mlip.data.graph import Structure, build_batch


@pytest.fixture(scope="module")
def model():
    return small_model()


def test_permutation(model):
    s = ethanol(2)
    perm = np.random.default_rng(0).permutation(s.num_atoms)
    permuted = Structure(s.atomic_numbers[perm], s.positions[perm])
    a, b = evaluate(model, [s]), evaluate(model, [permuted])
    assert torch.allclose(a[keys.ENERGY], b[keys.ENERGY], rtol=1e-12, atol=0)
    assert torch.allclose(a[keys.FORCES][perm], b[keys.FORCES], rtol=0, atol=1e-12)


def test_supercell_energy_is_extensive_small_cell(model):
    # The primitive fcc cell (2.55 A vectors) is far smaller than the 5 A cutoff:
    # every atom sees many images of itself.
    unit = copper(1, noise=0.0)
    energy_unit = float(evaluate(model, [unit])[keys.ENERGY])
    for size in (2, 3):
        supercell = copper(size, noise=0.0)
        energy = float(evaluate(model, [supercell])[keys.ENERGY])
        assert energy == pytest.approx(size**3 * energy_unit, rel=1e-11)


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


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_paired_edges_give_the_plain_results(model, mode):
    """Batches in pairs (keys.EDGES_PAIRED: radial weights computed once per pair, as in
    training and the calculator) and the same edges without the marker (as in MD and
    LAMMPS domains) give the same energies, forces, stress and Hessians; in train mode
    too, where the tangent features take their own path (Cu pairs lie below it)."""
    structures = [copper(1, seed=3), ethanol(5), copper(2, seed=4)]
    batch = build_batch(structures, model.r_max, labels=False)
    assert keys.EDGES_PAIRED in batch
    plain = {k: v for k, v in batch.items() if k != keys.EDGES_PAIRED}
    model.train(mode == "train")
    try:
        paired = derivatives.compute(model, batch, stress=True, hessian=True)
        unpaired = derivatives.compute(model, plain, stress=True, hessian=True)
    finally:
        model.eval()
    assert torch.allclose(paired[keys.ENERGY], unpaired[keys.ENERGY], rtol=1e-12, atol=0)
    cells = [0, 2]  # the stress of the molecule (no cell) is meaningless
    paired[keys.STRESS], unpaired[keys.STRESS] = (
        paired[keys.STRESS][cells],
        unpaired[keys.STRESS][cells],
    )
    for key in (keys.FORCES, keys.STRESS, keys.HESSIAN):
        assert paired[key].abs().max() > 0
        assert torch.allclose(paired[key], unpaired[key], rtol=0, atol=1e-10), key
