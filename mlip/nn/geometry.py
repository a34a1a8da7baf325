"""Edge geometry of a batch of atomic graphs (Angstrom): the one edge-vector formula."""

from __future__ import annotations

import torch

from mlip import keys


def pair_vectors(
    positions: torch.Tensor,
    edge_index: torch.Tensor,
    edge_shifts: torch.Tensor,
    cell: torch.Tensor | None,
    system_idx: torch.Tensor | None,
) -> torch.Tensor:
    """r_ij = R_j - R_i + S_ij @ cell[system of i], shape (n_edges, 3), Angstrom.

    ``positions`` (n_atoms, 3), ``edge_index`` (2, n_edges) [centre i, neighbour j],
    ``edge_shifts`` (n_edges, 3) integer cell multiples, ``cell`` (n_systems, 3, 3),
    ``system_idx`` (n_atoms,) the system of each atom (the convention of
    :mod:`mlip.keys`); ``cell`` and ``system_idx`` are only read when there are shifts.
    Differentiable with respect to ``positions`` and ``cell``.
    """
    centre, neighbour = edge_index
    # index_select, not positions[neighbour]: its backward is an index_add, where
    # advanced indexing's is a slower accumulating index_put (training runs both twice).
    vectors = positions.index_select(0, neighbour) - positions.index_select(0, centre)
    if edge_shifts.numel() > 0:
        cell_of_edge = cell.index_select(0, system_idx[centre])  # (n_edges, 3, 3)
        vectors = vectors + torch.einsum("ek,ekx->ex", edge_shifts.to(vectors.dtype), cell_of_edge)
    return vectors


def edge_vectors(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The edge vectors :func:`pair_vectors` of a batch dict, (n_edges, 3), Angstrom.

    Differentiable with respect to ``batch[POSITIONS]`` and ``batch[CELL]`` (the
    latter is how the stress is obtained by a strain derivative).
    """
    return pair_vectors(
        batch[keys.POSITIONS],
        batch[keys.EDGE_INDEX],
        batch[keys.EDGE_SHIFTS],
        batch.get(keys.CELL),
        batch.get(keys.BATCH),
    )
