"""The random-MD baselines of benchmarks/active_learning.py: E+F, and with Hessians."""

from __future__ import annotations

import os

import numpy as np
import pytest
from support.benchmarks import load_benchmark

from mlip.data.hdf5 import H5Dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the shipped subset of the reference 500 K MD (its group "ethanol", 300 conformers)
REFERENCE = os.path.join(ROOT, "datasets", "ethanol_small.h5")


def _positions(path: str) -> np.ndarray:
    dataset = H5Dataset(path)
    out = np.stack([s.positions for s in dataset.get_many(range(len(dataset)))])
    dataset.close()
    return out


def test_hessian_baseline_has_the_fraction_and_the_same_validation(tmp_path) -> None:
    bench = load_benchmark("active_learning")
    plain, plain_valid = tmp_path / "plain.h5", tmp_path / "plain_valid.h5"
    with_h, valid = tmp_path / "h.h5", tmp_path / "valid.h5"
    bench.random_md_data(str(plain), str(plain_valid), REFERENCE, 40, 0, 30)
    bench.random_md_data(str(with_h), str(valid), REFERENCE, 40, 0, 30, hessian_fraction=0.25)
    sets = {p: H5Dataset(str(p)) for p in (plain, plain_valid, with_h, valid)}
    assert [len(d) for d in sets.values()] == [40, 30, 40, 30]
    assert sets[plain].hessian_mask.sum() == 0 and sets[valid].hessian_mask.sum() == 0
    assert sets[with_h].hessian_mask.sum() == 10  # ceil(0.25 * 40)
    for d in sets.values():
        d.close()
    np.testing.assert_array_equal(_positions(str(plain_valid)), _positions(str(valid)))
    train, held = _positions(str(with_h)), _positions(str(valid))
    distance = np.abs(train[:, None] - held[None]).max(axis=(2, 3))
    assert distance.min() > 1e-6  # no validation conformer among the training ones


def test_label_energies_per_round_and_validation(tmp_path) -> None:
    from mlip.data.writer import write_mlip_hdf5

    bench = load_benchmark("active_learning")
    dataset = H5Dataset(REFERENCE, ["ethanol"])
    structures = dataset.get_many(range(12))
    dataset.close()
    energies = np.array([s.energy for s in structures])
    for r, part in ((0, structures[:4]), (2, structures[4:9])):  # round 1 labelled nothing
        os.makedirs(tmp_path / "learn" / f"round_{r}")
        write_mlip_hdf5(str(tmp_path / "learn" / f"round_{r}" / "labels.h5"), {"g": part}, "x")
    os.makedirs(tmp_path / "learn" / "round_1")
    write_mlip_hdf5(str(tmp_path / "valid.h5"), {"g": structures[9:]}, "x")
    rows = bench.label_energies(str(tmp_path / "learn"), str(tmp_path / "valid.h5"), -300.0)
    assert [(r["labels"], r["n"]) for r in rows] == [("round 0", 4), ("round 2", 5),
                                                     ("validation", 3)]  # fmt: skip
    assert rows[1]["median_eV"] == pytest.approx(np.median(energies[4:9]) + 300.0)
    assert rows[2]["max_eV"] == pytest.approx(energies[9:].max() + 300.0)
