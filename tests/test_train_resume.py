"""Trainer with a tiny pair model: exact resume, stop/restart, config mismatch, bad input."""

from __future__ import annotations

import csv
import os
import random
import warnings

import h5py
import numpy as np
import pytest
import torch
from support import ELEMENTS, PairModel, make_h5, quiet_run_config

from mlip.errors import CheckpointError, DataError
from mlip.train.trainer import Trainer


class Killed(Exception):
    """Stands for the process being killed."""


def config(h5, out, **overrides):
    values = {
        "data.train_size": 24,
        "data.valid_size": 8,
        "data.batch_size": 5,
        "train.max_epochs": 3,
        "loss.hessian_weight": 10.0,
        "optim.lr": 0.02,
        "optim.warmup_epochs": 0.5,
        "optim.scheduler": "cosine",
    }
    return quiet_run_config(h5, out, values, **overrides)


def record_losses(trainer):
    """Wrap train_step to record every step's loss."""
    losses = []
    step = trainer.train_step

    def wrapped(indices):
        losses.append(step(indices))
        return losses[-1]

    trainer.train_step = wrapped
    return losses


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    return make_h5(str(tmp_path_factory.mktemp("data") / "d.h5"), n_mol=30, n_cryst=10)


@pytest.fixture(scope="module")
def reference(h5, tmp_path_factory):
    """An uninterrupted 3-epoch run: per-step losses, final weights, metrics."""
    out = tmp_path_factory.mktemp("ref") / "run"
    trainer = Trainer(config(h5, out), model=PairModel(ELEMENTS))
    losses = record_losses(trainer)
    trainer.fit()
    return losses, trainer.model.weights.detach().clone(), trainer, out


def draw_global_streams():
    return torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random()  # noqa: NPY002


def read_rows(path):
    """metrics.csv without the wall-clock column."""
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(handle)]


def test_run_directory_contents(reference):
    losses, _, trainer, out = reference
    assert sorted(os.listdir(out)) == [
        "config.yaml",
        "last.ckpt",
        "metrics.csv",
        "model.pt",
        "split.json",
    ]
    rows = read_rows(out / "metrics.csv")
    assert [float(r["epoch"]) for r in rows] == [1.0, 2.0, 3.0]
    assert len(losses) == 3 * trainer.steps_per_epoch == 15
    assert float(rows[-1]["valid_loss"]) < float(rows[0]["valid_loss"])  # it learns
    best = torch.load(out / "model.pt", weights_only=False)
    assert isinstance(best, PairModel)


def test_resume_after_a_kill_reproduces_the_uninterrupted_run(h5, tmp_path, reference):
    ref_losses, ref_weights, _, ref_out = reference
    out = tmp_path / "run"

    draws = {}

    def kill_after_first_epoch(trainer, row):
        if row["epoch"] == 1.0:  # the checkpoint of epoch 1 is written before the callbacks
            draws["killed"] = draw_global_streams()
            raise Killed

    first = Trainer(config(h5, out), model=PairModel(ELEMENTS), callbacks=[kill_after_first_epoch])
    step = first.train_step
    first.train_step = lambda indices: (draw_global_streams(), step(indices))[1]  # as dropout would
    with pytest.raises(Killed):
        first.fit()
    resumed = Trainer(config(h5, out, **{"train.resume": True}), model=PairModel(ELEMENTS, seed=9))
    assert draw_global_streams() == draws["killed"]  # torch, numpy and python random restored
    losses = record_losses(resumed)
    resumed.fit()
    assert losses == ref_losses[5:]  # the same next losses, bit for bit
    assert torch.equal(resumed.model.weights.detach(), ref_weights)
    assert read_rows(out / "metrics.csv") == read_rows(ref_out / "metrics.csv")


def test_stop_in_the_middle_of_an_epoch_and_resume(h5, tmp_path, reference):
    """A signal mid-epoch checkpoints the position in the epoch; the resumed run goes on
    with the same data order and ends with the same weights."""
    ref_losses, ref_weights, _, _ = reference
    out = tmp_path / "run"
    trainer = Trainer(config(h5, out), model=PairModel(ELEMENTS))
    losses = record_losses(trainer)
    step = trainer.train_step

    def interrupt_at_step_7(indices):
        loss = step(indices)
        if trainer.step == 7:
            trainer._stop_signal = True  # what SIGINT/SIGTERM do
        return loss

    trainer.train_step = interrupt_at_step_7
    summary = trainer.fit()
    assert summary["stop_reason"] == "signal" and summary["epochs"] == pytest.approx(1.4)
    resumed = Trainer(config(h5, out, **{"train.resume": True}), model=PairModel(ELEMENTS))
    assert (resumed.epoch, resumed.batch_in_epoch) == (1, 2)
    more = record_losses(resumed)
    resumed.fit()
    assert losses + more == ref_losses
    assert torch.equal(resumed.model.weights.detach(), ref_weights)


def test_max_time_stops_cleanly_with_a_best_model(h5, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(
        config(h5, out, **{"train.max_time": 1e-3, "train.max_epochs": 50}),
        model=PairModel(ELEMENTS),
    )
    summary = trainer.fit()
    assert summary["stop_reason"] == "max_time" and summary["steps"] == 1
    assert os.path.exists(out / "model.pt") and os.path.exists(out / "last.ckpt")


def test_resume_refuses_another_config_and_corrupt_checkpoints(h5, tmp_path):
    out = tmp_path / "run"
    Trainer(config(h5, out, **{"train.max_epochs": 1}), model=PairModel(ELEMENTS)).fit()
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(config(h5, out), model=PairModel(ELEMENTS))
    with pytest.raises(CheckpointError, match=r"model.r_max: 5.0 -> 4.0"):
        Trainer(
            config(h5, out, **{"train.resume": True, "model.r_max": 4.0}), model=PairModel(ELEMENTS)
        )
    with pytest.raises(CheckpointError, match="data.train_size"):
        Trainer(
            config(h5, out, **{"train.resume": True, "data.train_size": 20}),
            model=PairModel(ELEMENTS),
        )
    with pytest.raises(CheckpointError, match="does not match this model"):
        Trainer(config(h5, out, **{"train.resume": True}), model=PairModel(ELEMENTS, 3.0, 4))
    # more epochs is a legitimate resume
    Trainer(
        config(h5, out, **{"train.resume": True, "train.max_epochs": 2}), model=PairModel(ELEMENTS)
    ).fit()
    with open(out / "last.ckpt", "r+b") as handle:
        handle.truncate(200)
    with pytest.raises(CheckpointError, match="last.ckpt: corrupt"):
        Trainer(config(h5, out, **{"train.resume": True}), model=PairModel(ELEMENTS))


def test_group_without_forces_is_an_error_or_a_warning(tmp_path):
    h5 = make_h5(str(tmp_path / "noforces.h5"), n_mol=20, forces=False)
    with pytest.raises(DataError, match=r"noforces.h5, group 'mol', field 'forces'"):
        Trainer(config(h5, tmp_path / "a", **{"data.train_size": 12}), model=PairModel(ELEMENTS))
    with pytest.warns(UserWarning, match="group 'mol' has no forces"):
        trainer = Trainer(
            config(
                h5,
                tmp_path / "b",
                **{"data.allow_missing_labels": True, "train.max_epochs": 1, "data.train_size": 12},
            ),
            model=PairModel(ELEMENTS),
        )
    row = {}
    trainer.callbacks.append(lambda t, r: row.update(r))
    trainer.fit()
    assert np.isfinite(row["valid_loss"]) and "valid_forces_mae" not in row


def test_nan_labels_and_empty_splits_are_clear_errors(tmp_path):
    h5 = make_h5(str(tmp_path / "nan.h5"), n_mol=20)
    with h5py.File(h5, "r+") as f:
        f["mol"]["energy"][7] = np.nan
    with pytest.raises(DataError, match=r"nan.h5, group 'mol', field 'energy', conformer 7"):
        Trainer(
            config(h5, tmp_path / "a", **{"data.train_size": 0.9, "data.valid_size": 2}),
            model=PairModel(ELEMENTS),
        )
    good = make_h5(str(tmp_path / "good.h5"), n_mol=20)
    with pytest.raises(ValueError, match="valid split is empty"):
        Trainer(
            config(good, tmp_path / "b", **{"data.train_size": 10, "data.valid_size": 0}),
            model=PairModel(ELEMENTS),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="exceeds the 20 conformers"):
            Trainer(
                config(good, tmp_path / "c", **{"data.train_size": 18}), model=PairModel(ELEMENTS)
            )


def test_valid_every_validates_every_nth_and_the_last_epoch_and_resumes_exactly(h5, tmp_path):
    """valid_every=2 over 3 epochs: validations (rows, model.pt) after epochs 2 and 3 only;
    a kill after epoch 1 (checkpointed, not validated) resumes to the same run, including
    the mean training loss of the epoch-2 row that spans the kill."""
    every = {"train.valid_every": 2}
    ref_out = tmp_path / "ref"
    rows = []
    reference = Trainer(
        config(h5, ref_out, **every),
        model=PairModel(ELEMENTS),
        callbacks=[lambda t, row: rows.append(row)],
    )
    ref_losses = record_losses(reference)
    reference.fit()
    assert [row["epoch"] for row in rows] == [2.0, 3.0]
    assert rows[0]["train_loss"] == pytest.approx(np.mean(ref_losses[:10]), rel=1e-12)

    out = tmp_path / "run"
    first = Trainer(config(h5, out, **every), model=PairModel(ELEMENTS))
    step = first.train_step

    def killed_at_epoch_2(indices):
        if first.step == first.steps_per_epoch:  # epoch 1 done and checkpointed
            raise Killed
        return step(indices)

    first.train_step = killed_at_epoch_2
    with pytest.raises(Killed):
        first.fit()
    assert not os.path.exists(out / "model.pt") and not os.path.exists(out / "metrics.csv")
    resumed = Trainer(config(h5, out, **every, **{"train.resume": True}), model=PairModel(ELEMENTS))
    assert (resumed.epoch, resumed.batch_in_epoch, len(resumed.pending_losses)) == (1, 0, 5)
    losses = record_losses(resumed)
    resumed.fit()
    assert losses == ref_losses[5:]
    assert torch.equal(resumed.model.weights.detach(), reference.model.weights.detach())
    assert read_rows(out / "metrics.csv") == read_rows(ref_out / "metrics.csv")


def test_a_time_stop_validates_even_between_validation_epochs(h5, tmp_path):
    out = tmp_path / "run"
    values = {"train.max_time": 1e-3, "train.max_epochs": 50, "train.valid_every": 10}
    summary = Trainer(config(h5, out, **values), model=PairModel(ELEMENTS)).fit()
    assert summary["stop_reason"] == "max_time" and np.isfinite(summary["best_loss"])
    assert os.path.exists(out / "model.pt") and len(read_rows(out / "metrics.csv")) == 1
    with pytest.raises(ValueError, match="train.valid_every must be > 0, got 0"):
        config(h5, out, **{"train.valid_every": 0})


def test_hessian_term_without_hessians_warns_only_when_asked_for(tmp_path):
    from mlip.data.hdf5 import H5Dataset
    from mlip.train.config import LossConfig
    from mlip.train.data import check_labels

    h5 = make_h5(str(tmp_path / "few.h5"), n_mol=10, hessian_every=100)  # only conformer 0
    dataset = H5Dataset([h5])
    without = np.arange(1, 10)
    default = LossConfig().hessian_weight
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default weight on data without Hessians: quiet
        check_labels(dataset, 1.0, default, without)
        check_labels(dataset, 1.0, 2 * default, np.arange(10))  # a Hessian in the split
    with pytest.warns(UserWarning, match="no training conformer carries a Hessian"):
        check_labels(dataset, 1.0, 2 * default, without)
    dataset.close()
