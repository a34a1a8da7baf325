"""``mlip learn``'s trainings: the final committee (from scratch, mlip train's recipe
under a time budget, the rattles above the MD energies and the MD outliers left out,
resume when its labels changed) and the rounds' committees (their defaults and
margins), with EMT on a 4-atom Cu cell."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path
from types import SimpleNamespace

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from support.learn import learn_args, rows

from mlip.cli import main
from mlip.data.formats import read_mlip
from mlip.learn import LearnConfig, Learner
from mlip.learn.select import (
    MD_ENERGY_QUANTILE,
    MD_OUTLIER_MIN_LABELS,
    below_md_energies,
    labels_digest,
    without_md_outliers,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_final_committee_is_trained_from_scratch_on_every_label(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = learn_args(tmp_path, out, "--budget", "8", "--final-energy-margin", "none")
    assert main([*base, "--final-epochs", "2"]) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["finished"] == "budget spent" and state["phase"] == "done"
    assert state["final"]["epochs"] == 2 and state["final"]["labels"] == 8
    final = out / "final" / "committee" / "model.pt"
    assert filecmp.cmp(final, out / "model.pt", shallow=False)
    last = out / "round_1" / "committee" / "model.pt"
    assert not filecmp.cmp(last, out / "model.pt", shallow=False)
    config = Learner(LearnConfig.from_dict(json.loads((out / "config.json").read_text()))
                     .replace(resume=True)).train_config(None)  # fmt: skip
    assert config.model.init_from is None and config.train.max_epochs == 2
    assert config.train.out == str(out / "final" / "committee")
    # a larger budget: the loop goes on and the final committee is trained again on 11
    assert main([*base, "--budget", "11", "--final-epochs", "2", "--resume"]) == 0
    state = json.loads((out / "state.json").read_text())
    assert [int(r["labels"]) for r in rows(out)] == [5, 8, 11]
    assert state["final"]["labels"] == 11
    assert filecmp.cmp(final, out / "model.pt", shallow=False)
    # without a final training, model.pt is the last round's committee again
    assert main([*base, "--budget", "11", "--resume"]) == 0
    assert "final" not in json.loads((out / "state.json").read_text())
    assert not final.exists()
    assert filecmp.cmp(out / "round_2" / "committee" / "model.pt", out / "model.pt", shallow=False)


def _energies(path: Path) -> list[float]:
    return sorted(s.energy for g in read_mlip(path) for s in g.structures)


def test_final_training_leaves_out_rattles_above_the_md_energies(tmp_path: Path) -> None:
    """With ``--final-energy-margin`` the final committee trains on the MD rounds' labels
    and those of round 0 at most the margin above the top of their energies; resumed with
    another margin, the final training is done again."""
    out = tmp_path / "run"
    wide = ("--budget", "8", "--final-epochs", "2", "--rattle-std", "0.2",
            "--rattle-max-std", "0.5")  # fmt: skip
    base = learn_args(tmp_path, out, *wide)
    assert main([*base, "--final-energy-margin", "0.1"]) == 0
    final = json.loads((out / "state.json").read_text())["final"]
    first = _energies(out / "round_0" / "labels.h5")
    later = _energies(out / "round_1" / "labels.h5")
    kept = [e for e in first if e <= np.quantile(later, MD_ENERGY_QUANTILE) + 0.1]
    assert final["energy_margin"] == 0.1
    assert 0 < final["left_out"] == len(first) - len(kept) < len(first)
    assert final["labels"] == len(kept) + len(later) < 8
    assert np.allclose(_energies(out / "final" / "data.h5"), sorted(kept + later))
    assert len(_energies(out / "data.h5")) == 8  # data.h5 keeps every label
    # resumed as it was: nothing to do
    assert main([*base, "--final-energy-margin", "0.1", "--resume"]) == 0
    assert json.loads((out / "state.json").read_text())["final"] == final
    # a run whose final training took other labels (an earlier rule), as many of them:
    # their digest differs, so it is trained again
    assert final["labels_digest"] == labels_digest(
        {g.name: g.structures for g in read_mlip(out / "final" / "data.h5")}
    )
    state = json.loads((out / "state.json").read_text())
    state["final"]["labels_digest"] = "0" * 64
    (out / "state.json").write_text(json.dumps(state))
    assert main([*base, "--final-energy-margin", "0.1", "--resume"]) == 0
    again = json.loads((out / "state.json").read_text())["final"]
    assert again["labels_digest"] == final["labels_digest"]
    assert again["labels"] == final["labels"] and again["wall_s"] != final["wall_s"]
    # a run of before the digest was kept: how many it left out decides
    state = json.loads((out / "state.json").read_text())
    del state["final"]["labels_digest"]
    (out / "state.json").write_text(json.dumps(state))
    assert main([*base, "--final-energy-margin", "0.1", "--resume"]) == 0
    kept = json.loads((out / "state.json").read_text())["final"]
    assert "labels_digest" not in kept and kept["wall_s"] == again["wall_s"]  # not redone
    state["final"]["left_out"] += 1
    (out / "state.json").write_text(json.dumps(state))
    assert main([*base, "--final-energy-margin", "0.1", "--resume"]) == 0
    again = json.loads((out / "state.json").read_text())["final"]
    assert again["left_out"] == final["left_out"] and again["wall_s"] != kept["wall_s"]
    # resumed without the margin: trained again, on every label
    assert main([*base, "--final-energy-margin", "none", "--resume"]) == 0
    final = json.loads((out / "state.json").read_text())["final"]
    assert final["left_out"] == 0 and final["labels"] == 8 and final["energy_margin"] is None


def test_one_high_md_label_does_not_let_every_rattle_back_in() -> None:
    """The top of the MD labels' energies is a quantile of them: one MD frame far up
    keeps the rattles below it out all the same."""
    md = [SimpleNamespace(energy=e) for e in [*np.linspace(0.0, 1.0, 39), 4.0]]
    rattles = [SimpleNamespace(energy=e) for e in (0.1, 0.5, 1.5, 3.0, 5.0)]
    kept, dropped = below_md_energies({"g": rattles}, {"g": md}, 0.0)
    assert [s.energy for s in kept["g"]] == [0.1, 0.5] and dropped == 3
    kept, dropped = below_md_energies({"g": rattles, "h": rattles}, {"g": md}, 2.5)
    assert [s.energy for s in kept["g"]] == [0.1, 0.5, 1.5, 3.0] and dropped == 1
    assert kept["h"] == rattles  # no MD labels of its own: every rattle kept


def test_md_labels_far_above_the_others_are_left_out() -> None:
    """An MD label more than three spreads (95th percentile less median) above the 95th
    percentile is left out, the highest of the ordinary ones is not; a group with too few
    MD labels to judge keeps all of them."""
    ordinary = [SimpleNamespace(energy=e) for e in np.linspace(0.0, 1.0, 40)]
    top, median = np.quantile(np.linspace(0.0, 1.0, 40).tolist() + [3.0, 4.0], [0.95, 0.5])
    assert 3.0 > top + 3 * (top - median)  # the two high ones are outliers by the rule
    far = [SimpleNamespace(energy=e) for e in (3.0, 4.0)]
    few = ordinary[: MD_OUTLIER_MIN_LABELS - 3] + far
    kept, dropped = without_md_outliers({"g": ordinary + far, "h": few, "i": ordinary})
    assert kept["g"] == ordinary and dropped == 2
    assert kept["h"] == few  # one label short of the minimum: all kept
    assert kept["i"] == ordinary  # nothing far up: nothing left out


def test_round_committees_leave_out_rattles_above_the_md_energies(tmp_path: Path) -> None:
    """With ``--committee-energy-margin`` round 1's committee trains on round 1's labels
    and those of round 0 at most the margin above the top of their energies; round 0's
    committee, whose MD has no labels to compare with, on every rattle."""
    out = tmp_path / "run"
    wide = ("--budget", "8", "--rattle-std", "0.2", "--rattle-max-std", "0.5",
            "--committee-energy-margin", "0.1")  # fmt: skip
    assert main(learn_args(tmp_path, out, *wide)) == 0
    first = _energies(out / "round_0" / "labels.h5")
    later = _energies(out / "round_1" / "labels.h5")
    kept = [e for e in first if e <= np.quantile(later, MD_ENERGY_QUANTILE) + 0.1]
    table = rows(out)
    assert int(table[0]["labels"]) == len(first) and not table[0]["left_out"]
    assert 0 < int(table[1]["left_out"]) == len(first) - len(kept) < len(first)
    assert table[1]["md_outliers"] == "0"
    assert int(table[1]["labels"]) == len(kept) + len(later) < 8
    assert np.allclose(_energies(out / "round_1" / "data.h5"), sorted(kept + later))
    assert len(_energies(out / "data.h5")) == 8  # data.h5 keeps every label


def test_round_training_defaults_and_overrides(tmp_path: Path) -> None:
    """A round trains with ROUND_TRAINING under the user's keys; a time budget alone
    drops the default epoch cap (it would end a --max-time run early), and the final
    training runs mlip train's recipe for final_time whatever a round's cap."""
    from mlip.learn.config import ROUND_TRAINING

    config = LearnConfig(("x.xyz",), "emt", str(tmp_path))
    assert config.training() == ROUND_TRAINING and config.final
    user = config.replace(train={"model.num_channels": 8, "train.max_time": 60.0})
    assert user.training() == {"model.num_channels": 8, "train.max_time": 60.0,
                               "data.batch_size": ROUND_TRAINING["data.batch_size"],
                               "model.repulsion": ROUND_TRAINING["model.repulsion"],
                               "model.inner_features": "bessel"}  # fmt: skip
    both = config.replace(train={"train.max_time": 60.0, "train.max_epochs": 5})
    assert both.training()["train.max_epochs"] == 5
    args = ["learn", "--start", "x.xyz", "--calculator", "emt", "--out", str(tmp_path)]
    import argparse

    from mlip.cli.learn import add_parser, config_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    typed = config_from_args(parser.parse_args([*args, "--max-time", "60"]))
    assert typed.training()["train.max_time"] == 60.0
    assert "train.max_epochs" not in typed.training()
    assert config_from_args(parser.parse_args(args)) == config  # the CLI's defaults are these


def test_final_training_is_mlip_trains_recipe_under_a_time_budget(tmp_path: Path) -> None:
    """The final training takes mlip train's defaults (not a round's small model), the
    user's training keys less a round's budget, and --final-time / --final-epochs as its
    own; either at 0 means no final training."""
    from mlip.learn.config import FINAL_TRAINING, ROUND_TRAINING
    from mlip.train.config import TrainConfig

    config = LearnConfig(("x.xyz",), "emt", str(tmp_path), final_time=120.0)
    budget = {"train.max_time": 120.0, "train.max_epochs": None}
    assert config.final_training() == {**FINAL_TRAINING, **budget}
    user = config.replace(train={"model.num_channels": 8, "train.max_epochs": 3,
                                 "train.max_time": 9.0, "data.batch_size": 2})  # fmt: skip
    assert user.final_training() == {"model.num_channels": 8, "data.batch_size": 2, **budget}
    seed = tmp_path / "cu4.xyz"
    ase.io.write(seed, bulk("Cu", "fcc", a=3.61, cubic=True))
    learner = Learner(config.replace(start=(str(seed),), out=str(tmp_path / "run"),
                                     final_epochs=7))  # fmt: skip
    learner.labels = lambda data=None: 20  # noqa: ARG005  (no labels are read)
    final, round_1 = learner.train_config(None), learner.train_config(1)
    default = TrainConfig()
    assert final.model.num_channels == default.model.num_channels  # the trainer's own rule
    assert final.model.repulsion == default.model.repulsion
    assert (final.train.max_time, final.train.max_epochs) == (120.0, 7)
    assert final.data.batch_size == FINAL_TRAINING["data.batch_size"]
    assert round_1.model.num_channels == ROUND_TRAINING["model.num_channels"]
    assert round_1.train.max_epochs == ROUND_TRAINING["train.max_epochs"]
    assert not config.replace(final_time=0.0).final and not config.replace(final_epochs=0).final
    with pytest.raises(ValueError, match="final_time must be >= 0"):
        config.replace(final_time=-1.0).check()
