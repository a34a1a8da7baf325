"""The graph of one LAMMPS rank's domain: owned atoms, the ghosts they need, pruned by hops.

A rank of a LAMMPS run holds ``nlocal`` owned atoms and ``nghost`` ghost copies (atoms
of other ranks, and periodic images of its own and of other ranks' atoms) out to the
ghost cutoff. The energy of the rank is the sum of its owned atoms' energies; with L
message-passing layers of range r_max an owned atom's energy depends on the atoms
within L x r_max of it, hence the ghost cutoff L x r_max (+ LAMMPS's neighbour skin).
The graph built here computes each atom once (no LAMMPS import; numpy and vesin):

* **nodes**: the owned atoms (nodes 0..nlocal-1, in LAMMPS's local order) and one node
  per *remote* atom (an atom owned by another rank), however many ghost copies of it
  the rank holds. A ghost that is a periodic image of an owned atom, or a second image
  of a remote atom, is not a node: it is its node plus an integer cell shift S,
  R_copy = R_node + S @ cell (as ``pair_nequip`` maps ghosts to their owners), so an
  edge to it is an edge to the node with that shift;
* **edges**: every pair of copies closer than ``r_max + skin`` (vesin, open boundaries
  over the copies' positions), mapped to (centre node, neighbour node, shift); the
  edges of a remote node are the union over its copies (a copy near the edge of the
  ghost shell misses some neighbours, another copy has them), an owned node's come
  from its owned copy, whose neighbourhood is complete;
* **hops**: the number of message-passing steps from the owned atoms (BFS over the
  edges). Nodes more than ``max_hops`` (= L) hops away cannot reach an owned energy and
  are left out; the remote nodes are ordered by hop, so that ``hop_counts[h]`` (nodes
  within h hops) tells a model which prefix of the nodes each layer needs
  (:data:`mlip.keys.HOP_COUNTS`). Hops counted with the ``r_max + skin`` edges are an
  upper bound of the true ones, so the pruning is exact while the graph is valid.

The graph stays valid while no copy has moved more than skin / 2 since it was built
(:meth:`DomainGraph.moved_too_far`): a pair then changes its distance by less than the
skin, so every pair closer than r_max is among the edges. Each step
:meth:`DomainGraph.current` keeps the edges shorter than r_max and counts the hops
again on them (the exact hops: fewer atoms in the pruned layers than the build's
upper bound). Lengths in Angstrom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from vesin import NeighborList

from mlip import keys

#: largest |cell shift| component an edge key can hold (images per direction)
MAX_SHIFT = 31


@dataclass
class DomainGraph:
    """The graph of one rank's domain (see the module docstring).

    ``node_copy`` (n_nodes,): the LAMMPS local index (owned or ghost) of the copy whose
    position is the node's; nodes 0..nlocal-1 are the owned atoms. ``edge_index`` (2,
    E) centre and neighbour nodes of the candidate edges (shorter than ``cutoff`` at
    build time), sorted by centre, ``edge_shifts`` (E, 3) their integer cell shifts.
    ``hop_counts`` (max_hops + 1,): nodes within h hops. ``remote_tags`` (n_remote,):
    the sorted distinct atom ids of all remote ghosts (nodes or not), ``remote_slot``
    (n_nodes - nlocal,): each remote node's index into it. ``positions`` (nall, 3) the
    copies' positions at build time.
    """

    nlocal: int
    node_copy: np.ndarray
    edge_index: np.ndarray
    edge_shifts: np.ndarray
    hop_counts: np.ndarray
    remote_tags: np.ndarray
    remote_slot: np.ndarray
    remote_copy: np.ndarray
    positions: np.ndarray
    cutoff: float
    skin: float

    @property
    def num_nodes(self) -> int:
        return len(self.node_copy)

    def moved_too_far(self, positions: np.ndarray) -> bool:
        """Whether a copy moved more than skin / 2 since the build (the graph is stale)."""
        if positions.shape != self.positions.shape:
            return True
        if len(positions) == 0:
            return False
        step = positions - self.positions
        return bool(np.einsum("ij,ij->i", step, step).max() > 0.25 * self.skin**2)

    def current(
        self, node_positions: np.ndarray, cell: np.ndarray, r_max: float, max_hops: int
    ) -> StepGraph:
        """The graph of this step: the edges shorter than ``r_max`` now, the hops they
        give (at most the build's), and the nodes within ``max_hops`` ordered by them."""
        centre, neighbour = self.edge_index
        vectors = node_positions[neighbour] - node_positions[centre]
        if len(self.edge_shifts):
            vectors += self.edge_shifts @ cell
        keep = np.einsum("ij,ij->i", vectors, vectors) < r_max * r_max
        centre, neighbour, shifts = centre[keep], neighbour[keep], self.edge_shifts[keep]
        hop = _hops(centre, neighbour, self.nlocal, self.num_nodes, max_hops)
        nodes, new_index, hop_counts = _order_by_hop(hop, self.nlocal, max_hops)
        used = hop[centre] < max_hops  # a node max_hops away is never a centre
        edge_index = np.stack([new_index[centre[used]], new_index[neighbour[used]]])
        return StepGraph(nodes, edge_index, shifts[used], hop_counts)


@dataclass
class StepGraph:
    """One step's graph: ``nodes`` (n,) the :class:`DomainGraph` node of each of its
    nodes (owned atoms first, in order, then remote atoms by hop), ``edge_index`` (2, e)
    and ``edge_shifts`` (e, 3) of the edges shorter than r_max now, ``hop_counts`` (L + 1,)."""

    nodes: np.ndarray
    edge_index: np.ndarray
    edge_shifts: np.ndarray
    hop_counts: np.ndarray

    def batch(
        self,
        positions: np.ndarray,
        numbers: np.ndarray,
        cell: np.ndarray,
        pbc: np.ndarray,
        hop_counts: np.ndarray | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        """The model's input for this graph: ``positions`` (n, 3) A and atomic
        ``numbers`` (n,) of its nodes in node order, the rank's ``cell`` (3, 3) A and
        ``pbc`` (3,); ``hop_counts`` instead of the graph's own (a wider ball's tail).
        The hop counts stay on the host: the model reads them to prune its layers."""
        n = len(numbers)
        counts = self.hop_counts if hop_counts is None else hop_counts
        return {
            keys.POSITIONS: torch.as_tensor(positions, dtype=dtype).to(device),
            keys.ATOMIC_NUMBERS: torch.as_tensor(numbers).to(device),
            keys.BATCH: torch.zeros(n, dtype=torch.long, device=device),
            keys.NUM_ATOMS: torch.tensor([n], device=device),
            keys.CELL: torch.as_tensor(cell, dtype=dtype).to(device)[None],
            keys.PBC: torch.as_tensor(pbc, device=device)[None],
            keys.EDGE_INDEX: torch.as_tensor(self.edge_index).to(device),
            keys.EDGE_SHIFTS: torch.as_tensor(self.edge_shifts, dtype=dtype).to(device),
            keys.HOP_COUNTS: torch.as_tensor(counts),
        }


def build_domain_graph(
    positions: np.ndarray,
    tags: np.ndarray,
    nlocal: int,
    cell: np.ndarray,
    r_max: float,
    skin: float,
    max_hops: int,
) -> DomainGraph:
    """The :class:`DomainGraph` of a rank from its copies' ``positions`` (nall, 3), atom
    ids ``tags`` (nall,) (owned first, then ghosts) and the ``cell`` (3, 3) rows.

    ``r_max + skin`` is the candidate-edge cutoff, ``max_hops`` the number of
    message-passing layers (nodes beyond are dropped). Raises RuntimeError if a ghost is
    not an image of its node by a whole cell shift (inconsistent LAMMPS data), ValueError
    if it is more than MAX_SHIFT cells away (a box too small for the model's range).
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    tags = np.asarray(tags, dtype=np.int64)
    nall = len(positions)
    cutoff = float(r_max) + float(skin)
    base, proto_copy, remote_tags = _proto_nodes(tags, nlocal)
    shifts = _image_shifts(positions, proto_copy[base], cell)
    n_proto = nlocal + len(remote_tags)

    # candidate pairs of copies, without those centred on an image of an owned atom
    if nall > 1 and cutoff > 0:
        i, j = NeighborList(cutoff=cutoff, full_list=True).compute(
            points=positions, box=np.zeros((3, 3)), periodic=False, quantities="ij"
        )
        i, j = i.astype(np.int64), j.astype(np.int64)
    else:
        i = j = np.zeros(0, dtype=np.int64)
    keep = (i < nlocal) | (base[i] >= nlocal)
    i, j = i[keep], j[keep]
    centre, neighbour = base[i], base[j]
    edge_shifts = shifts[j] - shifts[i]
    centre, neighbour, edge_shifts = _union_over_copies(
        centre, neighbour, edge_shifts, nlocal, n_proto
    )

    hop = _hops(centre, neighbour, nlocal, n_proto, max_hops)
    order, new_index, hop_counts = _order_by_hop(hop, nlocal, max_hops)
    used = hop[centre] < max_hops  # a node max_hops away is never a centre
    centre, neighbour = new_index[centre[used]], new_index[neighbour[used]]
    edge_shifts = edge_shifts[used]
    by_centre = np.argsort(centre, kind="stable")
    return DomainGraph(
        nlocal=nlocal,
        node_copy=proto_copy[order],
        edge_index=np.stack([centre[by_centre], neighbour[by_centre]]),
        edge_shifts=edge_shifts[by_centre].astype(np.float64),
        hop_counts=hop_counts,
        remote_tags=remote_tags,
        remote_slot=order[nlocal:] - nlocal,
        remote_copy=proto_copy[nlocal:],
        positions=positions.copy(),
        cutoff=cutoff,
        skin=float(skin),
    )


def _proto_nodes(tags: np.ndarray, nlocal: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each copy's node before pruning (owned atoms 0..nlocal-1, then one per remote id,
    in id order), the copy whose position each such node takes, and the sorted remote ids."""
    owned_order = np.argsort(tags[:nlocal], kind="stable")
    owned_sorted = tags[:nlocal][owned_order]
    ghost_tags = tags[nlocal:]
    if nlocal:
        where = np.clip(np.searchsorted(owned_sorted, ghost_tags), 0, nlocal - 1)
        is_image = owned_sorted[where] == ghost_tags
    else:
        where = np.zeros(len(ghost_tags), dtype=np.int64)
        is_image = np.zeros(len(ghost_tags), dtype=bool)
    remote_ghosts = np.flatnonzero(~is_image)
    remote_tags, first, slot = np.unique(
        ghost_tags[remote_ghosts], return_index=True, return_inverse=True
    )
    base = np.empty(len(tags), dtype=np.int64)
    base[:nlocal] = np.arange(nlocal)
    ghost_base = np.empty(len(ghost_tags), dtype=np.int64)
    ghost_base[is_image] = owned_order[where[is_image]]
    ghost_base[remote_ghosts] = nlocal + slot.reshape(-1)
    base[nlocal:] = ghost_base
    proto_copy = np.concatenate([np.arange(nlocal), nlocal + remote_ghosts[first]])
    return base, proto_copy.astype(np.int64), remote_tags.astype(np.int64)


def _image_shifts(positions: np.ndarray, stand_in: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Integer cell shifts S of each copy from the copy that stands for its node,
    R_copy = R_stand_in + S @ cell; RuntimeError if a copy is not such an image,
    ValueError if it is more than MAX_SHIFT cells away."""
    shifts = np.zeros((len(positions), 3), dtype=np.int64)
    moved = np.flatnonzero(stand_in != np.arange(len(positions)))
    if len(moved) == 0:
        return shifts
    offset = positions[moved] - positions[stand_in[moved]]
    fractional = np.linalg.solve(np.asarray(cell, dtype=np.float64).T, offset.T).T
    whole = np.rint(fractional)
    residual = offset - whole @ cell
    worst = np.abs(residual).max()
    if worst > 1e-6 * max(1.0, np.abs(cell).max()):
        raise RuntimeError(
            f"a LAMMPS ghost atom is {worst:.3g} A off every periodic image of its atom "
            "(inconsistent ghost data)"
        )
    if np.abs(whole).max() > MAX_SHIFT:  # the user's box and model: a ValueError
        raise ValueError(
            f"a ghost atom is {int(np.abs(whole).max())} cells away from its atom "
            f"(at most {MAX_SHIFT}): the box is too small for the ghost cutoff"
        )
    shifts[moved] = whole.astype(np.int64)
    return shifts


def _union_over_copies(
    centre: np.ndarray, neighbour: np.ndarray, shifts: np.ndarray, nlocal: int, n_proto: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges with duplicates removed: a remote node seen through several copies
    finds the same (centre, neighbour, shift) edge from each of them."""
    remote = centre >= nlocal
    if not remote.any():
        return centre, neighbour, shifts
    width = 2 * MAX_SHIFT + 1
    code = (shifts[remote] + MAX_SHIFT) @ np.array([width * width, width, 1], dtype=np.int64)
    key = (centre[remote] * n_proto + neighbour[remote]) * width**3 + code
    _, first = np.unique(key, return_index=True)
    picked = np.flatnonzero(remote)[first]
    keep = np.concatenate([np.flatnonzero(~remote), picked])
    return centre[keep], neighbour[keep], shifts[keep]


def _order_by_hop(
    hop: np.ndarray, nlocal: int, max_hops: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nodes within max_hops, owned first (in order) then the others by hop; the new
    index of each node (-1: left out); the number of nodes within each hop count."""
    remote = np.arange(nlocal, len(hop))
    remote = remote[hop[remote] <= max_hops]
    remote = remote[np.argsort(hop[remote], kind="stable")]
    order = np.concatenate([np.arange(nlocal), remote]).astype(np.int64)
    new_index = np.full(len(hop), -1, dtype=np.int64)
    new_index[order] = np.arange(len(order))
    counts = np.searchsorted(hop[remote], np.arange(max_hops + 1), side="right") + nlocal
    return order, new_index, counts.astype(np.int64)


def _hops(
    centre: np.ndarray, neighbour: np.ndarray, nlocal: int, n_proto: int, max_hops: int
) -> np.ndarray:
    """Message-passing hops of each node from the owned atoms (BFS over the edges);
    max_hops + 1 for nodes farther away."""
    hop = np.full(n_proto, max_hops + 1, dtype=np.int64)
    hop[:nlocal] = 0
    for h in range(max_hops):
        reached = neighbour[hop[centre] == h]
        reached = reached[hop[reached] > h + 1]
        hop[reached] = h + 1
    return hop
