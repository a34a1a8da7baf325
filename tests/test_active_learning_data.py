"""The random-MD baselines of benchmarks/active_learning.py: E+F, and with Hessians."""

from __future__ import annotations

import os

import numpy as np
import pytest
from support.benchmarks import load_benchmark

from mlip.data.hdf5 import H5Dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "..", "shared", "data", "ethanol_xtb.h5")

pytestmark = pytest.mark.skipif(not os.path.exists(REFERENCE), reason="reference data absent")


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
