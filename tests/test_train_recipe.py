"""The default recipe: the budget decides the schedule, normalised loss terms, pressure
metrics, one-line CLI errors and nothing written for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support import ELEMENTS, PairModel, make_h5, quiet_run_config, small_model

from mlip import keys
from mlip.cli import main
from mlip.data.graph import build_batch
from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION
from mlip.derivatives import compute
from mlip.model import load_model
from mlip.train.config import TrainConfig
from mlip.train.metrics import EV_PER_A3_IN_GPA, ErrorStats, format_table
from mlip.train.trainer import Trainer


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    return make_h5(str(tmp_path_factory.mktemp("data") / "d.h5"), n_mol=30, n_cryst=10)


def trainer(h5, out, **values):
    base = {"data.train_size": 20, "data.valid_size": 6, "data.batch_size": 5,
            "loss.hessian_weight": 1.0, "train.tensorboard": False}  # fmt: skip
    return Trainer(quiet_run_config(h5, out, {**base, **values}), model=PairModel(ELEMENTS))


def test_defaults_have_no_budget_and_train_in_float32():
    run = TrainConfig().train
    assert run.max_epochs is None and run.max_time is None and run.dtype == "float32"
    assert TrainConfig().optim.scheduler == "auto" and TrainConfig().loss.normalize


def test_max_time_alone_has_no_epoch_cap(h5, tmp_path):
    """A time budget runs past any epoch count (here until stopped after 120 epochs,
    more than the 100 that used to cap every run), with the cosine schedule on time."""
    t = trainer(h5, tmp_path / "run", **{"train.max_time": 1e6, "train.valid_every": 40})

    def stop_after_120(trainer, row):
        if trainer.epoch >= 120:
            trainer._stop_signal = True

    t.callbacks.append(stop_after_120)
    summary = t.fit()
    assert summary["stop_reason"] == "signal" and summary["epochs"] >= 120
    assert t.schedule.kind == "cosine" and 0 < t.schedule.progress < 1e-3
    assert t.schedule.lr > 0.99 * t.config.optim.lr  # hardly any of the budget is used


def test_max_epochs_alone_runs_that_many_and_ends_the_cosine(h5, tmp_path):
    t = trainer(h5, tmp_path / "run", **{"train.max_epochs": 7})
    summary = t.fit()
    assert summary["stop_reason"] == "max_epochs" and summary["epochs"] == 7
    assert t.schedule.kind == "cosine" and t.schedule.progress == 1.0
    assert t.schedule.lr == pytest.approx(t.config.optim.min_lr)


def test_no_budget_stops_at_a_validation_plateau(h5, tmp_path):
    """Neither budget: plateau schedule, stop after ``patience`` validations without a new
    best; the count is part of the checkpoint."""
    t = trainer(h5, tmp_path / "run", **{"train.patience": 3, "train.valid_every": 1})
    assert t.schedule.kind == "plateau" and not t.has_budget
    t.validate = lambda indices=None: {"loss": 1.0}  # never improves after the first
    summary = t.fit()
    assert summary["stop_reason"] == "plateau" and summary["epochs"] == 4
    assert t.bad_validations == 3 and t.state_dict()["progress"]["bad_validations"] == 3


def test_small_training_sets_validate_every_few_epochs(h5, tmp_path):
    t = trainer(h5, tmp_path / "run", **{"train.valid_every": None})  # the default
    # 20 conformers, batch 5: 4 steps an epoch
    assert t.steps_per_epoch == 4 and t.valid_every == 25  # at least 100 steps apart
    explicit = trainer(h5, tmp_path / "b", **{"train.valid_every": 2})
    assert explicit.valid_every == 2


def test_normalised_weights_divide_by_the_label_scales(h5, tmp_path):
    """Each term is divided by the mean square of its training labels, so a weight of 1
    on forces and on stress makes a relative error count alike."""
    t = trainer(h5, tmp_path / "run", **{"loss.stress_weight": 2.0})
    scales, stats = t.loss_scales, t.statistics
    assert set(scales) == {"energy", "forces", "stress", "hessian"}
    assert scales["forces"] == stats.force_rms and scales["stress"] == stats.stress_rms
    assert t.loss.weights["forces"] == pytest.approx(1.0 / stats.force_rms**2)
    assert t.loss.weights["stress"] == pytest.approx(2.0 / stats.stress_rms**2)
    energy_weight = t.config.loss.energy_weight  # against the force RMS times 1 A
    assert t.loss.weights["energy"] == pytest.approx(energy_weight / stats.force_rms**2)
    assert t.loss.weights["energy"] / t.loss.weights["forces"] == pytest.approx(0.01)
    structures = t.source.get(t.split["train"])
    voigt = np.stack([s.stress for s in structures if s.stress is not None])
    rms = np.sqrt((np.square(voigt[:, :3]).sum() + 2 * np.square(voigt[:, 3:]).sum())
                  / (9 * len(voigt)))  # fmt: skip
    assert stats.stress_rms == pytest.approx(rms)
    raw = trainer(h5, tmp_path / "raw", **{"loss.normalize": False, "loss.stress_weight": 2.0})
    assert raw.loss.weights["stress"] == 2.0 and raw.loss.weights["forces"] == 1.0


def test_stress_metrics_report_each_component_and_the_pressure_bias():
    stats = ErrorStats()
    predicted = torch.zeros(2, 3, 3, dtype=torch.float64)
    reference = torch.zeros(2, 3, 3, dtype=torch.float64)
    predicted[:, 0, 0] = predicted[:, 1, 1] = predicted[:, 2, 2] = -0.01  # +0.01 eV/A^3 of P
    predicted[0, 0, 1] = predicted[0, 1, 0] = 0.003
    stats.add_stress(predicted, reference)
    m = stats.summary()
    assert m["pressure_bias"] == pytest.approx(0.01 * EV_PER_A3_IN_GPA)
    assert m["pressure_mae"] == pytest.approx(0.01 * EV_PER_A3_IN_GPA)
    assert m["stress_xx_mae"] == pytest.approx(10.0) and m["stress_xy_mae"] == pytest.approx(1.5)
    assert m["stress_yz_mae"] == 0.0
    assert m["stress_mae"] == pytest.approx(1000 * (6 * 0.01 + 2 * 0.003) / 18)
    table = format_table({"valid": m})
    assert "P MAE/RMSE/bias [GPa]" in table and "+1.6" in table
    assert "stress MAE per component" in table and "xy 1.5" in table


def test_energy_volume_slope_error_is_the_relative_error_of_the_pressure_response():
    def stats_of(reference_pressures, predicted_pressures) -> ErrorStats:
        stats = ErrorStats()
        eye = torch.eye(3, dtype=torch.float64)
        reference = -torch.tensor(reference_pressures, dtype=torch.float64)[:, None, None] * eye
        predicted = -torch.tensor(predicted_pressures, dtype=torch.float64)[:, None, None] * eye
        stats.add_stress(predicted, reference)
        return stats

    pressures = [0.01, -0.02, 0.05, 0.03]  # eV/A^3
    soft = stats_of(pressures, [0.9 * p + 0.004 for p in pressures]).summary()
    assert soft["pressure_slope_error"] == pytest.approx(-10.0)  # the offset is the bias
    assert soft["pressure_bias"] > 0
    assert stats_of(pressures, pressures).summary()["pressure_slope_error"] == pytest.approx(0.0)
    assert "pressure_slope_error" not in stats_of(pressures[:2], pressures[:2]).summary()
    assert "pressure_slope_error" not in stats_of([0.01] * 4, pressures).summary()
    table = format_table({"test": soft})
    assert "test: energy-volume slope dE/dV = -P against the reference's" in table
    assert "-10.00 %" in table

    class TwoRanks:  # all_reduce of two ranks holding the same sums
        enabled, device = True, "cpu"

        @staticmethod
        def all_reduce(buffer: torch.Tensor) -> None:
            buffer *= 2

    stats = stats_of(pressures, [0.9 * p for p in pressures]).reduce(TwoRanks())
    assert stats.summary()["pressure_slope_error"] == pytest.approx(-10.0)
    assert stats.summary()["pressure_count"] == 8


def test_validation_and_progress_report_the_pressure(h5, tmp_path):
    t = trainer(h5, tmp_path / "run", **{"train.max_epochs": 1})
    metrics = t.validate()
    assert math.isfinite(metrics["pressure_bias"]) and metrics["pressure_mae"] > 0
    from mlip.train.metrics import progress_postfix

    postfix = progress_postfix({f"valid_{k}": v for k, v in metrics.items()})
    assert {"E", "F", "S", "P", "Pbias"} <= set(postfix)


def test_cli_errors_are_one_line_and_leave_nothing_behind(tmp_path, capsys):
    import h5py

    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.attrs.update(format=FORMAT_NAME, version=FORMAT_VERSION)
        g = f.create_group("G")
        g["atomic_numbers"] = np.array([1, 1])
        g["positions"] = np.zeros((3, 2, 3)) + np.array([[0, 0, 0], [0, 0, 0.7]])
    out = tmp_path / "run"
    assert main(["train", "--data", str(bad), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (
        f"mlip train: error: {bad}, group 'G', field 'energy': required dataset is missing"
    )
    assert "Traceback" not in "\n".join(err) and len(err) == 2
    assert not out.exists()  # no half-made run directory
    with pytest.raises(ValueError, match="required dataset is missing"):
        main(["train", "--data", str(bad), "--out", str(out), "--debug"])
    assert main(["train", "--out", str(out)]) == 1
    assert "data.paths is empty" in capsys.readouterr().err


def test_stage_two_raises_the_energy_weight_and_tracks_the_best_anew(h5, tmp_path):
    """From half of a 4-epoch budget the energy weight is the stage-two one; the stage is
    in the checkpoint and a resumed trainer applies its weights."""
    values = {"train.max_epochs": 4, "loss.stage_two_start": 0.5,
              "loss.stage_two_energy_weight": 3.0}  # fmt: skip
    rows = []
    t = trainer(h5, tmp_path / "run", **values)
    t.callbacks.append(lambda trainer, row: rows.append((row["stage"], trainer.best_loss)))
    stage_one = t.loss.weights["energy"]
    t.fit()
    assert [stage for stage, _ in rows] == [1, 1, 2, 2]  # rows are written before a switch
    assert t.stage == 2
    assert t.loss.weights["energy"] == pytest.approx(stage_one * 300.0)  # 3.0 / 0.01
    resumed = trainer(h5, tmp_path / "run", **values, **{"train.resume": True})
    assert resumed.stage == 2 and resumed.loss.weights["energy"] == t.loss.weights["energy"]
    with pytest.raises(ValueError, match="stage_two_start must be in"):
        trainer(h5, tmp_path / "bad", **{"loss.stage_two_start": 1.5})


def test_hessian_every_k_steps_probes_only_those_steps(h5, tmp_path):
    t = trainer(h5, tmp_path / "run", **{"loss.hessian_every": 3, "train.max_epochs": 1})
    indices = t.split["train"][:10]
    probed = []
    for step in range(6):
        probed.append(any(p for _, _, p in t.batch_loss.partition(indices, True, step)))
    assert probed == [True, False, False, True, False, False]
    assert any(p for _, _, p in t.batch_loss.partition(indices, False, 1))  # validation


def test_batches_hold_only_hessian_or_only_plain_conformers(h5, tmp_path):
    """With the Hessian term on, an epoch's batches are homogeneous in the Hessian label
    (one mixed batch at most) and still cover every training conformer once."""
    t = trainer(h5, tmp_path / "run", **{"data.batch_size": 3})
    train = t.split["train"]
    mask = t.dataset.hessian_mask
    assert 0 < mask[train].sum() < len(train)  # a mixed training set
    for _ in range(3):
        order = t._epoch_order(train)
        assert sorted(order.tolist()) == sorted(train.tolist())
        batches = [order[i : i + 3] for i in range(0, len(order), 3)]
        mixed = [b for b in batches if 0 < mask[b].sum() < len(b)]
        assert len(mixed) <= 1
    plain = trainer(h5, tmp_path / "plain", **{"loss.hessian_weight": 0.0})
    order = plain._epoch_order(train)
    batches = [order[i : i + 5] for i in range(0, len(order), 5)]
    assert any(0 < mask[b].sum() < len(b) for b in batches) or mask[train].sum() <= 1


def test_refit_removes_a_common_energy_offset_and_leaves_forces(h5, tmp_path):
    """The final E0 refit takes out a per-atom energy offset of the best model (here one
    put in by hand), changes no force, and model.pt holds the refit E0."""
    base = {"data.train_size": 20, "data.valid_size": 6, "data.batch_size": 5,
            "train.max_epochs": 2, "train.tensorboard": False}  # fmt: skip
    t = Trainer(quiet_run_config(h5, tmp_path / "run", base), model=small_model(ELEMENTS))
    summary = t.fit()  # refits at the end (the default)
    assert set(summary["atomic_energy_shifts"]) == set(ELEMENTS)
    assert all(abs(d) < 1e-9 for d in t.refit_atomic_energies().values())  # idempotent
    fitted = t.best_state["atomic_energies"].clone()
    t.best_state["atomic_energies"] = fitted + 0.05  # +50 meV on every atom
    t.refit_atomic_energies()
    # the same training energies as before the offset (E0 per element may differ where
    # the compositions do not determine them)
    counts = np.array(
        [[np.sum(s.atomic_numbers == z) for z in t.model.atomic_numbers]
         for s in t.source.get(t.split["train"])], dtype=np.float64,
    )  # fmt: skip
    change = (t.best_state["atomic_energies"] - fitted).numpy()
    assert np.abs(counts @ change).max() < 1e-8
    t.best_state["atomic_energies"] = fitted
    t._save_best_model()
    saved = load_model(str(tmp_path / "run" / "model.pt"))
    assert torch.allclose(saved.atomic_energies.double(), fitted.double(), atol=1e-8)
    structures = t.source.get(t.split["valid"][:4])
    batch = build_batch(structures, saved.r_max, torch.float64, "cpu")
    moved = t.best_model().double()
    moved.atomic_energies += 0.05
    a, b = compute(saved, batch), compute(moved, batch)
    n = batch[keys.NUM_ATOMS].double()
    assert torch.allclose(b[keys.ENERGY] - a[keys.ENERGY], 0.05 * n, atol=1e-8)
    assert torch.allclose(a[keys.FORCES], b[keys.FORCES], atol=1e-10)
