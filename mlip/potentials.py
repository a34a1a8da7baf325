"""Classical reference potentials with the same interface as the learned model.

They serve tests (analytic physics to compare against) and examples. Every
potential is a ``torch.nn.Module`` with ``r_max`` (Angstrom) and ``forward(batch)``
returning ``{ENERGY: (n_systems,), NODE_ENERGY: (n_atoms,)}`` in eV; forces,
stress and Hessians come from :mod:`mlip.derivatives` by autograd, as for the model.
Every energy model here runs through the model contract (tests/test_model_contract.py).
"""

from __future__ import annotations

import numpy as np
import torch

from mlip import keys
from mlip.nn.geometry import edge_vectors


class LennardJones(torch.nn.Module):
    """Shifted Lennard-Jones pair potential.

    E = sum_{i<j, r_ij<r_max} 4 eps [(sigma/r)^12 - (sigma/r)^6] - shift,
    with the shift making each pair term zero at r_max. eps in eV, sigma and
    r_max in Angstrom. Each edge appears in both directions, so each carries
    half the pair energy to its centre atom.
    """

    def __init__(self, epsilon: float = 0.0104, sigma: float = 3.4, r_max: float = 8.5) -> None:
        super().__init__()
        if epsilon <= 0 or sigma <= 0 or r_max <= 0:
            raise ValueError(f"epsilon, sigma, r_max must be > 0, got {epsilon}, {sigma}, {r_max}")
        self.epsilon, self.sigma, self.r_max = float(epsilon), float(sigma), float(r_max)
        self.atomic_numbers: list[int] | None = None  # any element

    def _pair(self, r: torch.Tensor) -> torch.Tensor:
        s6 = (self.sigma / r) ** 6
        return 4.0 * self.epsilon * (s6 * s6 - s6)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        r = edge_vectors(batch).norm(dim=-1)
        shift = self._pair(torch.tensor(self.r_max, dtype=r.dtype, device=r.device))
        pair = torch.where(r < self.r_max, self._pair(r) - shift, torch.zeros_like(r))
        return _sum_edges(batch, 0.5 * pair)


class HarmonicBonds(torch.nn.Module):
    """Harmonic springs between listed atom pairs of every system in a batch.

    E = sum_bonds 1/2 k (|R_a - R_b| - d0)^2 with k in eV/Angstrom^2 and d0 in
    Angstrom. ``bonds`` are (a, b) atom indices within one system; each system of
    the batch must have the same atom count. No neighbour list needed.
    """

    def __init__(
        self, bonds: list[tuple[int, int]], k: float | list[float], d0: float | list[float]
    ):
        super().__init__()
        n = len(bonds)
        self.bonds = torch.as_tensor(bonds, dtype=torch.long).reshape(n, 2)
        self.k = torch.as_tensor(k, dtype=torch.float64).expand(n).clone()
        self.d0 = torch.as_tensor(d0, dtype=torch.float64).expand(n).clone()
        self.r_max = 0.0
        self.atomic_numbers: list[int] | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        positions = batch[keys.POSITIONS]
        n_systems = batch[keys.NUM_ATOMS].shape[0]
        offsets = torch.cumsum(batch[keys.NUM_ATOMS], 0) - batch[keys.NUM_ATOMS]  # (n_systems,)
        a = (offsets[:, None] + self.bonds[None, :, 0].to(offsets.device)).reshape(-1)
        b = (offsets[:, None] + self.bonds[None, :, 1].to(offsets.device)).reshape(-1)
        d = (positions[a] - positions[b]).norm(dim=-1).reshape(n_systems, -1)
        k = self.k.to(positions)
        d0 = self.d0.to(positions)
        energy = (0.5 * k * (d - d0) ** 2).sum(-1)
        node_energy = torch.zeros_like(positions[:, 0])
        return {keys.ENERGY: energy, keys.NODE_ENERGY: node_energy}

    def analytic_hessian(self, positions: np.ndarray) -> np.ndarray:
        """Closed-form Hessian d2E/dR dR (3N, 3N), eV/A^2, of one system at ``positions``
        (N, 3) A, atom-major; numpy, independent of autograd.

        One spring between atoms a and b, with r = |R_b - R_a| and u = (R_b - R_a) / r,
        adds the block K = k [u u^T + (1 - d0/r)(1 - u u^T)] at (a, a) and (b, b) and
        -K at (a, b) and (b, a).
        """
        positions = np.asarray(positions, dtype=np.float64)
        n = len(positions)
        hessian = np.zeros((3 * n, 3 * n))
        for (a, b), k, d0 in zip(
            self.bonds.tolist(), self.k.tolist(), self.d0.tolist(), strict=True
        ):
            vector = positions[b] - positions[a]
            r = float(np.linalg.norm(vector))
            u = np.outer(vector, vector) / r**2
            block = k * (u + (1.0 - d0 / r) * (np.eye(3) - u))
            for i, j, sign in ((a, a, 1.0), (b, b, 1.0), (a, b, -1.0), (b, a, -1.0)):
                hessian[3 * i : 3 * i + 3, 3 * j : 3 * j + 3] += sign * block
        return hessian


def _sum_edges(
    batch: dict[str, torch.Tensor], edge_energy: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Sum edge energies onto centre atoms, then atoms onto systems."""
    n_atoms = batch[keys.POSITIONS].shape[0]
    node_energy = torch.zeros(n_atoms, dtype=edge_energy.dtype, device=edge_energy.device)
    node_energy = node_energy.index_add(0, batch[keys.EDGE_INDEX][0], edge_energy)
    n_systems = batch[keys.NUM_ATOMS].shape[0]
    energy = torch.zeros(n_systems, dtype=edge_energy.dtype, device=edge_energy.device)
    energy = energy.index_add(0, batch[keys.BATCH], node_energy)
    return {keys.ENERGY: energy, keys.NODE_ENERGY: node_energy}
