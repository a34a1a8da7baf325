"""Shared fixtures of the training tests: a tiny trainable pair model and small HDF5 files.

The pair model has the interface of the learned model (``r_max``, ``atomic_numbers``,
``forward(batch) -> {ENERGY, NODE_ENERGY}``, the statistics setters and ``save``), so the
trainer is exercised end to end in a second. Labels come from a *teacher* pair model
with other weights, via autograd, so they are exactly learnable.
"""

from __future__ import annotations

import math
import os

import h5py
import numpy as np
import pytest
import torch

from mlip import keys
from mlip.data.graph import Structure, build_batch
from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION
from mlip.derivatives import compute
from mlip.fileio import atomic_torch_save
from mlip.nn.geometry import edge_vectors
from mlip.train.config import TrainConfig, load_config


class PairModel(torch.nn.Module):
    """E = sum_i e0[Z_i] + s / n_avg * sum_{i != j} sum_k W[Z_i, Z_j, k] g_k(r_ij) f_c(r_ij).

    g_k are Gaussians (width 0.5 A) at centres 0.5..r_max, f_c a cosine cutoff; W is
    learnable. Units eV, Angstrom.
    """

    def __init__(self, elements: list[int], r_max: float = 3.0, num_basis: int = 6, seed=0):
        super().__init__()
        self.atomic_numbers = sorted(int(z) for z in elements)
        self.r_max = float(r_max)
        gen = torch.Generator().manual_seed(seed)
        n = len(self.atomic_numbers)
        self.weights = torch.nn.Parameter(0.1 * torch.randn(n, n, num_basis, generator=gen))
        self.register_buffer("centres", torch.linspace(0.5, r_max, num_basis))
        self.register_buffer("e0", torch.zeros(119))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("avg_num_neighbors", torch.ones(()))
        index = torch.full((119,), -1, dtype=torch.long)
        index[self.atomic_numbers] = torch.arange(n)
        self.register_buffer("element_index", index)

    def set_atomic_energies(self, energies: dict[int, float]) -> None:
        for z, e in energies.items():
            self.e0[int(z)] = float(e)

    def set_scale(self, scale: float) -> None:
        self.scale.fill_(float(scale))

    def set_avg_num_neighbors(self, value: float) -> None:
        self.avg_num_neighbors.fill_(float(value))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        r = edge_vectors(batch).norm(dim=-1)
        centre, neighbour = batch[keys.EDGE_INDEX]
        species = self.element_index[batch[keys.ATOMIC_NUMBERS]]
        basis = torch.exp(-(((r[:, None] - self.centres) / 0.5) ** 2))
        cutoff = 0.5 * (torch.cos(math.pi * r / self.r_max) + 1.0) * (r < self.r_max)
        w = self.weights[species[centre], species[neighbour]]  # (n_edges, num_basis)
        edge_energy = (w * basis).sum(-1) * cutoff
        n_atoms = batch[keys.POSITIONS].shape[0]
        node = torch.zeros(n_atoms, dtype=r.dtype, device=r.device).index_add(
            0, centre, edge_energy
        )
        node = self.e0[batch[keys.ATOMIC_NUMBERS]] + self.scale * node / self.avg_num_neighbors
        n_systems = batch[keys.NUM_ATOMS].shape[0]
        energy = torch.zeros(n_systems, dtype=r.dtype, device=r.device)
        energy = energy.index_add(0, batch[keys.BATCH], node)
        return {keys.ENERGY: energy, keys.NODE_ENERGY: node}

    def save(self, path: str) -> None:
        atomic_torch_save(self, path)


ELEMENTS = [1, 6, 8]
MOLECULE_Z = np.array([6, 8, 1, 1, 1])
MOLECULE_R = np.array(
    [[0.0, 0.0, 0.0], [1.4, 0.0, 0.0], [-0.5, 0.9, 0.0], [-0.5, -0.5, 0.8], [1.8, 0.8, 0.3]]
)


def teacher() -> PairModel:
    model = PairModel(ELEMENTS, seed=123).double()
    model.set_atomic_energies({1: -13.0, 6: -1030.0, 8: -2040.0})
    return model


def label(model: torch.nn.Module, structures: list[Structure], hessian: np.ndarray):
    """Energies, forces, stress (periodic only) and Hessians (where ``hessian``) in place."""
    batch = build_batch(structures, model.r_max, labels=False)
    periodic = structures[0].cell is not None
    out = compute(model, batch, stress=periodic, hessian=True)
    hess = [
        h.reshape(3 * s.num_atoms, 3 * s.num_atoms)
        for s, h in zip(
            structures,
            torch.split(out[keys.HESSIAN], [(3 * s.num_atoms) ** 2 for s in structures]),
            strict=True,
        )
    ]
    forces = torch.split(out[keys.FORCES], [s.num_atoms for s in structures])
    for k, s in enumerate(structures):
        s.energy = float(out[keys.ENERGY][k])
        s.forces = forces[k].numpy()
        s.hessian = hess[k].numpy() if hessian[k] else None
        if periodic:
            m = out[keys.STRESS][k].numpy()
            s.stress = np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]])


def molecules(n: int, seed: int = 0, noise: float = 0.08) -> list[Structure]:
    rng = np.random.default_rng(seed)
    return [
        Structure(MOLECULE_Z.copy(), MOLECULE_R + noise * rng.standard_normal(MOLECULE_R.shape))
        for _ in range(n)
    ]


def crystals(n: int, seed: int = 1) -> list[Structure]:
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.0], [1.3, 1.3, 0.0], [1.3, 0.0, 1.3], [0.0, 1.3, 1.3]])
    out = []
    for _ in range(n):
        cell = np.eye(3) * 2.6 + 0.05 * rng.standard_normal((3, 3))
        out.append(
            Structure(
                np.array([6, 6, 8, 1]),
                base + 0.05 * rng.standard_normal((4, 3)),
                cell=cell,
                pbc=np.ones(3, dtype=bool),
            )
        )
    return out


def write_group(f: h5py.File, name: str, structures: list[Structure], forces: bool = True):
    g = f.create_group(name)
    g["atomic_numbers"] = structures[0].atomic_numbers
    g["positions"] = np.stack([s.positions for s in structures])
    g["energy"] = np.array([s.energy for s in structures])
    if forces:
        g["forces"] = np.stack([s.forces for s in structures])
    dof = 3 * structures[0].num_atoms
    nan = np.full((dof, dof), np.nan)
    g["hessian"] = np.stack([s.hessian if s.hessian is not None else nan for s in structures])
    if structures[0].cell is not None:
        g["cell"] = np.stack([s.cell for s in structures])
        g["pbc"] = np.ones(3, dtype=bool)
        g["stress"] = np.stack([s.stress for s in structures])


def make_h5(
    path: str, n_mol: int = 40, n_cryst: int = 0, forces: bool = True, hessian_every: int = 3
) -> str:
    """An mlip-HDF5 file: group 'mol' (+ 'cryst', periodic with stress) labelled by the teacher."""
    model = teacher()
    with h5py.File(path, "w") as f:
        f.attrs.update(
            format=FORMAT_NAME, version=FORMAT_VERSION, energy_unit="eV", length_unit="Angstrom"
        )
        mols = molecules(n_mol)
        label(model, mols, np.arange(n_mol) % hessian_every == 0)
        write_group(f, "mol", mols, forces)
        if n_cryst:
            crys = crystals(n_cryst)
            label(model, crys, np.arange(n_cryst) % hessian_every == 0)
            write_group(f, "cryst", crys, forces)
    return path


def quiet_run_config(h5: str, out, values: dict, **overrides) -> TrainConfig:  # noqa: ANN001
    """Config of a short float64 test run on ``h5`` into ``out``: all groups, no progress
    bar, no final evaluation; ``values`` then ``overrides`` (dotted keys) on top."""
    base = {
        "data.paths": [h5],
        "data.groups": None,
        "train.dtype": "float64",  # the exactness checks compare to float64 rounding
        "train.valid_every": 1,  # tiny training sets: validate every epoch all the same
        "train.out": str(out),
        "train.progress": False,
        "train.evaluate": False,
    }
    return load_config(None, {**base, **values, **overrides})


@pytest.fixture
def small_h5(tmp_path) -> str:
    return make_h5(os.fspath(tmp_path / "small.h5"))


def test_teacher_labels_are_consistent(tmp_path):
    """The fixture data is self-consistent: forces are -dE/dR by finite differences."""
    mols = molecules(1)
    label(teacher(), mols, np.array([True]))
    s = mols[0]
    h = 1e-5
    for a, x in ((0, 0), (3, 2)):
        plus, minus = (
            Structure(s.atomic_numbers, s.positions.copy()),
            Structure(s.atomic_numbers, s.positions.copy()),
        )
        plus.positions[a, x] += h
        minus.positions[a, x] -= h
        label(teacher(), [plus, minus], np.array([False, False]))
        assert abs(-(plus.energy - minus.energy) / (2 * h) - s.forces[a, x]) < 1e-6
    assert np.allclose(s.hessian, s.hessian.T, atol=1e-10)
