"""Gradients on ghost atoms sent to the ranks that own them (mpi4py, point to point).

On a rank, the energy of its owned atoms depends on remote atoms (owned by other
ranks), whose forces from that energy must be added on their owners: the reverse
communication of LAMMPS's ``newton on`` pair styles, which ``fix external`` has no hook
for. :class:`HaloExchange` does it with the ranks concerned only, so that what a rank
sends and receives per step grows with its number of remote atoms, not with the
system:

* ``setup`` (collective; after each LAMMPS neighbour-list build, when the ghosts
  change): each remote atom's owner is the rank whose sub-domain holds its position
  wrapped into the box (LAMMPS has just moved every atom to the rank of its
  sub-domain). Each rank asks the candidate ranks (those whose sub-domain, widened by
  a rounding margin, holds the position) which of its remote atom ids they own
  (``Alltoall`` of P counts, ``Alltoallv`` of the ids and the answers); every remote id
  must find exactly one owner. The owners remember the local index of each id asked;
* ``reverse`` (collective; every step): ``Isend``/``Irecv`` of the rows of the remote
  atoms to and from those ranks only, and the received rows added onto the owned atoms.

A duplicate of the communicator keeps these messages apart from LAMMPS's own.
"""

from __future__ import annotations

import numpy as np

from mlip.errors import MissingDependencyError

try:
    from mpi4py import MPI
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        f"mlip.integrations.lammps needs mpi4py ({err}); pip install -e '.[lammps]'"
    ) from err

#: margin of a sub-domain in fractional coordinates when guessing owners (rounding)
MARGIN = 1e-7
TAG = 7301


class HaloExchange:
    """Remote-atom rows to their owners; see the module docstring. ``comm``: the
    communicator of the LAMMPS instance (duplicated here)."""

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm.Dup()
        self.size = self.comm.Get_size()
        self.send: list[tuple[int, np.ndarray]] = []  # (rank, remote slots)
        self.recv: list[tuple[int, np.ndarray]] = []  # (rank, owned local indices)

    def close(self) -> None:
        self.comm.Free()

    def setup(
        self,
        remote_tags: np.ndarray,
        remote_fractional: np.ndarray,
        owned_tags: np.ndarray,
        sub_lo: np.ndarray,
        sub_hi: np.ndarray,
        periodic: np.ndarray,
    ) -> None:
        """Find the owner of each remote id (``remote_tags`` (n,), at fractional box
        coordinates ``remote_fractional`` (n, 3)); ``owned_tags`` (nlocal,) this rank's
        ids; ``sub_lo``, ``sub_hi`` (3,) its sub-domain in fractional coordinates."""
        box = np.concatenate([sub_lo, sub_hi]).astype(np.float64)
        boxes = np.empty((self.size, 6))
        self.comm.Allgather(box, boxes)
        slot, rank = _candidates(remote_fractional, boxes, np.asarray(periodic, bool))
        order = np.lexsort((slot, rank))
        slot, rank = slot[order], rank[order]
        asked = np.ascontiguousarray(remote_tags[slot], dtype=np.int64)

        send_counts = np.bincount(rank, minlength=self.size).astype(np.int64)
        recv_counts = np.empty(self.size, dtype=np.int64)
        self.comm.Alltoall(send_counts, recv_counts)
        incoming = np.empty(int(recv_counts.sum()), dtype=np.int64)
        self.comm.Alltoallv([asked, _layout(send_counts), MPI.INT64_T],
                            [incoming, _layout(recv_counts), MPI.INT64_T])  # fmt: skip

        owned_order = np.argsort(owned_tags, kind="stable")
        owned_sorted = np.asarray(owned_tags, dtype=np.int64)[owned_order]
        if len(owned_sorted):
            where = np.clip(np.searchsorted(owned_sorted, incoming), 0, len(owned_sorted) - 1)
            mine = owned_sorted[where] == incoming
        else:
            where = np.zeros(len(incoming), dtype=np.int64)
            mine = np.zeros(len(incoming), dtype=bool)
        answers = mine.astype(np.int8)
        replies = np.empty(len(asked), dtype=np.int8)
        self.comm.Alltoallv([answers, _layout(recv_counts), MPI.INT8_T],
                            [replies, _layout(send_counts), MPI.INT8_T])  # fmt: skip

        owners = np.bincount(slot[replies == 1], minlength=len(remote_tags))
        if len(owners) and (owners != 1).any():
            bad = int(np.flatnonzero(owners != 1)[0])
            raise RuntimeError(
                f"ghost atom id {int(remote_tags[bad])} has {int(owners[bad])} owner ranks "
                "(expected 1): the sub-domains do not cover the box"
            )
        self.send = _per_rank(rank[replies == 1], slot[replies == 1])
        sender = np.repeat(np.arange(self.size), recv_counts)
        self.recv = _per_rank(sender[mine], owned_order[where[mine]])

    def reverse(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Add the rows (n_remote, w) of this rank's remote atoms onto their owners:
        ``out`` (nlocal, w) receives, in place, the rows other ranks send for its atoms."""
        rows = np.asarray(rows, dtype=np.float64)
        width = rows.shape[1]
        requests, buffers = [], []
        for rank, indices in self.recv:
            buffer = np.empty((len(indices), width))
            buffers.append((indices, buffer))
            requests.append(self.comm.Irecv(buffer, source=rank, tag=TAG))
        outgoing = []
        for rank, slots in self.send:
            data = np.ascontiguousarray(rows[slots])
            outgoing.append(data)
            requests.append(self.comm.Isend(data, dest=rank, tag=TAG))
        MPI.Request.Waitall(requests)
        for indices, buffer in buffers:
            np.add.at(out, indices, buffer)


def _layout(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    displacements = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return counts.astype(np.int64), displacements


def _per_rank(rank: np.ndarray, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(rank, its values in order) for each rank present; ``rank`` must be sorted."""
    if len(rank) == 0:
        return []
    ranks, starts = np.unique(rank, return_index=True)
    ends = np.append(starts[1:], len(rank))
    return [(int(r), values[s:e].copy()) for r, s, e in zip(ranks, starts, ends, strict=True)]


def _candidates(
    fractional: np.ndarray, boxes: np.ndarray, periodic: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (remote slot, rank) whose sub-domain (widened by MARGIN) holds the slot's
    position; periodic coordinates are wrapped into [0, 1) first."""
    f = np.array(fractional, dtype=np.float64).reshape(-1, 3)
    f[:, periodic] -= np.floor(f[:, periodic])
    slots, ranks = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    chunk = max(1, 2_000_000 // max(1, len(boxes)))
    for start in range(0, len(f), chunk):
        part = f[start : start + chunk, None, :]  # (n, 1, 3)
        lo, hi = boxes[None, :, :3], boxes[None, :, 3:]
        inside = (part >= lo - MARGIN) & (part < hi + MARGIN)
        # periodic wrap: a position just below 1 belongs to a sub-domain starting at 0
        wrapped = (part - 1.0 >= lo - MARGIN) | (part + 1.0 < hi + MARGIN)
        inside |= wrapped & periodic[None, None, :]
        hit_slot, hit_rank = np.nonzero(inside.all(axis=2))
        slots.append(hit_slot + start)
        ranks.append(hit_rank)
    return np.concatenate(slots).astype(np.int64), np.concatenate(ranks).astype(np.int64)
