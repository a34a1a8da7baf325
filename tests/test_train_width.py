"""The trainer's choice of width (``model.num_channels: null``) from the measured cost of
a step and the time budget (mlip.train.recipe)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from support import make_h5, quiet_run_config

from mlip.data.hdf5 import H5Dataset
from mlip.train import recipe
from mlip.train.committee import CommitteeConfig, train_committee
from mlip.train.data import StructureSource
from mlip.train.trainer import Trainer

SMALL = {"model.num_layers": 1, "model.l_max": 1, "model.hidden_l_max": 0,
         "model.radial_hidden": 8, "model.readout_hidden": 4, "data.train_size": 16,
         "data.valid_size": 4, "data.batch_size": 4, "loss.hessian_weight": 0.0}  # fmt: skip


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    return make_h5(str(tmp_path_factory.mktemp("data") / "d.h5"), n_mol=16, n_cryst=8)


@pytest.fixture
def fake_cost(monkeypatch):
    """time_step replaced by a cost of ``per_channel`` s per channel; records the widths."""
    calls: list[int] = []

    def cost(config, width, *args, **kwargs):
        calls.append(width)
        return width * 1e-4

    monkeypatch.setattr(recipe, "time_step", cost)
    return calls


def saved_width(out) -> int:
    with open(out / "config.yaml") as handle:
        return yaml.safe_load(handle)["model"]["num_channels"]


@pytest.mark.parametrize(
    ("per_step_budget", "width", "timed"),
    [
        (0.0096, 64, [64]),  # 64 channels: 0.0064 s a step, 1.5 x MIN_STEPS steps
        (0.005, 32, [64, 32]),  # 64: 0.78 x MIN_STEPS; 32: 1.56 x
        (0.001, 16, [64, 32, 16]),  # none reaches MIN_STEPS: the narrowest
    ],
)
def test_width_is_the_widest_that_buys_enough_steps(
    h5, tmp_path, fake_cost, per_step_budget, width, timed
):
    out = tmp_path / "run"
    budget = per_step_budget * recipe.MIN_STEPS  # seconds
    trainer = Trainer(quiet_run_config(h5, out, {**SMALL, "train.max_time": budget}))
    assert fake_cost == timed  # widest first, stopping at the first that suffices
    assert trainer.model.config.num_channels == width == saved_width(out)
    assert trainer.width_choice.width == width and str(width) in trainer.width_choice.describe()


def test_no_time_budget_gives_the_default_width(h5, tmp_path, fake_cost):
    out = tmp_path / "run"
    trainer = Trainer(quiet_run_config(h5, out, {**SMALL, "train.max_epochs": 1}))
    assert fake_cost == [] and trainer.model.config.num_channels == recipe.DEFAULT_WIDTH
    assert saved_width(out) == recipe.DEFAULT_WIDTH


def test_a_given_width_is_kept(h5, tmp_path, fake_cost):
    values = {**SMALL, "train.max_time": 1.0, "model.num_channels": 8}  # would be 16
    trainer = Trainer(quiet_run_config(h5, tmp_path / "run", values))
    assert fake_cost == [] and trainer.model.config.num_channels == 8


def test_resume_keeps_the_chosen_width(h5, tmp_path, fake_cost, monkeypatch):
    """The width is chosen once: a resumed run reads it from the run's config.yaml and
    does not time again (here the cost changes in between and would choose otherwise)."""
    from mlip.cli import main

    out = tmp_path / "run"
    args = ["train", "--data", h5, "--train-size", "16", "--valid-size", "4", "--batch-size",
            "4", "--num-layers", "1", "--l-max", "1", "--hidden-l-max", "0",
            "--hessian-weight", "0", "--max-time", str(0.0096 * recipe.MIN_STEPS),
            "--max-epochs", "1", "--out",
            str(out), "--no-progress", "--no-eval"]  # fmt: skip
    assert main(args) == 0 and saved_width(out) == 64
    monkeypatch.setattr(recipe, "time_step", lambda *a, **k: 1.0)  # would choose 16 now
    assert main([*args[:-4], "--max-epochs", "2", "--out", str(out), "--resume",
                 "--no-progress", "--no-eval"]) == 0  # fmt: skip
    assert saved_width(out) == 64 and fake_cost == [64]


def test_committee_members_share_one_width(h5, tmp_path, fake_cost):
    out = tmp_path / "committee"
    budget = 0.0096 * recipe.MIN_STEPS  # 64 channels
    config = quiet_run_config(h5, out, {**SMALL, "train.max_time": budget, "train.max_epochs": 1})
    result = train_committee(config, CommitteeConfig(size=2))
    assert fake_cost == [64]  # timed once, not once per member
    from mlip.model import load_model

    committee = load_model(out / "model.pt")
    assert [m.config.num_channels for m in committee.members] == [64, 64]
    assert len(result["members"]) == 2 and saved_width(out) == 64


def test_a_step_is_timed_on_real_batches(h5):
    """The real timing: a positive number of seconds for a small model on the data."""
    config = quiet_run_config(h5, "unused", SMALL)
    dataset = H5Dataset([h5])
    source = StructureSource(dataset)
    batches = [source.get(np.arange(k, k + 4)) for k in (0, 4, 8)]
    seconds = recipe.time_step(config, 4, dataset.elements, batches, *_cpu())
    assert np.isfinite(seconds) and seconds > 0


def _cpu():
    import torch

    return torch.device("cpu"), torch.float32
