"""Committees (mlip.committee): mean and spread against the members one by one, files,
the ASE calculator's energy_std / forces_std."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from support import copper, ethanol, evaluate, small_model

from mlip import keys
from mlip.calculator import MLIPCalculator
from mlip.committee import Committee, committee_spread, is_committee
from mlip.data.graph import build_batch
from mlip.derivatives import compute
from mlip.errors import CheckpointError
from mlip.model import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


def members(k: int = 3) -> list[torch.nn.Module]:
    return [small_model(seed=s) for s in range(k)]


def test_mean_and_spread_equal_the_members_one_by_one() -> None:
    parts = members(3)
    committee = Committee(parts)
    structures = [ethanol(1), copper(1, seed=2), ethanol(3)]
    batch = build_batch(structures, committee.r_max, labels=False)
    out = compute(committee, batch, forces=True, stress=True, members=True)
    singles = [compute(m, batch, forces=True, stress=True) for m in parts]
    energies = torch.stack([o[keys.ENERGY] for o in singles])  # (K, S)
    forces = torch.stack([o[keys.FORCES] for o in singles])  # (K, A, 3)
    stress = torch.stack([o[keys.STRESS] for o in singles])
    torch.testing.assert_close(out[keys.ENERGY], energies.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(out[keys.FORCES], forces.mean(0), rtol=0, atol=1e-12)
    # the periodic system's stress (the molecules' is divided by a clamped zero volume)
    torch.testing.assert_close(out[keys.STRESS][1], stress.mean(0)[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(out[keys.MEMBER_FORCES], forces, rtol=0, atol=1e-12)
    # the plain path (no member forces) gives the same mean
    plain = compute(committee, batch, forces=True, stress=True)
    torch.testing.assert_close(plain[keys.FORCES], out[keys.FORCES], rtol=0, atol=1e-12)

    spread = committee_spread(
        out[keys.MEMBER_ENERGY], out[keys.MEMBER_FORCES], batch[keys.BATCH], len(structures)
    )
    e = energies.numpy()
    np.testing.assert_allclose(spread["energy_std"].numpy(), e.std(0), rtol=1e-10, atol=1e-14)
    f = forces.numpy()
    per_atom = np.sqrt(((f - f.mean(0)) ** 2).sum(-1).mean(0))
    np.testing.assert_allclose(spread["forces_std"].numpy(), per_atom, rtol=1e-10, atol=1e-14)
    system = batch[keys.BATCH].numpy()
    largest = [per_atom[system == s].max() for s in range(len(structures))]
    np.testing.assert_allclose(spread["max_force_std"].numpy(), largest, rtol=1e-12)
    assert float(spread["forces_std"].max()) > 0


def test_hessian_of_a_committee_is_the_mean_of_the_members() -> None:
    parts = members(2)
    committee = Committee(parts)
    s = ethanol(4)
    h = evaluate(committee, [s], hessian=True)[keys.HESSIAN]
    hs = [evaluate(m, [s], hessian=True)[keys.HESSIAN] for m in parts]
    torch.testing.assert_close(h, (hs[0] + hs[1]) / 2, rtol=0, atol=1e-10)
    # the member-by-member path (members=True) gives the same mean Hessian
    batch = build_batch([s], committee.r_max, labels=False)
    both = compute(committee, batch, hessian=True, members=True)
    torch.testing.assert_close(both[keys.HESSIAN], h, rtol=0, atol=1e-10)
    assert both[keys.MEMBER_FORCES].shape == (2, len(s.atomic_numbers), 3)


def test_identical_members_have_zero_spread() -> None:
    model = small_model(seed=4)
    committee = Committee([model, copy.deepcopy(model), copy.deepcopy(model)])
    batch = build_batch([ethanol(2), copper(1, seed=1)], committee.r_max, labels=False)
    out = compute(committee, batch, members=True)
    spread = committee_spread(
        out[keys.MEMBER_ENERGY], out[keys.MEMBER_FORCES], batch[keys.BATCH], 2
    )
    for value in spread.values():
        assert float(value.abs().max()) < 1e-14  # rounding of a mean of equal values
    single = compute(model, batch)
    torch.testing.assert_close(out[keys.FORCES], single[keys.FORCES], rtol=0, atol=1e-13)


def test_committee_file_survives_save_and_load(tmp_path) -> None:
    committee = Committee(members(3))
    path = tmp_path / "committee.pt"
    committee.save(path)
    loaded = load_model(path)
    assert is_committee(loaded) and loaded.num_members == 3
    assert loaded.atomic_numbers == committee.atomic_numbers
    structures = [ethanol(5), copper(1, seed=3)]
    a = evaluate(committee, structures, stress=True)
    b = evaluate(loaded, structures, stress=True)
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS, keys.MEMBER_ENERGY):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-13)
    float32 = load_model(path, dtype=torch.float32)
    assert next(float32.parameters()).dtype == torch.float32


def test_bad_committee_files_and_members(tmp_path) -> None:
    path = tmp_path / "bad.pt"
    torch.save({"format": "mlip-committee", "version": 1, "members": []}, path)
    with pytest.raises(CheckpointError, match="without members"):
        load_model(path)
    torch.save({"format": "mlip-committee", "version": 1, "members": [{"format": "x"}]}, path)
    with pytest.raises(CheckpointError, match="member 0"):
        load_model(path)
    with pytest.raises(ValueError, match="member 1 knows"):
        Committee([small_model((1, 6)), small_model((1, 8))])
    with pytest.raises(ValueError, match="at least one"):
        Committee([])


def test_calculator_reports_mean_and_spread(tmp_path) -> None:
    parts = members(3)
    path = tmp_path / "committee.pt"
    Committee(parts).save(path)
    calc = MLIPCalculator(path)
    assert calc.committee and "forces_std" in calc.implemented_properties
    atoms = molecule("CH3CH2OH")
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    singles = []
    for m in parts:
        one = molecule("CH3CH2OH")
        one.calc = MLIPCalculator(m)
        singles.append((one.get_potential_energy(), one.get_forces()))
    e = np.array([x[0] for x in singles])
    f = np.stack([x[1] for x in singles])
    assert energy == pytest.approx(e.mean(), abs=1e-10)
    np.testing.assert_allclose(forces, f.mean(0), atol=1e-10)
    assert calc.results["energy_std"] == pytest.approx(e.std(), abs=1e-10)
    expected = np.sqrt(((f - f.mean(0)) ** 2).sum(-1).mean(0))
    np.testing.assert_allclose(calc.results["forces_std"], expected, atol=1e-10)
    assert calc.results["forces_std"].shape == (len(atoms),)
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.calc = calc
    assert cell.get_stress().shape == (6,) and "energy_std" in calc.results
    hessian = calc.get_hessian(atoms)
    assert hessian.shape == (27, 27)
