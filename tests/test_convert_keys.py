"""``mlip convert --energy-key/--forces-key/--stress-key/--hessian-key``: files whose
labels carry other names (MACE and NequIP write REF_energy, REF_forces, REF_stress)."""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule

from mlip.cli import main
from mlip.data.convert import LabelKeys, convert
from mlip.data.formats import read_mlip
from mlip.errors import DataError

DATASETS = Path(__file__).resolve().parents[1] / "datasets"


def mace_file(path: Path, rng: np.random.Generator) -> list:
    """extxyz frames with REF_energy (info), REF_forces (arrays), REF_stress (info, 3x3)
    and, on the molecules, a flattened REF_hessian (info)."""
    frames = []
    for k in range(3):
        atoms = molecule("H2O")
        atoms.rattle(0.05, seed=k)
        atoms.info["REF_energy"] = float(rng.normal())
        atoms.arrays["REF_forces"] = rng.normal(size=(3, 3))
        atoms.info["REF_hessian"] = rng.normal(size=81)
        frames.append(atoms)
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.info["REF_energy"] = -3.0
    cell.arrays["REF_forces"] = rng.normal(size=(4, 3))
    cell.info["REF_stress"] = rng.normal(size=9) * 1e-2
    frames.append(cell)
    ase.io.write(path, frames, format="extxyz")
    return frames


def test_reference_keys_are_read(tmp_path: Path) -> None:
    frames = mace_file(tmp_path / "train.xyz", np.random.default_rng(0))
    with pytest.raises(DataError, match="no energy 'energy'.*REF_energy.*--energy-key"):
        convert(tmp_path / "train.xyz", tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()
    keys = LabelKeys("REF_energy", "REF_forces", "REF_stress", "REF_hessian")
    result = convert(tmp_path / "train.xyz", tmp_path / "a.h5", keys=keys)
    assert [g.num_conformers for g in result.groups] == [3, 1]
    groups = {g.name: g.structures for g in read_mlip(tmp_path / "a.h5")}
    water, copper = groups["H2O"], groups["Cu4"]
    for frame, s in zip(frames[:3], water, strict=True):
        assert s.energy == pytest.approx(frame.info["REF_energy"], abs=1e-12)
        np.testing.assert_allclose(s.forces, frame.arrays["REF_forces"], atol=1e-12)
        np.testing.assert_allclose(s.hessian.reshape(-1), frame.info["REF_hessian"], atol=1e-12)
    m = frames[3].info["REF_stress"].reshape(3, 3)
    voigt = [m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]]
    np.testing.assert_allclose(copper[0].stress, voigt, atol=1e-12)


def test_cli_key_options(tmp_path: Path, capsys) -> None:
    mace_file(tmp_path / "train.xyz", np.random.default_rng(1))
    out = tmp_path / "b.h5"
    keys = [
        "--energy-key",
        "REF_energy",
        "--forces-key",
        "REF_forces",
        "--stress-key",
        "REF_stress",
    ]
    assert main(["convert", str(tmp_path / "train.xyz"), str(out), *keys]) == 0
    assert "H2O: 3 atoms, 3 conformers, labels: energy forces" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "train.xyz"), str(tmp_path / "c.h5")]) == 1
    assert "--energy-key" in capsys.readouterr().err


def test_bad_keyed_labels_name_the_field(tmp_path: Path) -> None:
    atoms = molecule("H2O")
    atoms.info["E"] = 1.0
    atoms.arrays["F"] = np.zeros((3, 3))
    atoms.info["H"] = np.zeros(10)
    ase.io.write(tmp_path / "bad.xyz", atoms, format="extxyz")
    with pytest.raises(DataError, match="field 'H', conformer 0: Hessian of 10 values"):
        convert(tmp_path / "bad.xyz", tmp_path / "a.h5", keys=LabelKeys("E", "F", "S", "H"))


def test_keys_for_a_fixed_layout_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="apply to ASE files"):
        convert(DATASETS / "cu_small.h5", tmp_path / "a.h5", keys=LabelKeys(energy="REF_energy"))
