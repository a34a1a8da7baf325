"""The error table: MAE/RMSE of energies, forces, full Hessians and stress, JSON and plots."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from support import ELEMENTS, PairModel, crystals, label, molecules, teacher

from mlip.train import evaluate
from mlip.train.metrics import ErrorStats, format_table


def student():
    model = PairModel(ELEMENTS, seed=5).double()
    model.set_atomic_energies({1: -13.0, 6: -1030.0, 8: -2040.0})
    return model


def test_evaluate_reports_the_errors_of_each_label_over_the_labelled_structures(tmp_path):
    mols, crys = molecules(5), crystals(3)
    label(teacher(), mols, np.array([1, 0, 1, 0, 0], bool))
    label(teacher(), crys, np.array([0, 1, 0], bool))
    crys[2].stress = None
    structures = mols + crys
    model = student()
    # the model's own labels of the same geometries: errors = differences of labels
    predicted = [type(s)(s.atomic_numbers, s.positions, s.cell, s.pbc) for s in structures]
    label(model, predicted[:5], np.ones(5, bool))  # molecules
    label(model, predicted[5:], np.ones(3, bool))  # crystals, with stress

    result = evaluate.evaluate(model, structures, batch_size=3)
    m = result.metrics
    de = np.array([p.energy - s.energy for p, s in zip(predicted, structures, strict=True)])
    n = np.array([s.num_atoms for s in structures])
    df = np.concatenate([p.forces - s.forces for p, s in zip(predicted, structures, strict=True)])
    dh = np.concatenate(
        [
            (p.hessian - s.hessian).ravel()
            for p, s in zip(predicted, structures, strict=True)
            if s.hessian is not None
        ]
    )
    ds = np.concatenate(
        [p.stress - s.stress for p, s in zip(predicted[5:7], crys[:2], strict=True)]
    )
    assert m["num_structures"] == 8
    assert m["energy_per_atom_mae"] == pytest.approx(1e3 * np.mean(np.abs(de / n)))
    assert m["energy_rmse"] == pytest.approx(1e3 * np.sqrt(np.mean(de**2)))
    assert m["forces_mae"] == pytest.approx(1e3 * np.mean(np.abs(df)))
    assert m["hessian_rmse"] == pytest.approx(1e3 * np.sqrt(np.mean(dh**2)))
    assert m["hessian_count"] == 2 * 15**2 + 12**2
    # stress from Voigt: 9 matrix components per structure, off-diagonals twice
    voigt_weights = np.array([1, 1, 1, 2, 2, 2] * 2, dtype=float)
    assert m["stress_mae"] == pytest.approx(1e3 * np.sum(voigt_weights * np.abs(ds)) / 18)
    assert m["stress_count"] == 18
    assert "hvp_mae" not in m  # only the trainer's probes fill H v

    plain = evaluate.evaluate(model, structures, hessian=False).metrics
    assert "hessian_mae" not in plain and plain["forces_mae"] == pytest.approx(m["forces_mae"])

    results = {"train": result, "test": evaluate.evaluate(model, mols[:2])}
    table = evaluate.report(results)
    assert f"{m['forces_mae']:.4g} / {m['forces_rmse']:.4g}" in table
    test_row = next(line for line in table.splitlines() if line.split()[0] == "test")
    assert "S MAE/RMSE [meV/A^3]" in table and test_row.split()[-1] == "-"  # no stress labels
    assert "P MAE/RMSE/bias [GPa]" in table and m["pressure_count"] == 2
    evaluate.write_json(results, str(tmp_path / "e.json"), {"run": "x"})
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["splits"]["train"]["hessian_mae"] == pytest.approx(m["hessian_mae"])
    assert saved["units"]["forces"] == "meV/A"
    paths = evaluate.parity_plots(results, str(tmp_path / "plots"))
    names = sorted(os.path.basename(p) for p in paths)
    assert names == [
        "parity_energy_per_atom.png",
        "parity_forces.png",
        "parity_hessian.png",
        "parity_stress.png",
    ]
    assert all(os.path.getsize(p) > 1000 for p in paths)


def test_error_stats_sum_over_batches_like_one_pass():
    rng = np.random.default_rng(0)
    r = rng.normal(size=100)
    one, two = ErrorStats(), ErrorStats()
    one.add("forces", torch.tensor(r))
    two.add("forces", torch.tensor(r[:30]))
    two.add("forces", torch.tensor(r[30:]))
    assert one.summary() == pytest.approx(two.summary())
    assert one.summary()["forces_rmse"] == pytest.approx(1e3 * np.sqrt(np.mean(r**2)))
    assert "E MAE/RMSE" not in format_table({"x": one.summary()})
