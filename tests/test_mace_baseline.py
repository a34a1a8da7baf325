"""The mlip side of the MACE baseline (benchmarks/mace_baseline.py, accuracy.py): the split
MACE trains on, the errors computed from its predictions, and what the table says when
MACE was not measured. MACE itself needs its own environment and is run by hand
(``benchmarks/accuracy.py --mace-python PATH``)."""

from __future__ import annotations

import os

import ase.io
import numpy as np
import pytest
from ase import Atoms
from support.benchmarks import load_benchmark

from mlip.data.hdf5 import H5Dataset
from mlip.train.split import make_split, save_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "datasets", "ethanol_small.h5")


def test_split_is_written_as_extxyz_with_mace_label_keys(tmp_path):
    mace = load_benchmark("mace_baseline")
    dataset = H5Dataset(DATA, ["ethanol"])
    n = len(dataset)
    split = make_split(n, 12, 5, 7, seed=3)
    save_split(
        tmp_path / "split.json",
        split,
        {"paths": [DATA], "groups": ["ethanol"], "num_conformers": n, "seed": 3},
    )
    files = mace.write_split(str(tmp_path), str(tmp_path / "mace"))
    for key, count in (("train", 12), ("valid", 5), ("test", 7)):
        frames = ase.io.read(files[key], ":")
        assert len(frames) == count
        source = dataset.get_many(split[key])
        for atoms, s in zip(frames, source, strict=True):
            # extended XYZ is text: ASE writes 8 decimals
            assert atoms.info["REF_energy"] == pytest.approx(float(s.energy), abs=1e-7)
            np.testing.assert_allclose(atoms.arrays["REF_forces"], s.forces, atol=1e-7)
            np.testing.assert_allclose(atoms.positions, s.positions, atol=1e-7)
            assert atoms.calc is None  # labels under MACE's keys only
    dataset.close()


def test_split_of_other_data_is_refused(tmp_path):
    mace = load_benchmark("mace_baseline")
    split = make_split(10, 5, 3, 2)
    save_split(
        tmp_path / "split.json",
        split,
        {"paths": [DATA], "groups": ["ethanol"], "num_conformers": 10, "seed": 0},
    )
    with pytest.raises(mace.MaceError, match="indexes 10 conformers"):
        mace.write_split(str(tmp_path), str(tmp_path / "mace"))


def test_test_errors_are_per_atom_energy_and_force_component_maes():
    mace = load_benchmark("mace_baseline")
    rng = np.random.default_rng(0)
    reference, predicted = [], []
    for n in (3, 5):
        atoms = Atoms("H" * n, positions=rng.normal(size=(n, 3)))
        ref, pred = atoms.copy(), atoms.copy()
        ref.info["REF_energy"] = -1.0
        pred.info["MACE_energy"] = -1.0 + 0.01 * n  # 10 meV per atom off
        forces = rng.normal(size=(n, 3))
        ref.arrays["REF_forces"] = forces
        pred.arrays["MACE_forces"] = forces + 0.002 * np.sign(rng.normal(size=(n, 3)))
        reference.append(ref)
        predicted.append(pred)
    errors = mace.test_errors(reference, predicted)
    assert errors["energy_mae"] == pytest.approx(10.0)
    assert errors["forces_mae"] == pytest.approx(2.0)
    assert errors["test_count"] == 2
    with pytest.raises(mace.MaceError, match="1 predictions for 2"):
        mace.test_errors(reference, predicted[:1])


def test_train_arguments_use_the_split_and_mace_settings(tmp_path):
    mace = load_benchmark("mace_baseline")
    files = {k: str(tmp_path / f"{k}.xyz") for k in ("train", "valid", "test")}
    args = mace.train_arguments(files, str(tmp_path), seed=4)
    pairs = dict(zip(args, args[1:], strict=False))
    assert pairs["--train_file"] == files["train"] and pairs["--test_file"] == files["test"]
    assert pairs["--energy_key"] == "REF_energy" and pairs["--forces_key"] == "REF_forces"
    assert pairs["--seed"] == "4" and pairs["--default_dtype"] == "float64"
    assert "--keep_checkpoints" in args  # a stop while saving must not lose the last one


def test_accuracy_table_says_quoted_unless_mace_was_measured():
    accuracy = load_benchmark("accuracy")
    row = {
        "system": "ethanol",
        "recipe": "defaults",
        "minutes": 20.0,
        "energy_mae": 0.35,
        "forces_mae": 13.4,
        "mace": {**accuracy.QUOTED_MACE["ethanol"], "quoted": True},
    }
    table = accuracy.format_row(row)
    assert "| test F MAE (meV/A) | 13.40 | 13.50 (quoted) | |" in table
    measured = {
        "energy_mae": 1.2,
        "forces_mae": 12.0,
        "epochs": 20,
        "best_epoch": 19,
        "train_minutes": 20.0,
        "quoted": False,
    }
    table = accuracy.format_row({**row, "mace": measured})
    assert "quoted" not in table
    assert "| test F MAE (meV/A) | 13.40 | 12.00 | |" in table
    assert "20 (19) / 20.0" in table


def test_mace_is_quoted_only_for_the_quotes_protocol():
    """The quote is 1000/100 conformers for 20 minutes: a split size changed after `--`
    (10846f0's way) drops it; another option there (`--batch-size`) does not."""
    import argparse

    accuracy = load_benchmark("accuracy")

    def args(extra: list[str], minutes: float = 20.0) -> argparse.Namespace:
        return argparse.Namespace(train_size=1000, valid_size=100, minutes=minutes, extra=extra)

    assert accuracy.quoted_protocol(args([]))
    assert accuracy.quoted_protocol(args(["--batch-size", "8"]))
    assert not accuracy.quoted_protocol(args(["--train-size", "150"]))
    assert not accuracy.quoted_protocol(args(["--valid-size=50"]))
    assert not accuracy.quoted_protocol(args([], minutes=10.0))
