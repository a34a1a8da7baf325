"""Edge geometry of a batch of atomic graphs (Angstrom)."""

from __future__ import annotations

import torch

from mlip import keys


def edge_vectors(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Return the edge vectors r_ij = R_j - R_i + S_ij @ cell, shape (n_edges, 3), Angstrom.

    Differentiable with respect to ``batch[POSITIONS]`` and ``batch[CELL]`` (the
    latter is how the stress is obtained by a strain derivative).
    """
    positions = batch[keys.POSITIONS]
    centre, neighbour = batch[keys.EDGE_INDEX]
    vectors = positions[neighbour] - positions[centre]
    shifts = batch[keys.EDGE_SHIFTS]
    if shifts.numel() > 0:
        cell_of_edge = batch[keys.CELL][batch[keys.BATCH][centre]]  # (n_edges, 3, 3)
        vectors = vectors + torch.einsum("ek,ekx->ex", shifts.to(vectors.dtype), cell_of_edge)
    return vectors
