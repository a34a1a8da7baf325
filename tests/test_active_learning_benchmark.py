"""benchmarks/active_learning.py --short end to end (GFN2-xTB labels via tblite).

It takes tens of minutes on a CPU (four rounds of committee training, xTB MD for the
test set), so it is marked ``slow`` and stays out of CI; run it with
``pytest -m slow tests/test_active_learning_benchmark.py``.
"""

from __future__ import annotations

import json
import os

import pytest
from support.benchmarks import load_benchmark

pytest.importorskip("tblite")  # the [xtb] extra (CI installs it)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the shipped subset of the reference data, under the name the benchmark reads
SUBSET = os.path.join(ROOT, "datasets", "ethanol_small.h5")

pytestmark = pytest.mark.slow


def test_short_run_reports_every_table(tmp_path, capsys) -> None:
    bench = load_benchmark("active_learning")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.symlink(SUBSET, data_dir / bench.REFERENCE_FILE)
    out = str(tmp_path / "out")
    assert bench.main(["--out", out, "--short", "--data-dir", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    assert "round table (mlip learn)" in printed and "test F MAE" in printed
    assert "valid F MAE" in printed
    out_dir = tmp_path / "out"
    summary = json.loads((out_dir / "active_learning.json").read_text())["molecules"]["ethanol"]
    assert (out_dir / "ethanol" / "learn" / "model.pt").exists()
    assert "| molecule | atoms | labels spent |" in printed
    assert 0 < summary["labels"] <= 40
    assert set(summary["test"]) == {
        "learned, loop's last committee (fine-tuned)",
        "learned, final committee (mlip learn's model.pt)",
        "random 500 K MD, from scratch",
    }
    assert set(summary["valid"]) == set(summary["test"])
    for metrics in summary["test"].values():
        assert metrics["num_structures"] > 0 and metrics["forces_mae_mean"] > 0
    assert all("stable" in s for s in summary["stability"].values())
