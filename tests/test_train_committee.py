"""``mlip train --committee K``: K members on one split, one committee file, eval with
calibration, resume; ``mlip eval`` of a committee. Tiny model, one epoch per member."""

from __future__ import annotations

import json
import os

import pytest
import torch
from support import ethanol, evaluate

from mlip import keys
from mlip.cli import main
from mlip.committee import is_committee
from mlip.model import load_model
from mlip.train.split import load_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "datasets", "ethanol_small.h5")
TINY = ["--num-channels", "4", "--num-layers", "1", "--l-max", "1", "--num-radial", "4",
        "--r-max", "4"]  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


def committee_args(out, *extra):
    return ["train", "--data", DATA, "--group", "ethanol", "--train-size", "12",
            "--valid-size", "4", "--test-size", "6", "--batch-size", "6", "--max-epochs", "1",
            "--hessian-weight", "0", "--out", str(out), "--no-progress", *TINY, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("committee") / "run"
    assert main(committee_args(out, "--committee", "2", "--bootstrap", "--seed", "5")) == 0
    return out


def test_committee_file_and_members(run) -> None:
    model = load_model(run / "model.pt")
    assert is_committee(model) and model.num_members == 2
    s = ethanol(1)
    together = evaluate(model, [s])
    for k in range(2):
        member = load_model(run / f"member_{k}" / "model.pt")
        alone = evaluate(member, [s])
        torch.testing.assert_close(
            together[keys.MEMBER_ENERGY][k, 0], alone[keys.ENERGY][0], rtol=0, atol=1e-10
        )
    e = together[keys.MEMBER_ENERGY][:, 0]
    assert float((e[0] - e[1]).abs()) > 0  # different seeds and draws: different members


def test_members_share_the_split_and_bootstrap_their_training_set(run) -> None:
    split, _ = load_split(run / "split.json")
    trains = []
    for k in range(2):
        member, meta = load_split(run / f"member_{k}" / "member_split.json")
        assert meta["bootstrap"] is True
        assert set(member["train"]) <= set(split["train"])
        assert list(member["valid"]) == list(split["valid"])
        assert list(member["test"]) == list(split["test"])
        assert 0 < len(member["train"]) <= len(split["train"])
        trains.append(tuple(member["train"]))
    assert trains[0] != trains[1]


def test_eval_json_has_the_calibration(run) -> None:
    payload = json.loads((run / "eval.json").read_text())
    test = payload["calibration"]["test"]
    assert test["num_structures"] == 6
    assert -1.0 <= test["spearman_rms"] <= 1.0
    assert len(test["forces_mae_members"]) == 2
    assert test["forces_mae_mean"] > 0
    assert payload["splits"]["test"]["forces_mae"] == pytest.approx(test["forces_mae_mean"])


def test_mlip_eval_of_a_committee_reports_calibration(run, tmp_path, capsys) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--json", str(out), "--no-hessian"]) == 0
    printed = capsys.readouterr().out
    assert "committee calibration" in printed and "Spearman" in printed
    assert set(json.loads(out.read_text())["calibration"]) == {"train", "valid", "test"}


def test_resume_keeps_finished_members_and_new_run_is_refused(run, capsys) -> None:
    before = (run / "model.pt").read_bytes()
    assert main(committee_args(run, "--resume", "--no-eval")) == 0  # size from committee.json
    after = load_model(run / "model.pt")
    assert after.num_members == 2
    s = ethanol(2)
    a = evaluate(load_model(run / "member_1" / "model.pt"), [s])[keys.ENERGY]
    torch.testing.assert_close(evaluate(after, [s])[keys.MEMBER_ENERGY][1], a)
    assert before  # the file was rewritten from the same members
    assert main(committee_args(run, "--committee", "2", "--bootstrap")) == 1
    assert "already holds a committee" in capsys.readouterr().err
