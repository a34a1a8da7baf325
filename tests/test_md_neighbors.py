"""Device neighbour list: equality with vesin, Verlet-skin energies, rebuild trigger."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from support import small_model

from mlip import keys
from mlip.data.graph import Structure, build_batch
from mlip.data.graph import neighbor_list as vesin_neighbor_list
from mlip.derivatives import compute
from mlip.md import ForceField, VerletList, batched_neighbor_list, from_atoms
from mlip.potentials import LennardJones

pytestmark = pytest.mark.usefixtures("one_thread")


def as_set(i, j, shifts) -> set[tuple[int, ...]]:
    shifts = np.rint(np.asarray(shifts)).astype(np.int64)
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), *shifts.T.tolist(), strict=True))


def random_systems(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(positions, cell, pbc): random cells incl. a small skewed one and mixed/no pbc."""
    systems = []
    skewed = np.array([[2.1, 0.0, 0.0], [1.3, 1.9, 0.0], [0.9, -0.7, 2.3]])  # heights < cutoff
    systems.append((rng.uniform(-2, 5, (3, 3)), skewed, np.array([True, True, True])))
    for _ in range(3):
        cell = np.diag(rng.uniform(4, 9, 3)) + rng.uniform(-1.5, 1.5, (3, 3))
        n = int(rng.integers(2, 30))
        frac = rng.uniform(-0.5, 1.5, (n, 3))  # positions also outside the cell
        systems.append((frac @ cell, cell, rng.random(3) < 0.7))
    systems.append((rng.uniform(0, 6, (7, 3)), np.zeros((3, 3)), np.zeros(3, bool)))
    return systems


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_list_equals_vesin(seed):
    rng = np.random.default_rng(seed)
    systems = random_systems(rng)
    cutoff = 4.5
    positions = torch.tensor(np.concatenate([p for p, _, _ in systems]))
    sizes = [len(p) for p, _, _ in systems]
    system_idx = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    cell = torch.tensor(np.stack([c for _, c, _ in systems]))
    pbc = torch.tensor(np.stack([b for _, _, b in systems]))
    # small chunks: the enumeration must not depend on where chunks end
    edges, shifts = batched_neighbor_list(positions, cell, pbc, system_idx, sizes, cutoff, 977)
    start = np.cumsum([0] + sizes)
    expected = set()
    for k, (p, c, b) in enumerate(systems):
        i, j, s = vesin_neighbor_list(p, c if b.any() else None, b, cutoff)
        expected |= as_set(i + start[k], j + start[k], s)
    got = as_set(edges[0].numpy(), edges[1].numpy(), shifts.numpy())
    assert len(got) == edges.shape[1], "duplicate edges"
    assert got == expected
    assert (system_idx[edges[0]] == system_idx[edges[1]]).all()


@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True), (False, False, False)])
def test_cell_list_for_large_systems_equals_vesin(pbc):
    """Systems of >= cell_list_min_atoms atoms in tall cells are binned; same pairs."""
    rng = np.random.default_rng(7)
    cell = np.array([[13.0, 0.0, 0.0], [4.0, 14.0, 0.0], [-3.0, 2.0, 15.0]])  # skewed
    positions = rng.uniform(-0.3, 1.3, (300, 3)) @ cell  # also outside the cell
    pbc = np.array(pbc)
    small = (rng.uniform(0, 1, (20, 3)) @ cell, cell, pbc)  # batched with a small system
    systems = [(positions, cell, pbc), small]
    sizes = [300, 20]
    cutoff = 5.0
    edges, shifts = batched_neighbor_list(
        torch.tensor(np.concatenate([positions, small[0]])),
        torch.tensor(np.stack([cell, cell])),
        torch.tensor(np.stack([pbc, pbc])),
        torch.repeat_interleave(torch.arange(2), torch.tensor(sizes)),
        sizes,
        cutoff,
        max_candidates=20_000,  # several chunks of centre atoms
        cell_list_min_atoms=100,
    )
    expected = set()
    for k, (p, c, b) in enumerate(systems):
        i, j, s = vesin_neighbor_list(p, c if b.any() else None, b, cutoff)
        expected |= as_set(i + 300 * k, j + 300 * k, s)
    got = as_set(edges[0].numpy(), edges[1].numpy(), shifts.numpy())
    assert len(got) == edges.shape[1] and got == expected
    assert (edges[0][1:] >= edges[0][:-1]).all(), "edges sorted by centre"


def thermal_copper(seed: int, noise: float = 0.15):
    atoms = bulk("Cu", "fcc", a=3.61) * (2, 2, 2)
    atoms.set_cell(atoms.cell.array + np.array([[0, 0.2, 0], [0, 0, 0], [0.3, 0, 0]]), True)
    atoms.positions += np.random.default_rng(seed).normal(0, noise, atoms.positions.shape)
    return atoms


@pytest.mark.parametrize("model_name,prune", [("lj", False), ("learned", False), ("lj", True)])
def test_skin_list_energies_equal_exact_list(model_name, prune):
    model = LennardJones(0.4, 2.3, 4.0) if model_name == "lj" else small_model(r_max=3.5)
    systems = [thermal_copper(0), thermal_copper(1), molecule("CH3CH2OH")]
    if model_name == "lj":
        systems[2] = bulk("Cu", "fcc", a=3.61, cubic=True)  # LJ parameters are for Cu
    state = from_atoms(systems)
    ff = ForceField(model, skin=1.5, prune=prune)  # unpruned: the model sees r_max + skin
    ff.rebuild(state)
    # move every atom by less than skin / 2 (0.7 A): the list stays valid
    move = torch.randn(state.positions.shape, generator=torch.Generator().manual_seed(5))
    move = 0.7 * move / move.norm(dim=-1, keepdim=True)
    moved = state.replace(positions=state.positions + move)
    assert not bool(ff.neighbors.is_stale(moved.positions))
    got = ff(moved)
    assert ff.neighbors.builds == 1
    structures = [Structure.from_atoms(a) for a in moved.to_atoms()]
    exact = compute(model, build_batch(structures, model.r_max, labels=False))
    n_skin = ff.neighbors.edge_index.shape[1]
    assert n_skin > build_batch(structures, model.r_max)[keys.EDGE_INDEX].shape[1]
    torch.testing.assert_close(got.energy, exact[keys.ENERGY], rtol=0, atol=1e-10)
    torch.testing.assert_close(got.forces, exact[keys.FORCES], rtol=0, atol=1e-10)


def test_rebuild_trigger():
    state = from_atoms(bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2))
    nl = VerletList(r_max=4.0, skin=1.0)
    assert bool(nl.is_stale(state.positions)), "an unbuilt list is stale"
    nl.build(state.positions, state.cell, state.pbc, state.system_idx, [state.n_atoms])
    for distance, stale in [(0.0, False), (0.49, False), (0.51, True)]:
        pos = state.positions.clone()
        pos[7] += torch.tensor([0.6, -0.8, 0.0], dtype=pos.dtype) * distance
        assert bool(nl.is_stale(pos)) == stale, distance
    ff = ForceField(LennardJones(0.4, 2.3, 4.0), skin=1.0)
    ff(state)
    assert ff.neighbors.builds == 1
    ff(state.replace(positions=state.positions + 0.25))  # rigid shift < skin / 2: no rebuild
    assert ff.neighbors.builds == 1
    pos = state.positions.clone()
    pos[3, 2] += 0.6
    ff(state.replace(positions=pos))
    assert ff.neighbors.builds == 2


def test_deferred_flag_does_not_rebuild_until_read():
    state = from_atoms(bulk("Cu", "fcc", a=3.61, cubic=True))
    ff = ForceField(LennardJones(0.4, 2.3, 4.0), skin=1.0, deferred=True)
    ff(state)
    pos = state.positions.clone()
    pos[0, 0] += 0.8
    ff(state.replace(positions=pos))
    assert ff.neighbors.builds == 1  # no host read inside deferred calls
    assert ff.take_stale_flag() is True
    assert ff.take_stale_flag() is False


def test_zero_volume_cell_is_rejected():
    positions = torch.zeros(2, 3, dtype=torch.float64)
    positions[1, 0] = 1.0
    cell = torch.tensor([[[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]]], dtype=torch.float64)
    pbc = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="zero volume"):
        batched_neighbor_list(positions, cell, pbc, torch.zeros(2, dtype=torch.long), [2], 3.0)


def deform(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A deformation gradient F (cell -> cell @ F): isotropic or a general strain."""
    if kind == "isotropic":
        return rng.uniform(0.93, 1.07) * np.eye(3)
    return np.eye(3) + rng.uniform(-0.04, 0.04, (3, 3))


def missing_pairs(nl: VerletList, systems, positions: np.ndarray, cells, r_max: float) -> int:
    """Pairs within r_max of a fresh vesin list that the stored list lacks."""
    stored = as_set(nl.edge_index[0].numpy(), nl.edge_index[1].numpy(), nl.edge_shifts.numpy())
    start = np.cumsum([0] + [len(p) for p, _, _ in systems])
    expected = set()
    for k, (_, _, b) in enumerate(systems):
        p = positions[start[k] : start[k + 1]]
        i, j, s = vesin_neighbor_list(p, cells[k] if b.any() else None, b, r_max)
        expected |= as_set(i + start[k], j + start[k], s)
    return len(expected - stored)


@pytest.mark.parametrize("kind", ["isotropic", "general"])
def test_staleness_is_exact_for_deformed_cells(kind):
    """Whenever is_stale(positions, cell) is False, no pair within r_max is missing."""
    rng = np.random.default_rng(11)
    systems = random_systems(rng)  # small skewed cell, mixed pbc, no pbc
    sizes = [len(p) for p, _, _ in systems]
    system_idx = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    pbc = torch.tensor(np.stack([b for _, _, b in systems]))
    positions0 = np.concatenate([p for p, _, _ in systems])
    cells0 = np.stack([c for _, c, _ in systems])
    r_max, skin = 3.0, 1.0
    nl = VerletList(r_max, skin)
    nl.build(torch.tensor(positions0), torch.tensor(cells0), pbc, system_idx, sizes)
    counts = {"fresh": 0, "stale": 0}
    for _ in range(60):
        f = [deform(rng, kind) if b.any() else np.eye(3) for _, _, b in systems]
        cells = np.stack([c @ fk for c, fk in zip(cells0, f, strict=True)])
        # affine motion with the cell (what a barostat does) plus random moves
        positions = np.concatenate(
            [p @ fk for (p, _, _), fk in zip(systems, f, strict=True)]
        ) + rng.normal(0, rng.uniform(0.0, 0.15), positions0.shape)
        stale = bool(nl.is_stale(torch.tensor(positions), torch.tensor(cells)))
        counts["stale" if stale else "fresh"] += 1
        if not stale:
            assert missing_pairs(nl, systems, positions, cells, r_max) == 0
    assert counts["fresh"] >= 10 and counts["stale"] >= 10, counts


def test_compressed_cell_is_stale_though_no_atom_moved():
    """One atom at the origin of a primitive cell (images only), compressed by s: stale
    iff s < r_max / (r_max + skin), which the displacement-only test cannot see."""
    atoms = bulk("Cu", "fcc", a=3.61)  # 2.55 A cell vectors, cutoff 5 A: many images
    state = from_atoms(atoms)
    r_max, skin = 4.0, 1.0
    nl = VerletList(r_max, skin)
    nl.build(state.positions, state.cell, state.pbc, state.system_idx, [state.n_atoms])
    systems = [(atoms.positions, atoms.cell.array, atoms.pbc)]
    # shells at 2.55, 3.61, 4.42 A are listed, 5.10 A is not: it enters r_max for s < 0.784
    for s, stale in [(1.0, False), (1.3, False), (0.81, False), (0.79, True), (0.77, True)]:
        positions, cell = s * state.positions, s * state.cell
        assert bool(nl.is_stale(positions, cell)) == stale, s
        assert not bool(nl.is_stale(positions))  # no atom moved
        missing = missing_pairs(nl, systems, positions.numpy(), cell.numpy(), r_max)
        assert missing == 0 if not stale else (missing > 0) == (s < 0.784), (s, missing)


def test_unchanged_cell_gives_the_displacement_test():
    state = from_atoms(bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2))
    nl = VerletList(4.0, 1.0)
    nl.build(state.positions, state.cell, state.pbc, state.system_idx, [state.n_atoms])
    moved = state.positions.clone()
    moved[5, 0] += 0.49
    assert not bool(nl.is_stale(moved, state.cell))
    moved[5, 0] += 0.02
    assert bool(nl.is_stale(moved, state.cell))
