"""``mlip ts``: Sella with the exact Hessian on a torsional double well with a known saddle.

:class:`support.TorsionModel` (H-O-O-H): minima at cos(phi) = -1/4 (phi = +/-104.48 deg),
the trans saddle at phi = 180 deg, 0.5625 eV above them, with one imaginary mode.
"""

from __future__ import annotations

import json
import sys
import types

import ase.io
import numpy as np
import pytest
from support import TorsionModel, torsion_chain

from mlip.calculator import MLIPCalculator
from mlip.integrations.sella import require_sella

PHI_MIN = np.degrees(np.arccos(-0.25))


def dihedral(atoms) -> float:  # noqa: ANN001
    return float(atoms.get_dihedral(0, 1, 2, 3, mic=False))


def test_torsion_model_is_what_its_docstring_says() -> None:
    model = TorsionModel()
    calc = MLIPCalculator(model)
    trans, minimum = torsion_chain(180.0, model), torsion_chain(PHI_MIN, model)
    assert abs(dihedral(trans) - 180.0) < 1e-9 and abs(dihedral(minimum) - PHI_MIN) < 1e-9
    assert calc.get_potential_energy(trans) == pytest.approx(0.0, abs=1e-12)
    barrier = calc.get_potential_energy(trans) - calc.get_potential_energy(minimum)
    assert barrier == pytest.approx(model.minimum_barrier(), abs=1e-12)
    assert model.minimum_barrier() == pytest.approx(0.5625, abs=1e-12)
    assert np.abs(calc.get_forces(trans)).max() < 1e-10
    assert np.abs(calc.get_forces(minimum)).max() < 1e-10


def fake_model_loader(monkeypatch, model) -> None:  # noqa: ANN001
    fake = types.ModuleType("mlip.model")
    fake.load_model = lambda path, device="cpu", dtype=None: model
    monkeypatch.setitem(sys.modules, "mlip.model", fake)


def test_finds_trans_saddle_and_barrier(tmp_path) -> None:
    pytest.importorskip("sella")
    from mlip.ts import TSConfig, find_transition_state

    model = TorsionModel()
    guess = torsion_chain(150.0, model)
    guess.rattle(0.02, seed=1)
    guess.write(tmp_path / "guess.xyz")
    config = TSConfig(guess=str(tmp_path / "guess.xyz"), fmax=1e-4)
    result = find_transition_state(config, calculator=MLIPCalculator(model))
    assert abs(abs(dihedral(result.saddle)) - 180.0) < 0.05
    assert result.energy == pytest.approx(0.0, abs=1e-7)
    frequencies = result.vibrations.frequencies
    assert frequencies[0] < -100 and (frequencies[1:] > 100).all()  # exactly one imaginary
    assert result.hessians >= 1
    barriers = result.barriers
    assert barriers["forward"] == pytest.approx(0.5625, abs=1e-6)
    assert barriers["reverse"] == pytest.approx(0.5625, abs=1e-6)
    # the two mirror-image minima, one on each side of the trans saddle (ASE: 0..360 deg)
    angles = np.array(sorted(dihedral(m.atoms) for m in result.minima))
    np.testing.assert_allclose(angles, [PHI_MIN, 360.0 - PHI_MIN], atol=0.05)
    assert not result.warnings


def test_cli_writes_json_trajectory_and_path(tmp_path, monkeypatch, capsys) -> None:
    pytest.importorskip("sella")
    from mlip.cli import main

    fake_model_loader(monkeypatch, TorsionModel())
    (tmp_path / "m.pt").write_bytes(b"")
    torsion_chain(160.0).write(tmp_path / "guess.xyz")
    out = tmp_path / "out"
    argv = [
        "ts",
        str(tmp_path / "m.pt"),
        str(tmp_path / "guess.xyz"),
        "--json",
        str(out / "ts.json"),
    ]
    argv += ["--traj", str(out / "search.traj"), "--path", str(out / "path.extxyz")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "one imaginary mode" in printed and "barrier forward 0.5625" in printed
    saved = json.loads((out / "ts.json").read_text())
    assert saved["barrier_forward"] == pytest.approx(0.5625, abs=1e-5)
    assert saved["imaginary_frequency"] < 0 and sum(f < 0 for f in saved["frequencies"]) == 1
    frames = ase.io.read(out / "path.extxyz", index=":")
    assert len(frames) == 3
    assert abs(abs(dihedral(frames[1])) - 180.0) < 0.5
    assert len(ase.io.read(out / "search.traj", index=":")) == saved["search_steps"] + 1
    assert sorted(p.name for p in out.iterdir()) == ["path.extxyz", "search.traj", "ts.json"]


def test_no_convergence_and_minimum_guess_are_errors_writing_nothing(
    tmp_path, monkeypatch, capsys
) -> None:
    pytest.importorskip("sella")
    from mlip.cli import main

    fake_model_loader(monkeypatch, TorsionModel())
    (tmp_path / "m.pt").write_bytes(b"")
    torsion_chain(130.0).write(tmp_path / "far.xyz")
    outputs = ["--json", str(tmp_path / "ts.json"), "--traj", str(tmp_path / "s.traj")]
    outputs += ["--path", str(tmp_path / "p.extxyz")]
    argv = ["ts", str(tmp_path / "m.pt"), str(tmp_path / "far.xyz"), "--steps", "2"]
    assert main(argv + outputs) == 1
    err = capsys.readouterr().err
    assert "far.xyz: the saddle search did not converge after 2 steps" in err
    torsion_chain(PHI_MIN).write(tmp_path / "minimum.xyz")  # forces zero: converged at once
    assert main(["ts", str(tmp_path / "m.pt"), str(tmp_path / "minimum.xyz")] + outputs) == 1
    assert "has 0 imaginary modes" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["far.xyz", "m.pt", "minimum.xyz"]


def test_unknown_element_and_missing_sella(tmp_path, monkeypatch) -> None:
    from mlip.errors import MissingDependencyError, UnknownElementError
    from mlip.ts import TSConfig, find_transition_state

    model = TorsionModel()
    model.atomic_numbers = [1, 8]
    guess = torsion_chain(150.0)
    guess.numbers[1] = 6
    guess.write(tmp_path / "hcoh.xyz")
    with pytest.raises(UnknownElementError, match=r"hcoh.xyz: element\(s\) C not known"):
        find_transition_state(TSConfig(guess=str(tmp_path / "hcoh.xyz")), MLIPCalculator(model))
    monkeypatch.setitem(sys.modules, "sella", None)  # import sella -> ImportError
    with pytest.raises(MissingDependencyError, match=r"need Sella.*pip install 'mlip\[ts\]'"):
        require_sella()
