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

pytest.importorskip("tblite")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "..", "shared", "data")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(os.path.join(DATA_DIR, "ethanol_xtb.h5")),
        reason="reference data not present",
    ),
]


def test_short_run_reports_every_table(tmp_path, capsys) -> None:
    bench = load_benchmark("active_learning")
    assert bench.main(["--out", str(tmp_path), "--short", "--data-dir", DATA_DIR]) == 0
    printed = capsys.readouterr().out
    assert "round table (mlip learn)" in printed and "test F MAE" in printed
    assert "valid F MAE" in printed
    summary = json.loads((tmp_path / "active_learning.json").read_text())["molecules"]["ethanol"]
    assert (tmp_path / "ethanol" / "learn" / "model.pt").exists()
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
