"""One way to do each thing: structure specs, Structure <-> Atoms, element check, writes."""

from __future__ import annotations

import os
import stat

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from mlip.calculator import MLIPCalculator
from mlip.data.graph import Structure
from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION, H5Dataset
from mlip.data.spec import StructureSpec, parse_structure_spec, read_atoms, read_conformer
from mlip.data.writer import write_mlip_hdf5
from mlip.errors import DataError, UnknownElementError, check_known_elements
from mlip.fileio import atomic_path, atomic_write_text
from mlip.md import ForceField, from_atoms, read_structures
from mlip.potentials import HarmonicBonds
from mlip.vib import read_structure

DATASETS = os.path.join(os.path.dirname(__file__), "..", "datasets")
SMALL = os.path.join(DATASETS, "ethanol_small.h5")  # groups: ethanol (300), ethanol_minimum (1)


def test_format_name_on_disk_never_changes() -> None:
    """Files on disk carry this name: changing it would make every existing file unreadable."""
    assert FORMAT_NAME == "mlip-hdf5" and FORMAT_VERSION == 1


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("water.xyz", StructureSpec("water.xyz")),
        ("run/md.traj", StructureSpec("run/md.traj")),
        ("a.h5", StructureSpec("a.h5", True)),
        ("a.h5:", StructureSpec("a.h5", True)),
        ("a.h5:g", StructureSpec("a.h5", True, "g")),
        ("a.h5:g:3", StructureSpec("a.h5", True, "g", 3)),
        ("a.h5:g:-1", StructureSpec("a.h5", True, "g", -1)),
        ("a.h5::2", StructureSpec("a.h5", True, None, 2)),
        ("dir.h5/b.hdf5:g", StructureSpec("dir.h5/b.hdf5", True, "g")),
        ("B.HDF5:g:1", StructureSpec("B.HDF5", True, "g", 1)),
        ("c.hdf:g", StructureSpec("c.hdf", True, "g")),
    ],
)
def test_parse_structure_spec(spec: str, expected: StructureSpec) -> None:
    assert parse_structure_spec(spec) == expected


@pytest.mark.parametrize("spec, match", [("a.h5:g:1:2", "expected"), ("a.h5:g:x", "INDEX")])
def test_malformed_specs_are_named(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        parse_structure_spec(spec)
    assert spec in str(err.value)


def _one_group_file(path, m: int = 3) -> str:  # noqa: ANN001
    """Group 'water': m conformers, conformer k shifted by 0.01 k A with energy k eV."""
    water = molecule("H2O")
    structures = [
        Structure(water.numbers, water.positions + 0.01 * k, energy=float(k)) for k in range(m)
    ]
    write_mlip_hdf5(path, {"water": structures})
    return str(path)


def test_group_optional_only_for_a_one_group_file(tmp_path) -> None:
    path = _one_group_file(tmp_path / "w.h5")
    for spec in (path, f"{path}:water", f"{path}:water:0", f"{path}::0", f"{path}:water:-3"):
        assert read_conformer(spec).energy == 0.0, spec
    assert read_conformer(f"{path}::-1").energy == 2.0
    with pytest.raises(DataError, match=r"needs a group.*2 \(ethanol, ethanol_minimum\)") as err:
        read_conformer(SMALL)
    assert "ethanol_small.h5" in str(err.value)
    with pytest.raises(DataError, match=r"w.h5, group 'water': index 3 out of range"):
        read_conformer(f"{path}:water:3")
    with pytest.raises(DataError, match=r"w.h5.*'methane'.*not found.*water"):
        read_conformer(f"{path}:methane")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_conformer(str(tmp_path / "missing.h5:water"))
    with pytest.raises(FileNotFoundError, match="missing.xyz"):
        read_atoms(str(tmp_path / "missing.xyz"))


def test_vib_and_md_read_the_same_structures(tmp_path) -> None:
    one = _one_group_file(tmp_path / "w.h5")
    for spec in (f"{SMALL}:ethanol_minimum", f"{SMALL}:ethanol:-1", one, f"{one}::1"):
        atoms, _ = read_structure(spec)
        (md_atoms,) = read_structures(spec)
        np.testing.assert_array_equal(atoms.numbers, md_atoms.numbers)
        np.testing.assert_array_equal(atoms.positions, md_atoms.positions)
    frames = [molecule("H2O"), molecule("NH3")]
    ase.io.write(tmp_path / "two.xyz", frames)
    assert read_structure(str(tmp_path / "two.xyz"))[0].get_chemical_formula() == "H3N"
    assert [a.get_chemical_formula() for a in read_structures(str(tmp_path / "two.xyz"))] == [
        "H2O",
        "H3N",
    ]


def test_structure_atoms_round_trip() -> None:
    crystal = bulk("Cu", "fcc", a=3.61) * (2, 1, 1)
    for atoms in (molecule("CH3CH2OH"), crystal):
        structure = Structure.from_atoms(atoms)
        back = structure.to_atoms()
        np.testing.assert_array_equal(back.numbers, atoms.numbers)
        np.testing.assert_array_equal(back.positions, atoms.positions)
        np.testing.assert_array_equal(back.cell.array, atoms.cell.array)
        np.testing.assert_array_equal(back.pbc, atoms.pbc)
    assert Structure.from_atoms(crystal).cell.shape == (3, 3)
    boxed = Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]], cell=[5.0, 5.0, 5.0])
    assert Structure.from_atoms(boxed).cell is None and Structure.from_atoms(boxed).pbc is None
    np.testing.assert_array_equal(Structure.from_atoms(boxed, keep_cell=True).cell, 5 * np.eye(3))


def test_iterate_reads_in_chunks_in_the_given_order() -> None:
    ds = H5Dataset(SMALL)
    order = [5, 300, 2, 299, 7]
    got = list(ds.iterate(order, chunk=2))
    assert [ds.location(i)[1:] for i in order] == [(s.group, s.index) for s in got]
    assert sum(1 for _ in ds.iterate(chunk=128)) == len(ds) == 301
    with pytest.raises(ValueError, match="chunk"):
        next(ds.iterate(chunk=0))


def test_one_unknown_element_message_for_model_calculator_and_md() -> None:
    from support import evaluate, small_model

    expected = "element(s) C, Cl not known to the model; it knows H, O"
    with pytest.raises(UnknownElementError) as direct:
        check_known_elements([1, 17, 6, 6], [8, 1])
    check_known_elements([6], None)  # a model without atomic_numbers takes any element
    bad = Atoms("CHCl", positions=[[0, 0, 0], [0, 0, 1.1], [0, 0, -1.8]])
    with pytest.raises(UnknownElementError) as model_error:
        evaluate(small_model(atomic_numbers=(1, 8)), [Structure.from_atoms(bad)])
    bonds = HarmonicBonds([(0, 1)], k=10.0, d0=1.0)
    bonds.atomic_numbers = [1, 8]
    with pytest.raises(UnknownElementError) as calculator_error:
        MLIPCalculator(bonds).get_potential_energy(bad)
    with pytest.raises(UnknownElementError) as md_error:
        ForceField(bonds).check_elements(from_atoms(bad, temperature=0.0))
    messages = {str(e.value) for e in (direct, model_error, calculator_error, md_error)}
    assert messages == {expected}


def test_atomic_path_refuses_cleans_up_and_sets_permissions(tmp_path) -> None:
    target = tmp_path / "out.h5"
    with atomic_path(target) as temp:
        assert temp.parent == tmp_path and temp.suffix == ".h5"
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(FileExistsError, match="out.h5"), atomic_path(target, overwrite=False):
        pass
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as temp:
        temp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.h5"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_path(tmp_path / "no" / "x.h5", create_folder=False):
            pass
    atomic_write_text(tmp_path / "new" / "dir" / "a.json", "{}")  # creates the folder
    assert (tmp_path / "new" / "dir" / "a.json").read_text() == "{}"


def test_structure_from_atoms_copies_the_geometry():
    """A Structure taken from moving atoms keeps the geometry it was taken at."""
    from ase.build import molecule

    from mlip.data.graph import Structure

    atoms = molecule("H2O")
    frame = Structure.from_atoms(atoms)
    before = frame.positions.copy()
    atoms.positions += 0.1
    atoms.numbers[0] = 9
    assert np.array_equal(frame.positions, before) and frame.atomic_numbers[0] == 8
