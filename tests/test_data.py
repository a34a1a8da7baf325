"""HDF5 reader, neighbour lists, model files: good input read right, bad input named."""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list
from support import ethanol, evaluate, small_model

from mlip import keys
from mlip.data.graph import Structure, build_batch, neighbor_list
from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION, H5Dataset
from mlip.errors import CheckpointError, DataError, UnknownElementError
from mlip.model import load_model

DATASETS = os.path.join(os.path.dirname(__file__), "..", "datasets")


def write_file(path, groups: dict, attrs=None) -> str:
    attrs = {"format": FORMAT_NAME, "version": FORMAT_VERSION} if attrs is None else attrs
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs)
        for name, fields in groups.items():
            g = f.create_group(name)
            for key, value in fields.items():
                g[key] = value
    return str(path)


def water_group(m: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    hessian = np.full((m, 9, 9), np.nan)
    hessian[1] = np.eye(9)
    return {
        "atomic_numbers": np.array([8, 1, 1]),
        "positions": base + 0.02 * rng.standard_normal((m, 3, 3)),
        "energy": rng.standard_normal(m),
        "forces": rng.standard_normal((m, 3, 3)),
        "hessian": hessian,
    }


def test_reads_shipped_subsets():
    ds = H5Dataset(os.path.join(DATASETS, "ethanol_small.h5"), groups=["ethanol"])
    assert len(ds) == 300 and ds.elements == [1, 6, 8]
    assert ds.hessian_mask.sum() == 60
    s = ds[int(np.nonzero(ds.hessian_mask)[0][0])]
    assert s.hessian.shape == (27, 27) and np.allclose(s.hessian, s.hessian.T, atol=1e-6)
    cu = H5Dataset(os.path.join(DATASETS, "cu_small.h5"))
    s = cu[0]
    assert s.pbc.all() and s.cell.shape == (3, 3) and s.stress.shape == (6,)


def test_get_many_order_and_labels(tmp_path):
    group = water_group()
    ds = H5Dataset(write_file(tmp_path / "w.h5", {"water": group, "water2": water_group(3, 1)}))
    assert len(ds) == 7
    picked = ds.get_many([5, 1, 3, 1])
    assert [s.index for s in picked] == [1, 1, 3, 1]
    assert ds.location(5)[1:] == ("water2", 1)
    assert np.allclose(picked[1].positions, group["positions"][1])
    assert picked[1].hessian is not None and picked[2].hessian is None
    assert list(ds.hessian_mask) == [False, True, False, False, False, True, False]
    clone = pickle.loads(pickle.dumps(ds))  # picklable for workers / distributed
    assert clone[3].energy == ds[3].energy


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda g: g.pop("energy"), "energy"),
        (lambda g: g.pop("positions"), "positions"),
        (lambda g: g.update(forces=np.zeros((4, 2, 3))), "forces"),
        (lambda g: g.update(positions=np.zeros((5, 3, 3))), "positions"),
        (lambda g: g.update(hessian=np.zeros((4, 9, 8))), "hessian"),
        (lambda g: g.update(atomic_numbers=np.array([8, 1, 0])), "atomic_numbers"),
    ],
)
def test_layout_errors_name_file_group_field(tmp_path, change, field):
    group = water_group()
    change(group)
    path = write_file(tmp_path / "bad.h5", {"water": group})
    with pytest.raises(DataError) as err:
        H5Dataset(path)
    message = str(err.value)
    assert "bad.h5" in message and "'water'" in message and f"'{field}'" in message


@pytest.mark.parametrize("field", ["energy", "forces", "positions"])
def test_nan_labels_name_the_conformer(tmp_path, field):
    group = water_group()
    group[field] = np.array(group[field], dtype=float)
    group[field][2] = np.nan if field != "positions" else np.inf
    ds = H5Dataset(write_file(tmp_path / "nan.h5", {"water": group}))
    ds[1]  # clean conformers still read
    with pytest.raises(DataError, match=rf"'water', field '{field}', conformer 2"):
        ds.get_many([0, 2])


def test_partly_nan_hessian_is_an_error(tmp_path):
    group = water_group()
    group["hessian"][1, 0, 0] = np.nan
    ds = H5Dataset(write_file(tmp_path / "h.h5", {"water": group}))
    with pytest.raises(DataError, match="field 'hessian', conformer 1"):
        ds[1]


@pytest.mark.parametrize(
    "attrs, match",
    [
        ({"format": "other", "version": 1}, "format"),
        ({"format": FORMAT_NAME, "version": 7}, "version"),
        ({"version": 1}, "format"),
        ({"format": FORMAT_NAME, "version": 1, "energy_unit": "Hartree"}, "energy_unit"),
    ],
)
def test_file_attribute_errors(tmp_path, attrs, match):
    path = write_file(tmp_path / "a.h5", {"water": water_group()}, attrs)
    with pytest.raises(DataError, match=match):
        H5Dataset(path)


def test_missing_file_group_and_not_hdf5(tmp_path):
    with pytest.raises(DataError, match="not found"):
        H5Dataset(tmp_path / "nothing.h5")
    path = write_file(tmp_path / "w.h5", {"water": water_group()})
    with pytest.raises(DataError, match="methane"):
        H5Dataset(path, groups=["methane"])
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(DataError, match="junk.h5"):
        H5Dataset(junk)


@pytest.mark.parametrize("cell_scale", [1.0, 0.4])
def test_neighbor_list_matches_ase_including_small_cells(cell_scale):
    atoms = bulk("Cu", "fcc", a=3.61 * cell_scale) * (2, 1, 1)
    atoms.cell[1] += [0.3, 0.0, 0.2]  # skewed
    atoms.rattle(0.05, seed=1)
    i, j, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
    ai, aj, ashift = ase_neighbor_list("ijS", atoms, 4.0)
    ours = sorted(zip(i, j, map(tuple, shifts), strict=True))
    theirs = sorted(zip(ai, aj, map(tuple, ashift), strict=True))
    assert ours == theirs and len(ours) > 0


def test_unknown_element_is_named():
    model = small_model(atomic_numbers=(1, 6, 8))
    structure = Structure(np.array([6, 17]), np.array([[0.0, 0, 0], [1.7, 0, 0]]))
    with pytest.raises(UnknownElementError, match="Cl"):
        evaluate(model, [structure])


def test_model_file_round_trip_and_corrupt_files(tmp_path):
    model = small_model()
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = load_model(path)
    s = ethanol(9)
    a, b = evaluate(model, [s]), evaluate(loaded, [s])
    assert torch.allclose(a[keys.ENERGY], b[keys.ENERGY], rtol=1e-13, atol=0)
    assert torch.allclose(a[keys.FORCES], b[keys.FORCES], rtol=0, atol=1e-12)
    assert loaded.atomic_numbers == model.atomic_numbers
    assert load_model(path, dtype=torch.float32).atomic_energies.dtype == torch.float32

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_model(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not an mlip model"):
        load_model(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "absent.pt")


def test_failed_save_keeps_previous_model(tmp_path, monkeypatch):
    model = small_model()
    path = tmp_path / "model.pt"
    model.save(path)
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left


def test_deep_copied_model_state_round_trips():
    """e3nn code modules gain constant buffers when copied; state dicts must still match."""
    import copy

    model = small_model(hidden_l_max=2, num_channels=16)
    clone = copy.deepcopy(model)
    clone.load_state_dict(model.state_dict())
    model.load_state_dict(clone.state_dict())
    s = ethanol(12)
    assert torch.allclose(evaluate(model, [s])[keys.ENERGY], evaluate(clone, [s])[keys.ENERGY])


def test_structure_without_neighbours_is_named(tmp_path):
    from mlip.train.statistics import compute_statistics

    group = water_group()
    group["positions"][2] *= 20.0  # conformer 2: atoms ~20 A apart
    ds = H5Dataset(write_file(tmp_path / "far.h5", {"water": group}))
    compute_statistics(ds.get_many([0, 1]), [1, 8], r_max=5.0)  # fine
    with pytest.raises(DataError, match=r"far.h5, group 'water', field 'positions', conformer 2"):
        compute_statistics(ds.get_many([0, 2]), [1, 8], r_max=5.0)
    lone = Structure(np.array([8]), np.zeros((1, 3)), energy=-1.0)
    compute_statistics([ds[0], lone], [1, 8], r_max=5.0)  # an isolated-atom reference is fine


def test_kept_edges_follow_the_geometry():
    """A structure's neighbour list is computed once and reused, and recomputed when its
    positions, cell or cutoff change (a structure moved in place gets a fresh list)."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    s = Structure.from_atoms(atoms)
    first = s.edges(4.0)
    assert s.edges(4.0) is first
    fresh = neighbor_list(s.positions, s.cell, s.pbc, 4.0)
    assert all(np.array_equal(a, b) for a, b in zip(first, fresh, strict=True))
    assert len(s.edges(3.0)[0]) < len(first[0])  # another cutoff
    s.positions[0] += 0.6  # moved in place
    moved = s.edges(3.0)
    expected = neighbor_list(s.positions, s.cell, s.pbc, 3.0)
    assert all(np.array_equal(a, b) for a, b in zip(moved, expected, strict=True))
    s.cell = s.cell * 1.1  # a strained cell
    strained = s.edges(3.0)
    expected = neighbor_list(s.positions, s.cell, s.pbc, 3.0)
    assert all(np.array_equal(a, b) for a, b in zip(strained, expected, strict=True))


def test_neighbor_lists_and_batches_come_in_pairs():
    """A full list is ordered in pairs (the second half the reverses of the first, in the
    same order), and so is a batch of such lists (all first halves, then all second
    halves, marked EDGES_PAIRED); a batch holding a list with an edge whose reverse is
    missing is not marked."""
    small = bulk("Cu", "fcc", a=3.61 * 0.4)  # sees its own images
    small.rattle(0.02, seed=2)
    structures = [Structure.from_atoms(small), ethanol(1)]
    for structure in structures:
        i, j, shifts = structure.edges(4.0)
        half = len(i) // 2
        assert half > 0 and len(i) == 2 * half
        assert np.array_equal(i[:half], j[half:]) and np.array_equal(j[:half], i[half:])
        assert np.array_equal(shifts[:half], -shifts[half:])
    batch = build_batch(structures, 4.0, labels=False)
    assert keys.EDGES_PAIRED in batch
    edges, shifts = batch[keys.EDGE_INDEX], batch[keys.EDGE_SHIFTS]
    half = edges.shape[1] // 2
    assert torch.equal(edges[0, :half], edges[1, half:])
    assert torch.equal(edges[1, :half], edges[0, half:])
    assert torch.equal(shifts[:half], -shifts[half:])
    offset = structures[0].num_atoms
    plain = sorted(
        (int(a) + offset * k, int(b) + offset * k, tuple(c))
        for k, s in enumerate(structures)
        for a, b, c in zip(*s.edges(4.0), strict=True)
    )
    columns = (edges[0].tolist(), edges[1].tolist(), map(tuple, shifts.long().tolist()))
    ours = sorted(zip(*columns, strict=True))
    assert ours == plain  # the same edges, reordered

    i, j, shifts = structures[0].edges(4.0)
    lone = Structure.from_atoms(small)
    lone.edges(4.0)
    lone._edges = (*lone._edges[:4], (i[2:], j[2:], shifts[2:]))  # a list from elsewhere
    batch = build_batch([structures[1], lone], 4.0, labels=False)
    assert keys.EDGES_PAIRED not in batch
    assert torch.equal(batch[keys.EDGE_INDEX][0, -len(i) + 2 :], torch.as_tensor(i[2:]) + 9)
