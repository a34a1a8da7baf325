"""``mlip train`` / ``python train.py`` and ``mlip eval`` end to end with the real model.

A tiny model (4 channels, 1 layer) for 1 epoch on 12 ethanol conformers of the shipped
subset, then a resume for a second epoch, then ``mlip eval`` of the run directory.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
import yaml
from support.processes import run_python, torchrun_args

from mlip.cli import main
from mlip.errors import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "datasets", "ethanol_small.h5")

TINY = ["--num-channels", "4", "--num-layers", "1", "--l-max", "1", "--num-radial", "4",
        "--r-max", "4"]  # fmt: skip


def train_args(out, *extra):
    return [
        "train",
        "--data",
        DATA,
        "--group",
        "ethanol",
        "--train-size",
        "12",
        "--valid-size",
        "4",
        "--test-size",
        "4",
        "--batch-size",
        "6",
        "--max-epochs",
        "1",
        "--hessian-probes",
        "1",
        "--out",
        str(out),
        "--no-progress",
        *TINY,
        *extra,
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(train_args(out, "--seed", "3", "--set", "optim.min_lr=1e-6")) == 0
    return out


def test_train_writes_the_run_directory(run, capsys):
    files = set(os.listdir(run))
    assert {"model.pt", "last.ckpt", "config.yaml", "split.json", "metrics.csv"} <= files
    assert {"eval.json", "plots"} <= files
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["seed"] == 3 and config["model"]["num_channels"] == 4
    assert config["optim"]["min_lr"] == 1e-6 and config["loss"]["hessian_probes"] == 1
    split = json.loads((run / "split.json").read_text())
    assert [len(split[k]) for k in ("train", "valid", "test")] == [12, 4, 4]
    assert split["meta"]["groups"] == ["ethanol"]
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["valid_forces_mae"]) > 0
    plots = os.listdir(run / "plots")
    assert "parity_forces.png" in plots and "parity_energy_per_atom.png" in plots

    from mlip.model import load_model

    model = load_model(str(run / "model.pt"))
    assert model.config.num_channels == 4 and model.r_max == 4.0


def test_resume_continues_and_eval_reproduces_the_final_table(run, tmp_path, capsys):
    assert main(["train", "--out", str(run), "--resume", "--max-epochs", "2", "--no-progress"]) == 0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [float(r["epoch"]) for r in rows] == [1.0, 2.0]
    final = json.loads((run / "eval.json").read_text())["splits"]
    capsys.readouterr()

    out_json = tmp_path / "eval.json"
    assert main(["eval", str(run), "--json", str(out_json), "--plot", str(tmp_path / "p")]) == 0
    table = capsys.readouterr().out
    assert "F MAE/RMSE [meV/A]" in table and "H MAE/RMSE [meV/A^2]" in table
    assert all(split in table for split in ("train", "valid", "test"))
    again = json.loads(out_json.read_text())["splits"]
    for split in ("train", "valid", "test"):
        for key in ("energy_per_atom_mae", "forces_rmse"):
            assert again[split][key] == pytest.approx(final[split][key], rel=1e-6)  # batching
    assert again["train"]["num_structures"] == 12
    assert os.path.exists(tmp_path / "p" / "parity_forces.png")

    # a model file on other data, or the run on another group: one "all" row
    assert main(["eval", str(run / "model.pt"), DATA, "--group", "ethanol_minimum"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:2] == ["all", "1"]
    assert main(["eval", str(run), "--group", "ethanol_minimum", "--no-hessian"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:2] == ["all", "1"]


def test_resume_with_another_model_is_refused(run, capsys):
    args = ["train", "--out", str(run), "--resume", "--num-channels", "8", "--no-progress"]
    with pytest.raises(CheckpointError, match="model.num_channels: 4 -> 8"):
        main([*args, "--debug"])
    assert main(args) == 1  # without --debug: one line naming the change
    assert "model.num_channels: 4 -> 8" in capsys.readouterr().err


def test_top_level_train_py_is_the_train_command():
    result = run_python([os.path.join(ROOT, "train.py"), "--help"], cwd=ROOT)
    assert result.returncode == 0 and "--hessian-weight" in result.stdout


def test_torchrun_two_cpu_ranks_end_to_end(tmp_path):
    """``torchrun --nproc_per_node 2 train.py``: gloo on CPU, rank 0 alone prints and writes."""
    out = tmp_path / "ddp"
    command = torchrun_args(2, os.path.join(ROOT, "train.py"), train_args(out)[1:])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = run_python(command, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 rank(s)" in result.stdout and result.stdout.count("run directory") == 1
    assert {"model.pt", "last.ckpt", "eval.json"} <= set(os.listdir(out))
