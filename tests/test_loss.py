"""The Sobolev loss: label masks, the Hessian probe term, Huber, gradients (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import ELEMENTS, PairModel, crystals, label, molecules, teacher

from mlip import keys
from mlip.data.graph import build_batch
from mlip.derivatives import compute, split_hessian
from mlip.loss import ProbeSampler, SobolevLoss, mode_probes, predict, reference_hvp


def labelled(n, hessian, forces=None, kind=molecules):
    structures = kind(n)
    label(teacher(), structures, np.asarray(hessian, dtype=bool))
    for s, keep in zip(structures, forces if forces is not None else [True] * n, strict=True):
        if not keep:
            s.forces = None
    return structures


def student():
    model = PairModel(ELEMENTS, seed=7).double()
    model.set_atomic_energies({1: -13.0, 6: -1030.0, 8: -2040.0})  # the teacher's
    return model


def test_masks_exclude_unlabelled_structures_and_match_numpy():
    """A batch mixing structures with/without forces and Hessians: each term only counts
    the labelled ones (changing the others' labels leaves the loss unchanged), and the
    terms equal the per-structure residuals computed by hand."""
    structures = labelled(4, [True, False, True, False], forces=[True, True, False, False])
    model = student()
    batch = build_batch(structures, model.r_max)
    probes = ProbeSampler(2, seed=3).probes([5] * 4, [0, 1, 2, 3], 11)
    pred = predict(model, batch, probes=probes)
    loss_fn = SobolevLoss(1.0, 100.0, 50.0, 0.0)
    loss = loss_fn(pred, batch, probes).detach()

    e = pred[keys.ENERGY].detach().numpy()
    f = pred[keys.FORCES].detach().numpy().reshape(4, 5, 3)
    energy_term = np.mean([((e[k] - s.energy) / 5) ** 2 for k, s in enumerate(structures)])
    force_term = np.mean((f[:2] - np.stack([s.forces for s in structures[:2]])) ** 2)
    full = split_hessian(compute(model, batch, hessian=True)[keys.HESSIAN], batch[keys.NUM_ATOMS])
    v = probes.numpy().reshape(2, 4, 15)
    hess_res = [(full[k].numpy() - structures[k].hessian) @ v[:, k].T for k in (0, 2)]
    hessian_term = np.mean(np.square(hess_res))
    expected = energy_term + 100 * force_term + 50 * hessian_term
    assert float(loss) == pytest.approx(expected, rel=1e-10)

    # garbage labels on the unlabelled structures (masked out) do not change the loss
    batch2 = dict(batch)
    batch2[keys.FORCES] = batch[keys.FORCES].clone()
    batch2[keys.FORCES][10:] = 1e3  # atoms of structures 2 and 3 (no forces)
    batch2[keys.HESSIAN] = batch[keys.HESSIAN].clone()
    batch2[keys.HESSIAN][225:450] = 1e3  # block of structure 1 (no Hessian)
    assert float(loss_fn(pred, batch2, probes).detach()) == pytest.approx(float(loss), rel=1e-12)
    # ... while on a labelled one they do
    batch2[keys.FORCES][:5] += 0.1
    assert float(loss_fn(pred, batch2, probes).detach()) != pytest.approx(float(loss), rel=1e-3)


def test_probe_term_equals_projected_full_hessian_term():
    """With probes v, the probe term is mean ((H_model - H_ref) v)^2 with the exact model
    Hessian; with all 3N coordinate rows as probes it is the mean squared element error."""
    structures = labelled(2, [True, True])
    model = student()
    batch = build_batch(structures, model.r_max)
    full = split_hessian(compute(model, batch, hessian=True)[keys.HESSIAN], batch[keys.NUM_ATOMS])
    delta = [full[k].numpy() - structures[k].hessian for k in range(2)]
    loss_fn = SobolevLoss(0.0, 0.0, 1.0, 0.0)

    probes = ProbeSampler(3, seed=5).probes([5, 5], [0, 1], 99)
    pred = predict(model, batch, probes=probes)
    v = probes.numpy().reshape(3, 2, 15)
    projected = np.mean(np.square([d @ v[:, k].T for k, d in enumerate(delta)]))
    assert float(loss_fn(pred, batch, probes).detach()) == pytest.approx(projected, rel=1e-10)

    rows = torch.eye(15, dtype=torch.float64).reshape(15, 5, 3).repeat(1, 2, 1)  # (15, 10, 3)
    pred = predict(model, batch, probes=rows)
    mean_sq_elements = np.mean(np.square(delta))
    assert float(loss_fn(pred, batch, rows).detach()) == pytest.approx(mean_sq_elements, rel=1e-10)


def test_gaussian_probes_estimate_the_full_hessian_error_without_bias():
    """E[v v^T] = I/(3N) for random unit v: many probes average to the element-wise MSE."""
    structures = labelled(1, [True])
    model = student()
    batch = build_batch(structures, model.r_max)
    delta = (
        split_hessian(compute(model, batch, hessian=True)[keys.HESSIAN], batch[keys.NUM_ATOMS])[
            0
        ].numpy()
        - structures[0].hessian
    )
    probes = ProbeSampler(400, seed=1).probes([5], [0], 3)
    pred = predict(model, batch, probes=probes, training=False)
    estimate = float(SobolevLoss(0.0, 0.0, 1.0, 0.0)(pred, batch, probes))
    assert estimate == pytest.approx(np.mean(delta**2), rel=0.2)
    assert estimate != pytest.approx(np.mean(delta**2), rel=1e-6)  # it is an estimate


def test_hvp_of_predict_matches_reference_hvp_of_exact_blocks_with_stress():
    """predict's H v (with the strain graph of the stress) equals the exact blocks' H v."""
    structures = labelled(2, [True, True], kind=crystals)
    model = student()
    batch = build_batch(structures, model.r_max)
    probes = ProbeSampler(2, seed=2).probes([4, 4], [0, 1], 5)
    pred = predict(model, batch, stress=True, probes=probes, training=False)
    exact = compute(model, batch, hessian=True)[keys.HESSIAN]
    ref = reference_hvp(exact, batch[keys.NUM_ATOMS], torch.tensor([True, True]), probes)
    assert torch.allclose(pred[keys.HESSIAN_PROBED], ref, rtol=1e-9, atol=1e-11)
    assert keys.STRESS in pred and pred[keys.STRESS].abs().max() > 0


def test_stress_term_only_over_structures_with_stress():
    crys = labelled(2, [False, False], kind=crystals)
    crys[1].stress = None
    model = student()
    batch = build_batch(crys, model.r_max)
    pred = predict(model, batch, stress=True)
    loss = SobolevLoss(0.0, 0.0, 0.0, 1.0)(pred, batch)
    sigma = pred[keys.STRESS][0].detach().numpy()
    from mlip.data.graph import voigt_to_matrix

    assert float(loss.detach()) == pytest.approx(
        np.mean((sigma - voigt_to_matrix(crys[0].stress)) ** 2)
    )


def test_loss_gradient_through_the_hessian_term_matches_finite_differences():
    """Double backprop: d(loss)/d(weights) of the Hessian term by autograd vs central FD."""
    structures = labelled(2, [True, True])
    model = student()
    batch = build_batch(structures, model.r_max)
    probes = ProbeSampler(2, seed=4).probes([5, 5], [0, 1], 8)
    loss_fn = SobolevLoss(1.0, 10.0, 1.0, 0.0)
    loss = loss_fn(predict(model, batch, probes=probes), batch, probes)
    (grad,) = torch.autograd.grad(loss, model.weights)
    assert grad.abs().max() > 0
    h = 1e-6
    for index in [(0, 1, 2), (1, 2, 0), (2, 2, 5)]:
        with torch.no_grad():
            model.weights[index] += h
        up = float(loss_fn(predict(model, batch, probes=probes, training=False), batch, probes))
        with torch.no_grad():
            model.weights[index] -= 2 * h
        down = float(loss_fn(predict(model, batch, probes=probes, training=False), batch, probes))
        with torch.no_grad():
            model.weights[index] += h
        assert float(grad[index]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_huber_is_quadratic_inside_and_linear_outside():
    structures = labelled(2, [False, False])
    model = student()
    batch = build_batch(structures, model.r_max)
    pred = predict(model, batch, training=False)
    residual = (pred[keys.FORCES] - batch[keys.FORCES]).abs()
    big = float(residual.max()) * 2
    squared = float(SobolevLoss(0, 1, 0, 0)(pred, batch))
    assert float(SobolevLoss(0, 1, 0, 0, huber_delta=big)(pred, batch)) == pytest.approx(squared)
    delta = float(residual.median())
    r = residual.numpy()
    expected = np.mean(np.where(r <= delta, r**2, 2 * delta * r - delta**2))
    assert float(SobolevLoss(0, 1, 0, 0, huber_delta=delta)(pred, batch)) == pytest.approx(expected)


def test_probe_sampler_is_seeded_unit_and_independent_of_batch_composition():
    sampler = ProbeSampler(3, seed=0)
    seed = sampler.next_seed()
    assert seed != sampler.next_seed()  # fresh probes each step
    both = sampler.probes([5, 4], [10, 20], seed)
    alone = sampler.probes([4], [20], seed)
    assert torch.equal(both[:, 5:], alone)  # a system's probes do not depend on its batch
    norms = both[:, :5].reshape(3, -1).norm(dim=1)
    assert torch.allclose(norms, torch.ones(3, dtype=torch.float64))
    rows = ProbeSampler(2, kind="onehot").probes([3], [1], seed)
    assert torch.equal(rows.reshape(2, -1).sum(1), torch.ones(2, dtype=torch.float64))
    assert set(rows.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="probe_kind must be one of"):
        ProbeSampler(1, kind="sobol")
    with pytest.raises(ValueError, match="forces_weight must be >= 0"):
        SobolevLoss(forces_weight=-1.0)
    with pytest.raises(ValueError, match="all loss weights are 0"):
        SobolevLoss(0.0, 0.0, 0.0, 0.0)


def test_mode_probes_weigh_every_vibration_alike():
    """'modes' probes: 3N-6 mass-weighted normal modes, unit reference response, no
    centre-of-mass motion; a model Hessian (1 + d) H_ref errs by d along every mode."""
    from ase.data import atomic_masses

    (structure,) = labelled(1, [True])
    n = len(structure.atomic_numbers)
    probes = mode_probes(structure)
    assert probes.shape == (3 * n - 6, 3 * n)
    hessian = structure.hessian
    response = np.linalg.norm(probes @ hessian.T, axis=1)
    soft = response < 1.0 - 1e-9  # only where |H w| fell below the floor
    np.testing.assert_allclose(response[~soft], 1.0, rtol=1e-10)
    masses = atomic_masses[structure.atomic_numbers]
    com_motion = (probes.reshape(-1, n, 3) * masses[None, :, None]).sum(1)
    np.testing.assert_allclose(com_motion, 0.0, atol=1e-8)
    # relative errors: stiff and soft modes count alike, unlike unit gaussian probes
    scaled = 1.1 * hessian
    errors = np.linalg.norm(probes @ (scaled - hessian).T, axis=1)
    np.testing.assert_allclose(errors[~soft], 0.1, rtol=1e-8)
    rng = np.random.default_rng(0)
    gaussian = rng.standard_normal((50, 3 * n))
    gaussian /= np.linalg.norm(gaussian, axis=1, keepdims=True)
    assert np.ptp(np.linalg.norm(gaussian @ (scaled - hessian).T, axis=1)) > 0.05


def test_probe_sampler_modes_uses_reference_hessians():
    structures = labelled(3, [True, False, True])
    sampler = ProbeSampler(2, kind="modes", seed=0)
    seed = sampler.next_seed()
    n = len(structures[0].atomic_numbers)
    probes = sampler.probes([n] * 3, [4, 5, 6], seed, structures=structures)
    rows = mode_probes(structures[0])
    for k in range(2):  # each probe of system 0 is one of its mode probes
        v = probes[k, :n].reshape(-1).numpy()
        assert np.abs(rows - v).max(axis=1).min() < 1e-12
    unit = probes[:, n : 2 * n].reshape(2, -1).norm(dim=1)  # no Hessian: gaussian
    torch.testing.assert_close(unit, torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="needs the structures"):
        sampler.probes([n], [4], seed)
