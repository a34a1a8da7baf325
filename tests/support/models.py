"""Small energy models for tests: an untrained float64 MLIPModel and a trainable toy.

:class:`PairModel` has the interface of the learned model (``r_max``,
``atomic_numbers``, ``forward(batch) -> {ENERGY, NODE_ENERGY}``, the statistics setters
and ``save``), so that the trainer is exercised end to end in a second. Training labels
come from a *teacher* pair model with other weights, via autograd, so they are exactly
learnable. Units eV, Angstrom.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase.data import covalent_radii

from mlip import keys
from mlip.fileio import atomic_torch_save
from mlip.model import MLIPModel, ModelConfig
from mlip.nn.geometry import edge_vectors

#: elements of the training fixtures (H, C, O)
ELEMENTS = [1, 6, 8]
#: the test models' core-repulsion cutoffs, in sums of covalent radii (Cu-Cu: 2.64 A,
#: beyond fcc copper's nearest neighbours at 2.55 A)
CORE_CUTOFF_FACTOR = 1.0


def small_model(
    atomic_numbers: Sequence[int] = (1, 6, 8, 29), seed: int = 0, **overrides: Any
) -> MLIPModel:
    """An untrained float64 model with non-trivial weights and statistics, with the
    default ``core`` pair term acting below :data:`CORE_CUTOFF_FACTOR` times the sum of
    the covalent radii of each pair (every Cu cell has pairs inside it, so that every
    physics check covers the term); ``repulsion="zbl"`` or ``"none"`` for the others."""
    torch.manual_seed(seed)
    values = {"num_channels": 8, **overrides}
    config = ModelConfig(atomic_numbers=list(atomic_numbers), **values)
    model = MLIPModel(config).double()
    model.set_atomic_energies({z: -float(z) for z in atomic_numbers})
    model.set_scale(0.7)
    model.set_avg_num_neighbors(8.0)
    model.set_shortest_distances(
        {
            (a, b): CORE_CUTOFF_FACTOR * float(covalent_radii[a] + covalent_radii[b])
            for a in atomic_numbers
            for b in atomic_numbers
            if a <= b
        }
    )
    return model


def far_reaching_model(
    atomic_numbers: Sequence[int], num_layers: int, r_max: float, seed: int = 0
) -> MLIPModel:
    """An untrained float64 model whose last layer reaches far: a flat envelope (p = 12)
    and unnormalised messages, so that atoms L x r_max away change an energy by far more
    than 1e-9 eV (tests of domain decomposition must be able to fail)."""
    model = small_model(
        atomic_numbers, seed=seed, num_layers=num_layers, r_max=r_max, envelope_p=12
    )
    model.set_avg_num_neighbors(1.0)
    return model


class PairModel(torch.nn.Module):
    """E = sum_i e0[Z_i] + s / n_avg * sum_{i != j} sum_k W[Z_i, Z_j, k] g_k(r_ij) f_c(r_ij).

    g_k are Gaussians (width 0.5 A) at centres 0.5..r_max, f_c a cosine cutoff; W is
    learnable. Units eV, Angstrom. A test-only toy of the trainer tests (no physics).
    """

    def __init__(
        self, elements: list[int], r_max: float = 3.0, num_basis: int = 6, seed: int = 0
    ) -> None:
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

    def save(self, path: str | os.PathLike) -> None:
        atomic_torch_save(self, path)


def teacher() -> PairModel:
    """The float64 pair model whose autograd derivatives label the training fixtures."""
    model = PairModel(ELEMENTS, seed=123).double()
    model.set_atomic_energies({1: -13.0, 6: -1030.0, 8: -2040.0})
    return model


class TorsionModel(torch.nn.Module):
    """A four-atom chain 0-1-2-3 (H-O-O-H like) with a torsional double well, eV and A.

    E = sum_bonds k_b/2 (r - r_b)^2 + sum_angles k_a/2 (cos t - cos t0)^2
        + A cos 2phi + B cos phi,

    phi the dihedral angle 0-1-2-3. Bond lengths, bond angles and phi are independent
    coordinates, so the stationary points are those of the torsion term with every bond
    and angle at rest: minima at cos phi* = -B / (4A) (two mirror images), saddles at
    phi = pi (trans, E = A - B) and phi = 0 (cis, E = A + B). With A = B = 0.5 eV the
    trans barrier is A - B - (A cos 2phi* + B cos phi*) = 0.5625 eV exactly. A test-only
    toy (no neighbour list: r_max = 0; every system of a batch has four atoms).
    """

    def __init__(
        self,
        a: float = 0.5,
        b: float = 0.5,
        bonds: tuple[float, float, float] = (0.97, 1.45, 0.97),
        bond_k: float = 30.0,
        angle: float = 100.0,
        angle_k: float = 8.0,
    ) -> None:
        super().__init__()
        self.a, self.b = float(a), float(b)
        self.bonds, self.bond_k = bonds, float(bond_k)
        self.cos_angle, self.angle_k = math.cos(math.radians(angle)), float(angle_k)
        self.r_max = 0.0
        self.atomic_numbers = None

    def minimum_barrier(self) -> float:
        """E(trans saddle) - E(minimum), eV."""
        c = -self.b / (4 * self.a)
        return (self.a - self.b) - (self.a * (2 * c * c - 1) + self.b * c)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        r = batch[keys.POSITIONS].reshape(-1, 4, 3)
        b1, b2, b3 = r[:, 1] - r[:, 0], r[:, 2] - r[:, 1], r[:, 3] - r[:, 2]
        energy = torch.zeros(r.shape[0], dtype=r.dtype, device=r.device)
        for vector, rest in zip((b1, b2, b3), self.bonds, strict=True):
            energy = energy + 0.5 * self.bond_k * (vector.norm(dim=-1) - rest) ** 2
        for u, v in ((-b1, b2), (-b2, b3)):
            cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))
            energy = energy + 0.5 * self.angle_k * (cos - self.cos_angle) ** 2
        n1, n2 = torch.cross(b1, b2, dim=-1), torch.cross(b2, b3, dim=-1)
        cos_phi = (n1 * n2).sum(-1) / (n1.norm(dim=-1) * n2.norm(dim=-1))
        energy = energy + self.a * (2 * cos_phi**2 - 1) + self.b * cos_phi
        node = torch.zeros_like(batch[keys.POSITIONS][:, 0])
        return {keys.ENERGY: energy, keys.NODE_ENERGY: node}


def torsion_chain(phi_degrees: float, model: TorsionModel | None = None):  # noqa: ANN201 (ase.Atoms)
    """H-O-O-H with the model's bond lengths and angles and dihedral ``phi_degrees``."""
    from ase import Atoms

    model = model or TorsionModel()
    d_oh, d_oo, _ = model.bonds
    t = math.acos(model.cos_angle)
    phi = math.radians(phi_degrees)
    o1, o2 = np.zeros(3), np.array([d_oo, 0.0, 0.0])
    h1 = o1 + d_oh * np.array([math.cos(t), math.sin(t), 0.0])
    h2 = o2 + d_oh * np.array(
        [-math.cos(t), math.sin(t) * math.cos(phi), math.sin(t) * math.sin(phi)]
    )
    return Atoms("HOOH", positions=np.stack([h1, o1, o2, h2]))
