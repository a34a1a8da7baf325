"""Physics of the learned model beyond the model contract (float64).

The checks every energy model passes (E(3) equivariance, forces, Hessian and stress
against finite differences, batching, the cutoff) are in test_model_contract.py; here
are those particular to the learned model and its derivatives: permutations, cells
smaller than the cutoff, evaluation under no_grad, batched Hessian probes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import copper, ethanol, evaluate, small_model

from mlip import keys
from mlip.data.graph import Structure


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
