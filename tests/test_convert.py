"""Conversion to and from mlip-hdf5: round trips, unit conversions, errors, atomic writes."""

from __future__ import annotations

from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from mlip.cli import main
from mlip.data.convert import convert, detect_format
from mlip.data.formats import read_mlip
from mlip.data.graph import Structure, voigt_to_matrix
from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION
from mlip.data.writer import Group, write_mlip_hdf5
from mlip.errors import DataError

# Hand-entered unit factors (CODATA): checks the code's ase.units-based conversions.
KCAL_MOL_EV = 0.0433641
HARTREE_EV = 27.211386
BOHR_A = 0.529177
DATASETS = Path(__file__).resolve().parents[1] / "datasets"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data"


def labelled(atoms: Atoms, rng: np.random.Generator, stress: bool = False) -> Atoms:
    """Attach random (but fixed) energy/forces(/stress) results to a copy of ``atoms``."""
    atoms = atoms.copy()
    results = {"energy": float(rng.normal()), "forces": rng.normal(size=(len(atoms), 3))}
    if stress:
        results["stress"] = rng.normal(size=6) * 1e-2
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def h5_group(path: Path, name: str) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        return {key: h5[name][key][()] for key in h5[name]}


def test_extxyz_h5_extxyz_round_trip_through_cli(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    base = molecule("CH3CH2OH")
    frames = []
    for _ in range(5):
        atoms = base.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        frames.append(labelled(atoms, rng))
    ase.io.write(tmp_path / "in.xyz", frames, format="extxyz")
    original = ase.io.read(tmp_path / "in.xyz", index=":")

    assert main(["convert", str(tmp_path / "in.xyz"), str(tmp_path / "out.h5")]) == 0
    printed = capsys.readouterr().out
    assert "C2H6O: 9 atoms, 5 conformers, labels: energy forces" in printed

    with h5py.File(tmp_path / "out.h5", "r") as h5:
        assert h5.attrs["format"] == FORMAT_NAME and h5.attrs["version"] == FORMAT_VERSION
        assert h5.attrs["energy_unit"] == "eV" and h5.attrs["length_unit"] == "Angstrom"
        assert list(h5) == ["C2H6O"]
    data = h5_group(tmp_path / "out.h5", "C2H6O")
    assert set(data) == {"atomic_numbers", "positions", "energy", "forces"}  # no cell/pbc
    np.testing.assert_array_equal(data["atomic_numbers"], base.numbers)
    np.testing.assert_array_equal(data["positions"], [a.positions for a in original])
    np.testing.assert_array_equal(data["energy"], [a.get_potential_energy() for a in original])
    np.testing.assert_array_equal(data["forces"], [a.get_forces() for a in original])

    assert main(["convert", str(tmp_path / "out.h5"), str(tmp_path / "back.xyz")]) == 0
    back = ase.io.read(tmp_path / "back.xyz", index=":")
    assert len(back) == len(original)
    for a, b in zip(original, back, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_allclose(b.positions, a.positions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), rtol=0, atol=1e-12)
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-12)
        assert not b.pbc.any()


def test_traj_with_mixed_compositions_is_grouped(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    water = molecule("H2O")  # O H H
    reordered = water[[1, 0, 2]]  # H O H: same formula, other ordering
    methane = molecule("CH4")
    frames = [labelled(a, rng) for a in (water, methane, water, reordered, methane, water)]
    ase.io.write(tmp_path / "mixed.traj", frames)

    result = convert(tmp_path / "mixed.traj", tmp_path / "mixed.h5")
    counts = {s.name: s.num_conformers for s in result.groups}
    assert counts == {"H2O": 3, "CH4": 2, "H2O_1": 1}
    groups = {g.name: g for g in read_mlip(tmp_path / "mixed.h5")}
    np.testing.assert_array_equal(groups["H2O_1"].structures[0].atomic_numbers, [1, 8, 1])
    for name, frame_ids in {"H2O": [0, 2, 5], "CH4": [1, 4], "H2O_1": [3]}.items():
        for s, k in zip(groups[name].structures, frame_ids, strict=True):
            np.testing.assert_array_equal(s.positions, frames[k].positions)
            np.testing.assert_array_equal(s.forces, frames[k].get_forces())
            assert s.energy == frames[k].get_potential_energy()


def test_periodic_with_stress_keeps_cell_pbc_and_voigt_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames = []
    for _ in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 1))
        shear = np.eye(3) + rng.normal(scale=0.02, size=(3, 3))  # off-diagonal stress
        atoms.set_cell(atoms.cell.array @ shear, scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(1000)))
        atoms.calc = EMT()
        results = {
            "energy": atoms.get_potential_energy(),
            "forces": atoms.get_forces(),
            "stress": atoms.get_stress(),
        }
        full_stress = atoms.get_stress(voigt=False)
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append((atoms, full_stress))
    ase.io.write(tmp_path / "cu.traj", [a for a, _ in frames])

    convert(tmp_path / "cu.traj", tmp_path / "cu.h5")
    data = h5_group(tmp_path / "cu.h5", "Cu16")
    np.testing.assert_array_equal(data["pbc"], [True, True, True])
    for k, (atoms, full_stress) in enumerate(frames):
        np.testing.assert_array_equal(data["cell"][k], atoms.cell.array)
        assert abs(full_stress[0, 1]) > 1e-4  # the check below is not trivially zero
        np.testing.assert_allclose(voigt_to_matrix(data["stress"][k]), full_stress, atol=1e-15)

    convert(tmp_path / "cu.h5", tmp_path / "cu_back.xyz")
    for (atoms, full_stress), b in zip(
        frames, ase.io.read(tmp_path / "cu_back.xyz", ":"), strict=True
    ):
        np.testing.assert_allclose(b.cell.array, atoms.cell.array, atol=1e-12)
        assert b.pbc.all()
        np.testing.assert_allclose(b.get_stress(voigt=False), full_stress, atol=1e-10)


def test_rmd17_npz_kcal_per_mol_to_ev(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    coords = rng.normal(size=(4, 3, 3))
    energies = np.array([-1000.0, -1001.5, 2.0, 0.25])  # kcal/mol
    forces = rng.normal(size=(4, 3, 3)) * 30.0  # kcal/mol/A
    path = tmp_path / "rmd17_water.npz"
    np.savez(path, nuclear_charges=np.array([8, 1, 1]), coords=coords, energies=energies,
             forces=forces, old_indices=np.arange(4))  # fmt: skip
    assert detect_format(path) == "rmd17"
    convert(path, tmp_path / "water.h5")
    data = h5_group(tmp_path / "water.h5", "water")  # group name: stem without "rmd17_"
    np.testing.assert_allclose(data["energy"], energies * KCAL_MOL_EV, rtol=1e-6)
    np.testing.assert_allclose(data["forces"], forces * KCAL_MOL_EV, rtol=1e-6)
    np.testing.assert_array_equal(data["positions"], coords)


def write_ani1x(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    source = {
        "coordinates": rng.normal(size=(3, 5, 3)).astype(np.float32),  # A, float32 in ANI-1x
        "wb97x_dz.energy": np.array([-40.5, np.nan, -40.25]),  # Hartree
        "wb97x_dz.forces": rng.normal(size=(3, 5, 3)) * 0.05,  # Hartree/A
        "wb97x_tz.energy": np.array([np.nan, -40.75, np.nan]),
    }
    source["wb97x_dz.forces"][1] = np.nan  # NaN like the energy: skipped, not an error
    with h5py.File(path, "w") as h5:
        group = h5.create_group("C1H4")
        group["atomic_numbers"] = np.array([6, 1, 1, 1, 1], dtype=np.uint8)
        for key, value in source.items():
            group[key] = value
    return source


def test_ani1x_hartree_to_ev_and_nan_energies_skipped(tmp_path: Path) -> None:
    source = write_ani1x(tmp_path / "ani1x.h5", np.random.default_rng(4))
    assert detect_format(tmp_path / "ani1x.h5") == "ani1x"
    convert(tmp_path / "ani1x.h5", tmp_path / "dz.h5")
    data = h5_group(tmp_path / "dz.h5", "C1H4")
    np.testing.assert_allclose(data["energy"], np.array([-40.5, -40.25]) * HARTREE_EV, rtol=1e-7)
    forces = source["wb97x_dz.forces"][[0, 2]] * HARTREE_EV  # Hartree/A -> eV/A
    np.testing.assert_allclose(data["forces"], forces, rtol=1e-7)
    np.testing.assert_array_equal(data["positions"], source["coordinates"][[0, 2]])

    convert(tmp_path / "ani1x.h5", tmp_path / "tz.h5", level_of_theory="wb97x_tz")
    data = h5_group(tmp_path / "tz.h5", "C1H4")
    np.testing.assert_allclose(data["energy"], [-40.75 * HARTREE_EV], rtol=1e-7)
    assert "forces" not in data
    with pytest.raises(DataError, match=r"wb97x_dz.*wb97x_tz|field 'pbe\.energy'"):
        convert(tmp_path / "ani1x.h5", tmp_path / "pbe.h5", level_of_theory="pbe")
    assert not (tmp_path / "pbe.h5").exists()


def write_spice(path: Path, rng: np.random.Generator, nan_in: str | None = None) -> dict:
    molecules = {}
    with h5py.File(path, "w") as h5:
        for name, numbers in (("water", [8, 1, 1]), ("ammonia", [7, 1, 1, 1])):
            m, n = 2, len(numbers)
            data = {
                "conformations": rng.normal(size=(m, n, 3)) * 2.0,  # Bohr
                "dft_total_energy": rng.normal(size=m) - 76.0,  # Hartree
                "dft_total_gradient": rng.normal(size=(m, n, 3)) * 0.02,  # Hartree/Bohr
            }
            if name == nan_in:
                data["dft_total_gradient"][1, 0, 2] = np.nan
            group = h5.create_group(name)
            group["atomic_numbers"] = np.array(numbers, dtype=np.int16)
            group["smiles"] = [f"[{name}]".encode()]
            for key, value in data.items():
                group[key] = value
            molecules[name] = data
    return molecules


def test_spice_bohr_hartree_and_forces_are_minus_gradient(tmp_path: Path) -> None:
    source = write_spice(tmp_path / "spice.hdf5", np.random.default_rng(5))
    assert detect_format(tmp_path / "spice.hdf5") == "spice"
    convert(tmp_path / "spice.hdf5", tmp_path / "out.h5")
    for name, raw in source.items():
        data = h5_group(tmp_path / "out.h5", name)
        np.testing.assert_allclose(data["positions"], raw["conformations"] * BOHR_A, rtol=1e-6)
        np.testing.assert_allclose(data["energy"], raw["dft_total_energy"] * HARTREE_EV, rtol=1e-7)
        expected = -raw["dft_total_gradient"] * HARTREE_EV / BOHR_A
        np.testing.assert_allclose(data["forces"], expected, rtol=1e-6)
    with h5py.File(tmp_path / "out.h5", "r") as h5:
        assert h5["water"].attrs["smiles"] == "[water]"
        assert "wB97M" in h5.attrs["level_of_theory"]


def test_bad_inputs_raise_data_error_naming_file_group_field(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    npz = tmp_path / "rmd17_bad.npz"
    np.savez(npz, nuclear_charges=np.array([1, 1]), coords=rng.normal(size=(3, 2, 3)),
             energies=np.zeros(3))  # fmt: skip
    with pytest.raises(DataError, match="field 'forces'") as err:
        convert(npz, tmp_path / "a.h5")
    assert err.value.file == str(npz) and err.value.field == "forces"

    np.savez(npz, nuclear_charges=np.array([1, 1]), coords=rng.normal(size=(3, 2, 3)),
             energies=np.zeros(3), forces=np.zeros((3, 3, 3)))  # fmt: skip
    with pytest.raises(DataError, match=r"field 'forces'.*shape \(3, 3, 3\)"):
        convert(npz, tmp_path / "a.h5")

    write_spice(tmp_path / "nan.hdf5", rng, nan_in="ammonia")
    with pytest.raises(DataError) as err:
        convert(tmp_path / "nan.hdf5", tmp_path / "a.h5")
    assert (err.value.group, err.value.field, err.value.index) == (
        "ammonia",
        "dft_total_gradient",
        1,
    )

    frames = [labelled(molecule("H2O"), rng) for _ in range(3)]
    frames[1].calc = SinglePointCalculator(frames[1], energy=1.0)  # no forces on frame 1
    ase.io.write(tmp_path / "partial.traj", frames)
    with pytest.raises(DataError, match="group 'H2O', field 'forces'"):
        convert(tmp_path / "partial.traj", tmp_path / "a.h5")
    ase.io.write(tmp_path / "plain.xyz", molecule("H2O"), format="xyz")
    with pytest.raises(DataError, match="field 'energy', conformer 0: frame has no energy"):
        convert(tmp_path / "plain.xyz", tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()


def test_unknown_format_is_a_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "data.foo").write_text("12 apples\n")
    with pytest.raises(ValueError, match="unknown format"):
        detect_format(tmp_path / "data.foo")
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5.create_group("g")["x"] = np.zeros(3)
    assert main(["convert", str(tmp_path / "other.h5"), str(tmp_path / "o.h5")]) == 1
    assert "HDF5 layout not recognised" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not an ASE format that can write"):
        convert(tmp_path / "other.h5", tmp_path / "out.nothing")


def test_failure_midway_leaves_no_partial_output(tmp_path: Path, capsys) -> None:
    # "water" is valid and streamed into the file first; "ammonia" fails afterwards.
    write_spice(tmp_path / "spice.hdf5", np.random.default_rng(7), nan_in="ammonia")
    before = set(tmp_path.iterdir())
    assert main(["convert", str(tmp_path / "spice.hdf5"), str(tmp_path / "out.h5")]) == 1
    assert "group 'ammonia', field 'dft_total_gradient', conformer 1" in capsys.readouterr().err
    assert set(tmp_path.iterdir()) == before  # neither output nor temporary file


def test_refuses_to_overwrite_unless_forced(tmp_path: Path, capsys) -> None:
    write_spice(tmp_path / "spice.hdf5", np.random.default_rng(8))
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    assert main(["convert", str(tmp_path / "spice.hdf5"), str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["convert", str(tmp_path / "spice.hdf5"), str(out), "--force"]) == 0
    assert set(h5_group(out, "water")) >= {"positions", "energy", "forces"}


def test_writer_nan_hessian_rows_chunking_and_label_consistency(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    numbers = np.array([8, 1, 1])
    hessian = rng.normal(size=(9, 9))
    structures = [
        Structure(
            numbers,
            rng.normal(size=(3, 3)),
            energy=float(k),
            forces=rng.normal(size=(3, 3)),
            hessian=hessian + hessian.T if k == 1 else None,
        )  # fmt: skip
        for k in range(3)
    ]
    write_mlip_hdf5(tmp_path / "w.h5", [Group("water", structures)], level_of_theory="toy")
    with h5py.File(tmp_path / "w.h5", "r") as h5:
        h = h5["water/hessian"]
        assert h.shape == (3, 9, 9) and h.chunks[1:] == (9, 9) and h.compression == "gzip"
        assert h5.attrs["level_of_theory"] == "toy"
        values = h[()]
    assert np.isnan(values[[0, 2]]).all()
    np.testing.assert_array_equal(values[1], hessian + hessian.T)
    read = next(iter(read_mlip(tmp_path / "w.h5"))).structures
    assert [s.hessian is not None for s in read] == [False, True, False]

    structures[2].forces = None
    with pytest.raises(DataError, match="field 'forces', conformer 2"):
        write_mlip_hdf5(tmp_path / "bad.h5", {"water": structures})
    with pytest.raises(DataError, match="illegal HDF5 group name"):
        write_mlip_hdf5(tmp_path / "bad.h5", {"a/b": structures[:1]})
    assert not (tmp_path / "bad.h5").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5"]


def test_group_names_survive_h5_to_extxyz_to_h5(tmp_path: Path, capsys) -> None:
    source = DATASETS / "ethanol_small.h5"
    convert(source, tmp_path / "eth.xyz")
    result = convert(tmp_path / "eth.xyz", tmp_path / "eth.h5")
    assert [(s.name, s.num_conformers) for s in result.groups] == [
        ("ethanol", 300),
        ("ethanol_minimum", 1),
    ]  # same formula, kept apart by the group name stored in each frame
    for name in ("ethanol", "ethanol_minimum"):
        a, b = h5_group(source, name), h5_group(tmp_path / "eth.h5", name)
        np.testing.assert_array_equal(b["energy"], a["energy"])
        np.testing.assert_allclose(b["positions"], a["positions"], rtol=0, atol=1e-8)
        np.testing.assert_allclose(b["forces"], a["forces"], rtol=0, atol=1e-8)
        assert "hessian" not in b  # extxyz cannot hold Hessians


def test_subsets_have_the_requested_content() -> None:
    expected = {
        "ethanol_small.h5": {"ethanol": (300, 60), "ethanol_minimum": (1, 1)},
        "cu_small.h5": {"cu_bulk": (60, 5), "cu_bulk_vacancy": (30, 0)},
    }
    total = 0
    for file, groups in expected.items():
        path = DATASETS / file
        total += path.stat().st_size
        with h5py.File(path, "r") as h5:
            assert set(h5) == set(groups)
            for name, (count, hessians) in groups.items():
                g = h5[name]
                assert g["energy"].shape == (count,)
                has = np.isfinite(g["hessian"][:, 0, 0]).sum() if "hessian" in g else 0
                assert has == hessians
                reference = REFERENCE / g.attrs["source_file"]
                if reference.exists():  # values are copies of the reference conformers
                    with h5py.File(reference, "r") as ref:
                        idx = g.attrs["source_indices"]
                        np.testing.assert_array_equal(g["forces"][()], ref[name]["forces"][idx])
                        np.testing.assert_array_equal(g["energy"][()], ref[name]["energy"][idx])
    assert total < 3e6
