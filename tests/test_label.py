"""``mlip label``: labels equal the calculator's, Hessians (own and finite differences)
equal the closed form, failures are recorded and skipped, a killed run resumes to the
same file, bad specs and elements are refused with nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from support.labellers import KILL_AFTER, springs
from support.processes import run_python
from support.structures import ETHANOL_R, ETHANOL_Z

from mlip.cli import main
from mlip.committee import Committee
from mlip.data.formats import read_mlip
from mlip.labelling import LabelConfig, finite_difference_hessian, label_structures
from mlip.labelling.calculators import make_labeller

pytestmark = pytest.mark.usefixtures("one_thread")
TESTS = Path(__file__).resolve().parent


def copper_frames(path: Path, n: int = 5) -> list:
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (1, 1, 1 + k % 2)
        atoms.rattle(0.05, seed=k)
        atoms.positions[0, 0] = 0.02 * (-1) ** k  # FailingEMT fails on the even frames
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return ase.io.read(path, index=":")  # as written (extxyz rounds the positions)


def ethanol_frames(path: Path, n: int = 3) -> list:
    from ase import Atoms

    frames = []
    for k in range(n):
        atoms = Atoms(ETHANOL_Z, ETHANOL_R)
        atoms.rattle(0.03, seed=k)
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return ase.io.read(path, index=":")


def contents(path: Path) -> dict:
    out = {}
    with h5py.File(path) as h5:
        for name, group in h5.items():
            out[name] = {k: group[k][()] for k in group}
            out[name]["source_index"] = group.attrs["source_index"]
        out["level_of_theory"] = h5.attrs["level_of_theory"]
    return out


def assert_same(a: dict, b: dict, rtol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if name == "level_of_theory":
            assert a[name] == b[name]
            continue
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            np.testing.assert_allclose(a[name][key], b[name][key], rtol=rtol, atol=0)


def test_emt_labels_equal_the_calculator(tmp_path: Path, capsys) -> None:
    frames = copper_frames(tmp_path / "cu.xyz")
    out = tmp_path / "cu.h5"
    assert main(["label", str(tmp_path / "cu.xyz"), str(out), "--calculator", "emt",
                 "--no-progress"]) == 0  # fmt: skip
    assert "5 of 5 structures labelled" in capsys.readouterr().out
    groups = {g.name: g for g in read_mlip(out)}
    assert set(groups) == {"Cu4", "Cu8"}
    for name, group in groups.items():
        indices = contents(out)[name]["source_index"]
        for index, s in zip(indices, group.structures, strict=True):
            atoms = frames[index].copy()
            atoms.calc = EMT()
            assert s.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-12)
            np.testing.assert_allclose(s.forces, atoms.get_forces(), atol=1e-12)
            np.testing.assert_allclose(s.stress, atoms.get_stress(), atol=1e-12)
            np.testing.assert_allclose(s.positions, frames[index].positions)
    assert contents(out)["level_of_theory"] == "emt"


@pytest.mark.parametrize(
    "spec", ["support.labellers:harmonic_mlip", "support.labellers:harmonic_ase"]
)
def test_hessians_equal_the_closed_form(tmp_path: Path, spec: str) -> None:
    frames = ethanol_frames(tmp_path / "eth.xyz")
    out = tmp_path / "eth.h5"
    config = LabelConfig(str(tmp_path / "eth.xyz"), str(out), spec, hessian=True, progress=False)
    result = label_structures(config)
    assert result.labelled == 3 and not result.failed
    (group,) = read_mlip(out)
    model = springs()
    own = spec.endswith("mlip")  # MLIPCalculator's exact Hessian, else central differences
    for frame, s in zip(frames, group.structures, strict=True):
        closed = model.analytic_hessian(frame.positions)
        tolerance = 1e-10 if own else 1e-3  # FD error O(h^2): 5e-4 eV/A^2 at h = 0.005 A
        np.testing.assert_allclose(s.hessian, closed, rtol=0, atol=tolerance)
        assert np.abs(closed).max() > 10


def test_finite_difference_error_falls_as_the_step_squared() -> None:
    from ase import Atoms
    from support.labellers import SpringCalculator

    atoms = Atoms(ETHANOL_Z, ETHANOL_R)
    atoms.rattle(0.03, seed=4)
    closed = springs().analytic_hessian(atoms.positions)
    errors = [np.abs(finite_difference_hessian(atoms, SpringCalculator(), h) - closed).max()
              for h in (0.01, 0.005)]  # fmt: skip
    assert 3.0 < errors[0] / errors[1] < 5.0, errors  # O(h^2)


def test_finite_differences_of_emt_match_its_forces() -> None:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=1)
    h = finite_difference_hessian(atoms, EMT(), 0.005)
    h2 = finite_difference_hessian(atoms, EMT(), 0.0025)
    assert np.abs(h - h.T).max() == 0 and np.abs(h - h2).max() < 1e-3 * np.abs(h).max()
    # translation: the rows of a periodic Hessian sum to zero
    assert np.abs(h.reshape(12, 4, 3).sum(1)).max() < 1e-6


def test_failures_are_recorded_skipped_and_not_retried(tmp_path: Path, capsys) -> None:
    copper_frames(tmp_path / "cu.xyz")
    out = tmp_path / "cu.h5"
    args = ["label", str(tmp_path / "cu.xyz"), str(out), "--calculator",
            "support.labellers:failing_emt", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 of 5 structures labelled" in printed and "3 failed" in printed
    assert "SCF did not converge" in printed
    side = json.loads(Path(str(out) + ".labelling.json").read_text())
    assert sorted(side["failed"]) == ["0", "2", "4"]
    assert sorted(np.concatenate([v["source_index"] for k, v in contents(out).items()
                                  if k != "level_of_theory"])) == [1, 3]  # fmt: skip
    assert main(args) == 0  # resumed: nothing left to do, failures not retried
    assert "(0 by this run), 3 failed" in capsys.readouterr().out


def test_killed_run_resumes_to_the_same_file(tmp_path: Path) -> None:
    copper_frames(tmp_path / "cu.xyz", n=6)
    spec = "support.labellers:killing_emt"
    args = ["-m", "mlip.cli", "label", str(tmp_path / "cu.xyz"), "OUT", "--calculator", spec,
            "--flush-seconds", "0", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    whole = [a if a != "OUT" else str(tmp_path / "whole.h5") for a in args]
    assert run_python(whole, tmp_path, env).returncode == 0
    killed = [a if a != "OUT" else str(tmp_path / "part.h5") for a in args]
    first = run_python(killed, tmp_path, {**env, KILL_AFTER: "3"})
    assert first.returncode == -9  # SIGKILL: no clean-up ran
    assert sum(len(g.structures) for g in read_mlip(tmp_path / "part.h5")) == 3
    second = run_python(killed, tmp_path, env)
    assert second.returncode == 0, second.stderr
    assert "6 of 6 structures labelled (3 by this run)" in second.stdout
    assert_same(contents(tmp_path / "part.h5"), contents(tmp_path / "whole.h5"))


def test_workers_give_the_same_file(tmp_path: Path) -> None:
    copper_frames(tmp_path / "cu.xyz", n=4)
    for workers, name in ((1, "one.h5"), (2, "two.h5")):
        label_structures(LabelConfig(str(tmp_path / "cu.xyz"), str(tmp_path / name), "emt",
                                     workers=workers, progress=False))  # fmt: skip
    # EMT in a fresh process (a worker) differs from a reused one in the last digit
    assert_same(contents(tmp_path / "one.h5"), contents(tmp_path / "two.h5"), rtol=1e-12)


def test_hdf5_input_and_an_mlip_model_as_labeller(tmp_path: Path) -> None:
    copper_frames(tmp_path / "cu.xyz", n=3)
    label_structures(LabelConfig(str(tmp_path / "cu.xyz"), str(tmp_path / "emt.h5"), "emt",
                                 progress=False))  # fmt: skip
    from support import small_model

    path = tmp_path / "committee.pt"
    Committee([small_model(seed=s) for s in range(2)]).save(path)
    out = tmp_path / "model.h5"
    config = LabelConfig(f"{tmp_path / 'emt.h5'}:Cu4", str(out), f"mlip:{path}", hessian=True,
                         progress=False)  # fmt: skip
    result = label_structures(config)
    assert result.total == 2 and result.labelled == 2
    (group,) = read_mlip(out)
    assert group.name == "Cu4" and group.structures[0].hessian.shape == (12, 12)


def test_bad_specs_elements_and_outputs(tmp_path: Path, capsys) -> None:
    with pytest.raises(ValueError, match="unknown calculator spec 'vasp'; known: emt, tblite"):
        make_labeller("vasp")
    with pytest.raises(ValueError, match="module 'no_such_module' cannot be imported"):
        make_labeller("no_such_module:factory")
    with pytest.raises(ValueError, match="pyscf:METHOD/BASIS"):
        make_labeller("pyscf:pbe")
    ase.io.write(tmp_path / "mol.xyz", molecule("CH3Cl"))
    out = tmp_path / "mol.h5"
    assert main(["label", str(tmp_path / "mol.xyz"), str(out), "--calculator", "emt"]) == 1
    assert "element(s) Cl cannot be labelled by 'emt'" in capsys.readouterr().err
    assert not out.exists() and not Path(str(out) + ".labelling.json").exists()
    copper_frames(tmp_path / "cu.xyz", n=2)
    (tmp_path / "taken.h5").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not the output of an interrupted"):
        label_structures(LabelConfig(str(tmp_path / "cu.xyz"), str(tmp_path / "taken.h5"), "emt",
                                     progress=False))  # fmt: skip
    label_structures(LabelConfig(str(tmp_path / "cu.xyz"), str(tmp_path / "a.h5"), "emt",
                                 progress=False))  # fmt: skip
    with pytest.raises(ValueError, match="other settings \\(hessian"):
        label_structures(LabelConfig(str(tmp_path / "cu.xyz"), str(tmp_path / "a.h5"), "emt",
                                     hessian=True, progress=False))  # fmt: skip


@pytest.mark.skipif(not __import__("importlib").util.find_spec("tblite"), reason="tblite")
def test_tblite_gfn2_labels_ethanol(tmp_path: Path) -> None:
    ethanol_frames(tmp_path / "eth.xyz", n=2)
    result = label_structures(LabelConfig(str(tmp_path / "eth.xyz"), str(tmp_path / "x.h5"),
                                          "tblite:GFN2-xTB", progress=False))  # fmt: skip
    assert result.labelled == 2
    (group,) = read_mlip(tmp_path / "x.h5")
    assert -320 < group.structures[0].energy < -300  # GFN2-xTB ethanol, eV


@pytest.mark.skipif(not __import__("importlib").util.find_spec("pyscf"), reason="pyscf")
def test_pyscf_forces_are_minus_the_energy_gradient(tmp_path: Path) -> None:
    labeller = make_labeller("pyscf:hf/sto-3g")
    assert 1 in labeller.elements and 8 in labeller.elements
    atoms = molecule("H2O")
    atoms.positions[1, 0] += 0.05
    atoms.calc = labeller.calculator
    forces = atoms.get_forces()
    h, fd = 1e-3, np.zeros(3)
    for x in range(3):  # atom 1, central differences of the energy (eV)
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[1, x] += sign * h
            moved.calc = labeller.calculator
            energies.append(moved.get_potential_energy())
        fd[x] = -(energies[0] - energies[1]) / (2 * h)
    np.testing.assert_allclose(forces[1], fd, atol=2e-4)
    with pytest.raises(ValueError, match="element\\(s\\) Xe cannot be labelled"):
        labeller.check_elements([54])


@pytest.mark.skipif(not __import__("importlib").util.find_spec("sevenn"), reason="sevenn")
def test_sevenn_labels_ethanol_and_refuses_unknown_models(tmp_path: Path) -> None:
    """SevenNet-0 (shipped in the sevenn wheel) as a distillation labeller: energies and
    forces of ethanol whose forces sum to ~0; a bad model name is a clear error."""
    ethanol_frames(tmp_path / "eth.xyz", n=2)
    result = label_structures(LabelConfig(str(tmp_path / "eth.xyz"), str(tmp_path / "s.h5"),
                                          "sevenn:7net-0", progress=False))  # fmt: skip
    assert result.labelled == 2
    (group,) = read_mlip(tmp_path / "s.h5")
    first = group.structures[0]
    assert -60 < first.energy < -35  # SevenNet-0 (PBE) ethanol, eV
    assert np.abs(first.forces).max() > 1e-3 and np.abs(first.forces.sum(0)).max() < 1e-4
    assert 6 in make_labeller("sevenn:7net-0").elements
    with pytest.raises(ValueError, match="sevenn:no-such-model': SevenNet cannot load it"):
        make_labeller("sevenn:no-such-model")


def test_sevenn_missing_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "sevenn.calculator", None)
    with pytest.raises(ValueError, match="needs the sevenn package: pip install sevenn"):
        make_labeller("sevenn:7net-0")
