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

import torch

from mlip import keys
from mlip.fileio import atomic_torch_save
from mlip.model import MLIPModel, ModelConfig
from mlip.nn.geometry import edge_vectors

#: elements of the training fixtures (H, C, O)
ELEMENTS = [1, 6, 8]


def small_model(
    atomic_numbers: Sequence[int] = (1, 6, 8, 29), seed: int = 0, **overrides: Any
) -> MLIPModel:
    """An untrained float64 model with non-trivial weights and statistics."""
    torch.manual_seed(seed)
    config = ModelConfig(atomic_numbers=list(atomic_numbers), **{"num_channels": 8, **overrides})
    model = MLIPModel(config).double()
    model.set_atomic_energies({z: -float(z) for z in atomic_numbers})
    model.set_scale(0.7)
    model.set_avg_num_neighbors(8.0)
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
