"""One training step: Hessian/non-Hessian sub-batches equal the whole batch (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import ELEMENTS, PairModel, make_h5, quiet_run_config

from mlip import keys
from mlip.data.graph import build_batch
from mlip.loss import predict
from mlip.train.trainer import VALID_PROBE_SEED, Trainer


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    # every 3rd conformer carries a Hessian; 'cryst' is periodic with stress labels
    return make_h5(str(tmp_path_factory.mktemp("data") / "d.h5"), n_mol=18, n_cryst=9)


def make_trainer(h5, out, **overrides):
    values = {
        "data.train_size": 18,
        "data.valid_size": 9,
        "data.batch_size": 6,
        "data.valid_batch_size": 9,
        "loss.hessian_weight": 10.0,
        "loss.stress_weight": 5.0,
        "loss.hessian_probes": 2,
        # random probes exist for every conformer, so the whole batch can be probed as
        # the reference of the sub-batch path (mode probes need a reference Hessian)
        "loss.probe_kind": "gaussian",
        "train.max_epochs": 1,
        "train.tensorboard": False,
        "train.device": "cpu",
    }
    config = quiet_run_config(h5, out, values, **overrides)
    return Trainer(config, model=PairModel(ELEMENTS, seed=4))


def whole_batch_loss(trainer, indices, seed, training=True):
    """The loss of ``indices`` as one batch, with probes on every conformer (the old path)."""
    batch = build_batch(trainer.source.get(indices), trainer.r_max, torch.float64)
    probes = trainer.probes.probes(batch[keys.NUM_ATOMS].tolist(), indices, seed)
    pred = predict(trainer.model, batch, stress=True, probes=probes, training=training)
    return trainer.loss(pred, batch, probes)


def mixed_indices(trainer):
    """Training conformers: 2 with a Hessian, 4 without, molecules and crystals."""
    train = trainer.split["train"]
    mask = trainer.dataset.hessian_mask[train]
    chosen = np.concatenate([train[mask][:2], train[~mask][:4]])
    assert trainer.dataset.hessian_mask[chosen].sum() == 2
    assert len({trainer.dataset.group_of(int(i)).name for i in chosen}) == 2  # both groups
    return np.random.default_rng(0).permutation(chosen)


def test_sub_batches_give_the_loss_and_gradients_of_the_whole_batch(h5, tmp_path):
    trainer = make_trainer(h5, tmp_path / "run")
    indices = mixed_indices(trainer)
    seed = 12345
    reference = whole_batch_loss(trainer, indices, seed)
    ref_grads = torch.autograd.grad(reference, trainer.params)

    parts, sums, counts = trainer.batch_loss(indices, seed, training=True)
    loss = trainer.loss.combine(sums, counts)
    grads = torch.autograd.grad(loss, trainer.params)

    assert float(reference.detach()) > 0
    assert all(float(counts[t]) > 0 for t in trainer.active_terms)
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-12)
    for g, r in zip(grads, ref_grads, strict=True):
        assert r.abs().max() > 0
        torch.testing.assert_close(g, r, rtol=1e-11, atol=1e-14)
    # the probes only go to the sub-batch of conformers with a Hessian
    (plain, _, no_probes), (hessian, pred, probes) = parts
    assert no_probes is None and not plain[keys.HAS_HESSIAN].any()
    assert bool(hessian[keys.HAS_HESSIAN].all()) and len(hessian[keys.NUM_ATOMS]) == 2
    assert probes.shape == (2, hessian[keys.POSITIONS].shape[0], 3)
    assert keys.HESSIAN_PROBED in pred


def test_validation_on_sub_batches_equals_the_whole_batch_loss(h5, tmp_path):
    trainer = make_trainer(h5, tmp_path / "run", **{"optim.ema_decay": 0.0})
    valid = trainer.split["valid"]
    assert 0 < trainer.dataset.hessian_mask[valid].sum() < len(valid)  # a mixed batch
    metrics = trainer.validate()
    reference = whole_batch_loss(trainer, valid, VALID_PROBE_SEED, training=False)
    assert metrics["loss"] == pytest.approx(float(reference), rel=1e-12)
    assert metrics["hvp_count"] == 3 * 2 * sum(  # K=2 probes x 3 N_s over Hessian conformers
        trainer.dataset.group_of(int(i)).num_atoms
        for i in valid[trainer.dataset.hessian_mask[valid]]
    )


def test_without_a_hessian_term_the_batch_is_not_split_nor_probed(h5, tmp_path):
    trainer = make_trainer(h5, tmp_path / "run", **{"loss.hessian_weight": 0.0})
    indices = mixed_indices(trainer)
    parts, _, _ = trainer.batch_loss(indices, 1, training=True)
    assert len(parts) == 1 and parts[0][2] is None
    assert keys.HESSIAN_PROBED not in parts[0][1]
    metrics = trainer.validate()  # no Hessian-vector products in validation either
    assert "hvp_mae" not in metrics and metrics["forces_mae"] > 0


def test_energy_only_training_computes_no_forces(h5, tmp_path, monkeypatch):
    """forces_weight 0 and no Hessian/stress term: the step evaluates the energy alone (no
    autograd.grad, i.e. no create_graph pass), with the gradient of the energy loss."""
    weights = {"loss.forces_weight": 0.0, "loss.hessian_weight": 0.0, "loss.stress_weight": 0.0}
    trainer = make_trainer(h5, tmp_path / "run", **weights)
    indices = mixed_indices(trainer)
    calls = []
    grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls.append(kwargs.get("create_graph", False))
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    parts, sums, counts = trainer.batch_loss(indices, 1, training=True)
    assert calls == [] and keys.FORCES not in parts[0][1]
    loss = trainer.loss.combine(sums, counts)
    (got,) = grad(loss, [trainer.model.weights])
    # the loss and gradient of the energy term evaluated with forces, by hand
    batch = build_batch(trainer.source.get(indices), trainer.r_max, torch.float64)
    pred = predict(trainer.model, batch, forces=True)
    per_atom = (pred[keys.ENERGY] - batch[keys.ENERGY]) / batch[keys.NUM_ATOMS]
    expected = trainer.loss.weights["energy"] * per_atom.square().mean()
    (reference,) = grad(expected, [trainer.model.weights])
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    torch.testing.assert_close(got, reference, rtol=1e-12, atol=0)
    # a real step trains, and validation still reports force errors
    calls.clear()
    trainer.train_step(indices)
    assert calls == []
    metrics = trainer.validate()
    assert metrics["forces_mae"] > 0 and metrics["energy_mae"] > 0
    # with a force term the step differentiates, keeping the graph for the force loss
    forced = make_trainer(h5, tmp_path / "forces", **{**weights, "loss.forces_weight": 1.0})
    calls.clear()
    forced.batch_loss(indices, 1, training=True)
    assert calls == [True]


def test_mode_probes_train(h5, tmp_path):
    """probe_kind 'modes' reaches the sampler with the structures; training runs."""
    trainer = make_trainer(h5, tmp_path / "modes", **{"loss.probe_kind": "modes"})
    indices = mixed_indices(trainer)
    loss = trainer.train_step(indices)
    assert np.isfinite(loss) and trainer.probes._modes, "no mode probes were built"
