"""Smoke tests of benchmarks/materials.py and benchmarks/make_materials_data.py.

The bench in its ``--quick`` settings on tiny data sets made by the data script:
EMT against EMT must give zero error on every row (the same code runs for model and
reference), the shipped tiny Cu model against EMT must give the same rows with
errors, and held-out cells labelled by another spec than the reference's are labelled
again.
"""

from __future__ import annotations

import json
import math
import os

import h5py
import numpy as np
import pytest
from ase.calculators.emt import EMT
from support.benchmarks import load_benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CU_TINY = os.path.join(ROOT, "datasets", "cu_tiny.pt")
CU_QUANTITIES = ["lattice constant", "bulk modulus (EOS)", "C11", "C12", "C44",
                 "vacancy formation energy", "surface energy (100)", "surface energy (111)",
                 "phonons at X", "phonons at L", "force MAE", "pressure mean bias"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory) -> str:
    """cu_test_emt.h5 and cuau_test_emt.h5, a few 108- and 256-atom cells each."""
    data = load_benchmark("make_materials_data")
    out = str(tmp_path_factory.mktemp("materials"))
    for name in ("cu_test_emt", "cuau_test_emt"):
        data.make_set(name, out, tiny=True, progress=False)
    return out


def test_data_sets_are_labelled_by_emt_and_reproducible(tiny_sets):
    data = load_benchmark("make_materials_data")
    path = os.path.join(tiny_sets, "cuau_test_emt.h5")
    with h5py.File(path, "r") as handle:
        assert handle.attrs["level_of_theory"] == "emt"
        groups = list(handle)
        sizes = {len(handle[g]["atomic_numbers"]) for g in groups}
        assert {108, 256} <= sizes and {107, 255} & sizes  # larger cells, vacancies
        group = handle[groups[0]]
        assert {"energy", "forces", "stress", "cell"} <= set(group)
        numbers = group["atomic_numbers"][:]
        assert np.all(np.diff(numbers) >= 0)  # sorted by element: one group per formula
        atoms_positions, cell = group["positions"][0], group["cell"][0]
        energy = group["energy"][0]
    from ase import Atoms

    atoms = Atoms(numbers=numbers, positions=atoms_positions, cell=cell, pbc=True)
    atoms.calc = EMT()
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-8)
    recipe = data.recipes("cuau_emt", tiny=True)[1]  # an MD recipe of the training pool
    first, again = data.make_frames(recipe), data.make_frames(recipe)
    assert len(first[0]) == 32
    np.testing.assert_array_equal(first[0].positions, again[0].positions)


def _errors(result: dict) -> list[float]:
    values = []
    for row in result["rows"]:
        if row["reference"] is None:  # an MAE row: the model's error itself
            values.append(row["model"])
        else:
            values.append(row["error"])
            values.append(row.get("max_error", 0.0))
    return values


def test_emt_against_emt_has_zero_error(tiny_sets, tmp_path, capsys):
    bench = load_benchmark("materials")
    out = str(tmp_path / "cu.json")
    test_data = os.path.join(tiny_sets, "cu_test_emt.h5")
    result = bench.main(["emt", "--reference", "emt", "--quick", "--test-data", test_data,
                         "--json", out])  # fmt: skip
    with open(out) as handle:
        written = json.load(handle)
    assert written["rows"] == json.loads(json.dumps(result["rows"]))
    names = [row["quantity"] for row in result["rows"]]
    for quantity in CU_QUANTITIES:
        assert any(quantity in name for name in names), quantity
    assert any("108-atom" in name for name in names) and any("256-atom" in name for name in names)
    assert all(abs(value) < 1e-9 for value in _errors(result))
    lattice = next(r for r in result["rows"] if "lattice constant" in r["quantity"])
    assert lattice["reference"] == pytest.approx(3.59, abs=0.01)  # EMT's own Cu
    table = capsys.readouterr().out
    assert table.count("\n| ") == len(result["rows"]) + 2  # header, rule, one line a row


def test_cu_tiny_model_against_emt(tiny_sets):
    bench = load_benchmark("materials")
    test_data = os.path.join(tiny_sets, "cu_test_emt.h5")
    result = bench.main([CU_TINY, "--reference", "emt", "--quick", "--test-data", test_data])
    reference = bench.main(["emt", "--reference", "emt", "--quick", "--test-data", test_data])
    assert [r["quantity"] for r in result["rows"]] == [r["quantity"] for r in reference["rows"]]
    errors = _errors(result)
    assert all(math.isfinite(value) for value in errors)
    assert max(abs(value) for value in errors) > 0.1  # a model, not the reference itself
    rows = {r["quantity"]: r for r in result["rows"]}
    lattice = rows["fcc Cu: lattice constant"]
    assert abs(lattice["error"]) < 2.0  # % : trained on EMT copper
    forces = [r for q, r in rows.items() if "force MAE" in q and "nearer" not in q]
    assert all(0.0 < r["model"] < 500.0 for r in forces)  # meV/A
    # atoms nearer a neighbour than any training cell's may be far off, but not NaN
    assert all(r["model"] > 0.0 for q, r in rows.items() if "nearer" in q)


def test_alloy_and_relabelled_cells(tiny_sets):
    """Cu3Au, random-alloy and formation-energy rows are zero for EMT against EMT; held-out
    cells whose file was labelled by another spec are labelled again."""
    bench = load_benchmark("materials")
    test_data = os.path.join(tiny_sets, "cuau_test_emt.h5")
    result = bench.main(["emt", "--reference", "ase.calculators.emt:EMT", "--system", "cuau",
                         "--quick", "--test-data", test_data])  # fmt: skip
    names = [row["quantity"] for row in result["rows"]]
    for quantity in ("L1_2 Cu3Au: C44", "Au site", "phonons at R", "random Cu50Au50",
                     "formation energy, L1_0 CuAu", "formation energy MAE"):  # fmt: skip
        assert any(quantity in name for name in names), quantity
    assert any("labelled again by ase.calculators.emt:EMT" in name for name in names)
    assert all(abs(value) < 1e-9 for value in _errors(result))


def test_missing_held_out_cells_is_a_clear_error(tmp_path):
    bench = load_benchmark("materials")
    missing = str(tmp_path / "nothing.h5")
    with pytest.raises(SystemExit, match="held-out cells not found: .*nothing.h5"):
        bench.main(["emt", "--quick", "--test-data", missing])


def test_cell_errors_split_by_the_training_forces():
    """With the training data's largest force, the force MAE is also given over the cells
    within it and over those beyond it (extrapolation), each cell counted once."""
    from ase.build import bulk

    cp = load_benchmark("crystal_properties")
    cells = []
    for std in (0.02, 0.2):  # a cool cell and one with close contacts
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.positions += np.random.default_rng(0).normal(0.0, std, atoms.positions.shape)
        atoms.calc = EMT()
        cells.append((atoms, {"energy": atoms.get_potential_energy(),
                              "forces": atoms.get_forces() + 0.001 * (std > 0.1),
                              "stress": atoms.get_stress()}))  # fmt: skip
    largest = [float(np.abs(labels["forces"]).max()) for _, labels in cells]
    assert largest[0] < largest[1]
    e = cp.cell_errors(cells, EMT(), max_force=0.5 * sum(largest))
    assert (e["cells_within"], e["cells_beyond"]) == (1, 1)
    assert e["forces_mae_within"] == pytest.approx(0.0, abs=1e-9)
    assert e["forces_mae_beyond"] == pytest.approx(1.0)  # meV/A: the hot cell's offset
    assert e["forces_mae"] == pytest.approx(0.5)
    assert "cells_within" not in cp.cell_errors(cells, EMT())


def test_formation_energies_of_emt_against_emt(capsys, monkeypatch):
    bench = load_benchmark("formation_energies")
    full = bench.structures()
    assert len(full) == 10  # 3 ordered + 7 random 32-atom cells
    ordered = {name: full[name] for name in ("L1_2 Cu3Au", "L1_0 CuAu", "L1_2 CuAu3")}
    monkeypatch.setattr(bench, "structures", lambda: ordered)  # the random cells are slow
    values, pure = bench.formation(bench.materials.make_calculator("emt"), ordered)
    # EMT orders Cu3Au (negative formation energy) and leaves CuAu3 above the pure crystals
    assert values["L1_2 Cu3Au"] < 0 < values["L1_2 CuAu3"]
    assert pure[bench.materials.AU] != pure[bench.materials.CU]
    assert bench.main(["emt", "--reference", "emt"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")
    assert float(row[2]) == 0.0 and float(row[3]) == 0.0  # MAE and mean error against itself


def test_cell_errors_split_by_the_training_distances(tmp_path):
    """With the training data's shortest interatomic distance, the force MAE is also
    given over the atoms nearer a neighbour than it and over the others, each atom once."""
    from ase.build import bulk

    cp = load_benchmark("crystal_properties")
    common = load_benchmark("common")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.positions[0] += 0.3 * np.array([1.0, 1.0, 0.0]) / np.sqrt(2)  # towards a neighbour
    atoms.calc = EMT()
    offset = np.zeros((len(atoms), 3))
    offset[0] = 0.002  # eV/A on the close atom's components
    labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces() + offset,
              "stress": atoms.get_stress()}  # fmt: skip
    nearest = 3.6 / np.sqrt(2)
    e = cp.cell_errors([(atoms, labels)], EMT(), min_distance=0.9 * nearest)
    # atom 0 and the neighbour it was pushed to lie nearer than 0.9 of the lattice's
    close = e["atoms_close"]
    assert close == 2 and e["atoms_far"] == len(atoms) - close
    assert e["forces_mae_close"] == pytest.approx(1000 * 0.002 / close)
    assert e["forces_mae_far"] == pytest.approx(0.0, abs=1e-9)
    assert "atoms_close" not in cp.cell_errors([(atoms, labels)], EMT())
    # the shortest distance of a file, against all minimum-image distances of its cells
    from mlip.data.hdf5 import H5Dataset

    path = os.path.join(ROOT, "datasets", "cu_small.h5")
    dataset = H5Dataset(path)
    shortest = math.inf
    for structure in dataset.iterate(range(len(dataset))):
        distances = structure.to_atoms().get_all_distances(mic=True)
        shortest = min(shortest, distances[distances > 0].min())
    assert common.training_min_distance(path) == pytest.approx(shortest, abs=1e-9)
