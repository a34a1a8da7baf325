"""Smoke tests of benchmarks/sobolev.py and benchmarks/training_throughput.py.

Tiny budgets on a 40-conformer excerpt of the shipped ethanol subset (14 carrying a
Hessian) and a small model, so that the scripts cannot rot; the long versions are run
by hand.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from support.benchmarks import load_benchmark

from mlip.data.hdf5 import H5Dataset
from mlip.data.writer import write_mlip_hdf5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "datasets", "ethanol_small.h5")  # shipped: these tests always run
SMALL_MODEL = {"model.num_channels": 8, "model.l_max": 1, "model.num_layers": 1}
SMALL_ARGS = ["--num-channels", "8", "--l-max", "1", "--hidden-l-max", "1", "--num-layers", "1"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> str:
    """ethanol_tiny.h5: 14 conformers with a Hessian + 26 without, and the minimum."""
    source = H5Dataset(DATA, ["ethanol", "ethanol_minimum"])
    n_ethanol = source.groups[0].num_conformers
    mask = source.hessian_mask[:n_ethanol]
    rows = np.concatenate([np.flatnonzero(mask)[:14], np.flatnonzero(~mask)[:26]])
    structures = source.get_many(np.sort(rows))
    minimum = source.get_many([n_ethanol])
    source.close()
    path = str(tmp_path_factory.mktemp("data") / "ethanol_tiny.h5")
    write_mlip_hdf5(path, {"ethanol": structures, "ethanol_minimum": minimum}, "GFN2-xTB")
    return path


def test_draw_sets_are_disjoint_nested_and_reproducible():
    sobolev = load_benchmark("sobolev")
    mask = np.zeros(200, dtype=bool)
    mask[::4] = True  # 50 Hessian-carrying conformers
    sets = sobolev.draw_sets(mask, [5, 20, 40], [60], n_valid=10, n_test=30, seed=0)
    valid, test, train = set(sets["valid"]), set(sets["test"]), sets["train"]
    assert len(valid) == 10 and len(test) == 30 and not valid & test
    assert mask[sets["valid"]].all() and not mask[sets["test"]].any()
    for n in (5, 20, 40):
        assert len(train[n]) == n and mask[train[n]].all()
        assert not set(train[n]) & (valid | test)
    assert set(train[5]) <= set(train[20]) <= set(train[40])  # nested
    assert len(train[60]) == 60 and not set(train[60]) & (valid | test)
    again = sobolev.draw_sets(mask, [5, 20, 40], [60], n_valid=10, n_test=30, seed=0)
    assert all(np.array_equal(again["train"][n], train[n]) for n in train)
    with pytest.raises(ValueError, match="size 41"):
        sobolev.draw_sets(mask, [41], [], n_valid=10, n_test=30)


def test_sobolev_curve_in_process(tiny_data, tmp_path):
    sobolev = load_benchmark("sobolev")
    options = sobolev.Options(
        data=tiny_data,
        sizes=[4],
        large_sizes=[12],
        modes=["e", "ef", "efh"],
        protocols=["time"],
        minutes=0.01,
        n_valid=4,
        n_test=8,
        threads=1,
        out=str(tmp_path / "curve"),
        train_args=[*SMALL_ARGS, "--max-epochs", "3"],
    )
    plot = str(tmp_path / "curve.png")
    payload = sobolev.run_benchmark(options, plot)
    results = payload["results"]
    got = [(r["mode"], r["n_train"]) for r in results]
    assert got == [("e", 4), ("e", 12), ("ef", 4), ("ef", 12), ("efh", 4)]  # no efh on 12
    keys = ("test_forces_mae", "test_energy_mae", "freq_mae", "freq_max_error",
            "freq_mae_soft", "hessian_mae_minimum", "valid_hessian_mae")  # fmt: skip
    for r in results:
        assert "error" not in r, r.get("log_tail")
        assert r["epochs"] > 0 and r["test_count"] == 8 and r["protocol"] == "time"
        for key in keys:
            assert math.isfinite(r[key]) and r[key] > 0, (r["name"], key)
        assert r["freq_max_error"] >= r["freq_mae"]
    table = sobolev.format_table(results).splitlines()
    assert len(table) == 2 + len(results)
    assert table[-1].startswith("| 12 | E+F | time |")
    assert os.path.getsize(plot) > 0
    with open(os.path.join(options.out, "sobolev.json")) as handle:
        saved = json.load(handle)
    assert saved["results"] == results
    assert not set(saved["test"]) & set(saved["valid"])
    for r in results:  # each run trained on exactly its sets of the full file (split_file)
        run = os.path.join(options.out, r["name"])
        with open(os.path.join(run, "train", "split.json")) as handle:
            split = json.load(handle)
        assert split["valid"] == saved["valid"] and split["test"] == saved["test"]
        assert len(split["train"]) == r["n_train"]
        assert split["meta"]["split_file"] == os.path.join(run, "sets.json")
        with open(os.path.join(run, "train", "config.yaml")) as handle:
            config = handle.read()
        assert ("hessian_weight: 0.0" in config) == (r["mode"] != "efh")  # the defaults
    # a second call reuses the finished runs (same results, no retraining)
    assert sobolev.run_benchmark(options)["results"] == results


def test_sobolev_run_in_subprocess(tiny_data, tmp_path):
    sobolev = load_benchmark("sobolev")
    options = sobolev.Options(
        data=tiny_data,
        sizes=[4],
        modes=["efh"],
        protocols=["plateau"],
        n_valid=4,
        n_test=8,
        relax=True,
        subprocess=True,
        out=str(tmp_path / "sub"),
        train_args=[*SMALL_ARGS, "--max-epochs", "2"],
    )
    (result,) = sobolev.run_benchmark(options)["results"]
    assert "error" not in result, result.get("log_tail")
    assert result["name"] == "efh_plateau_n4" and math.isfinite(result["freq_mae"])
    assert "relax_converged" in result and result["relax_max_shift_A"] >= 0


def test_training_throughput_rows(tiny_data):
    throughput = load_benchmark("training_throughput")
    rows = throughput.measure(
        tiny_data,
        batch_sizes=(2, 3),
        probes=(1, 2),
        steps=2,
        warmup=1,
        pool=30,
        overrides=SMALL_MODEL,
    )
    keys = [(r.dtype, r.probes, r.batches, r.batch_size) for r in rows]
    expected = [
        (d, k, kind, b)
        for d in ("float32", "float64")
        for k in (0, 1, 2)
        for kind in ("worst", "mixed")
        for b in (2, 3)
    ]
    assert keys == expected
    assert all(math.isfinite(r.rate) and r.rate > 0 for r in rows)
    assert all(r.hessian == (r.probes > 0) for r in rows)
    # worst-case batches hold only Hessian conformers; mixed ones are drawn from all
    assert all(r.hessian_share == 1.0 for r in rows if r.batches == "worst")
    assert all(r.hessian_share < 1.0 for r in rows if r.batches == "mixed")
    ratios = throughput.ratios(rows)
    assert sorted(ratios) == sorted(
        (d, b, kind, k)
        for d in ("float32", "float64")
        for b in (2, 3)
        for kind in ("worst", "mixed")
        for k in (1, 2)
    )
    assert all(math.isfinite(x) and x > 0 for x in ratios.values())
    table = throughput.format_table(rows)
    assert table.count("| float64 |") == 12 + 8  # 12 step rows + 8 ratio rows


def test_learn_final_training_prints_its_table(tmp_path, capsys) -> None:
    """benchmarks/learn_final_training.py: one recipe on a dozen frames of the shipped
    ethanol subset (under the name of the shared data), its row and its json."""
    bench = load_benchmark("learn_final_training")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.symlink(DATA, data_dir / "ethanol_xtb.h5")
    out = tmp_path / "out"
    args = ["--out", str(out), "--molecules", "ethanol", "--recipes", "rounds-100ep",
            "--labels", "12", "--valid-frames", "6", "--data-dir", str(data_dir),
            "--threads", "1"]  # fmt: skip
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    assert "| ethanol | rounds-100ep | 32 |" in printed
    (row,) = json.loads((out / "learn_final_training.json").read_text())
    assert row["channels"] == 32 and math.isfinite(row["valid_forces_mae"])
    assert row["valid_forces_mae"] > 0
