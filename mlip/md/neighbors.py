"""Batched neighbour lists on the device (torch only), with a Verlet skin.

:func:`neighbor_list` finds, for every system of a batch, all pairs (i, j, S) with

    |R_j - R_i + S @ cell| < cutoff,   S integer along periodic directions, 0 otherwise,

excluding i == j with S == 0, in the edge convention of :mod:`mlip.keys`. It works for
any cell, including cells smaller than the cutoff: positions are wrapped into the cell
(fractional coordinates f in [0, 1) along periodic directions), and along a periodic
direction k only the images |S_k| <= ceil(cutoff / h_k) can be within reach, h_k being
the distance between the lattice planes spanned by the other two cell vectors
(h_k = V / |a_l x a_m|). Candidates (pair x image) are enumerated system by system,
brute force O(N^2 n_images) work, in chunks of ``max_candidates`` to bound memory.

:class:`VerletList` builds the list with cutoff r_max + skin and keeps it until some
atom has moved more than skin / 2 since the build; until then every pair closer than
r_max is in the list (two atoms approach each other by at most skin), and the extra
pairs are harmless because models zero every edge beyond r_max.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch


def _normalise(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(v.dtype).tiny)


def effective_cell(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """(n_systems, 3, 3) invertible cells: periodic rows kept, others replaced.

    Non-periodic rows are replaced by unit vectors orthogonal to the periodic rows (the
    identity when nothing is periodic), so that plane heights along the periodic
    directions are the true ones and fractional coordinates exist.
    """
    n = cell.shape[0]
    per = pbc[:, :, None]
    rows = torch.where(per, cell, torch.zeros_like(cell))
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device).expand(n, 3, 3)
    # two periodic rows: the third is their unit normal
    others = [(1, 2), (2, 0), (0, 1)]
    normals = torch.stack(
        [_normalise(torch.cross(rows[:, a], rows[:, b], dim=-1)) for a, b in others], 1
    )
    two = torch.where(per, rows, normals)
    # one periodic row a: the others are an orthonormal pair u, w perpendicular to a
    a_hat = _normalise(rows.sum(1))
    helper = torch.where(a_hat[:, :1].abs() < 0.9, eye[:, 0], eye[:, 1])
    u = _normalise(torch.cross(a_hat, helper, dim=-1))
    w = torch.cross(a_hat, u, dim=-1)
    rank = torch.cumsum((~pbc).long(), dim=1) - 1  # order among the non-periodic rows
    one = torch.where(per, rows, torch.where((rank == 0)[:, :, None], u[:, None], w[:, None]))
    count = pbc.sum(-1)[:, None, None]
    return torch.where(
        count == 3, rows, torch.where(count == 2, two, torch.where(count == 1, one, eye))
    )


def cell_heights(cell: torch.Tensor) -> torch.Tensor:
    """(n_systems, 3) distances between lattice planes, h_k = |det| / |a_l x a_m| (A)."""
    volume = torch.linalg.det(cell).abs()
    areas = torch.stack(
        [
            torch.cross(cell[:, a], cell[:, b], dim=-1).norm(dim=-1)
            for a, b in [(1, 2), (2, 0), (0, 1)]
        ],
        -1,
    )
    return volume[:, None] / areas


def neighbor_list(
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    system_idx: torch.Tensor,
    num_atoms: Sequence[int],
    cutoff: float,
    max_candidates: int = 2**20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs within ``cutoff`` (A) of every system: edge_index (2, E), shifts (E, 3).

    ``num_atoms`` are the system sizes on the host (they fix the shapes). Shifts are
    integer multiples of the cell rows, as floats of the positions' dtype, relative to
    the given (unwrapped) positions. Synchronises with the host (output sizes are data
    dependent); meant to be called only when the list must be rebuilt.
    """
    if cutoff <= 0:
        raise ValueError(f"cutoff must be > 0, got {cutoff}")
    device, dtype = positions.device, positions.dtype
    sizes = np.asarray(num_atoms, dtype=np.int64)
    eff = effective_cell(cell.to(dtype), pbc)
    heights = cell_heights(eff)
    bad = (heights < 1e-6) & pbc
    if bool(bad.any()):
        s = int(bad.any(-1).nonzero()[0])
        raise ValueError(f"system {s}: periodic cell {cell[s].tolist()} has (near) zero volume")
    frac = torch.einsum("ax,axy->ay", positions, torch.linalg.inv(eff)[system_idx])
    wrap = torch.where(pbc[system_idx], torch.floor(frac), torch.zeros_like(frac))
    wrapped = positions - torch.einsum("ak,akx->ax", wrap, eff[system_idx])
    reach = torch.where(pbc, torch.ceil(cutoff / heights), torch.zeros_like(heights))
    reach = reach.long().cpu().numpy()  # (n_systems, 3), host
    atom_start = torch.as_tensor(np.cumsum(sizes) - sizes, device=device)

    centres, neighbours, shifts = [], [], []
    groups: dict[tuple[int, int, int], list[int]] = {}
    for s, r in enumerate(map(tuple, reach)):
        groups.setdefault(r, []).append(s)
    for r, members in groups.items():
        grid = torch.tensor(
            list(itertools.product(*[range(-k, k + 1) for k in r])), dtype=dtype, device=device
        )
        i, j, g = _pairs_of_group(
            wrapped, eff, grid, np.asarray(members), sizes, atom_start, cutoff, max_candidates
        )
        centres.append(i)
        neighbours.append(j)
        shifts.append(grid[g] - wrap[j] + wrap[i])
    edge_index = torch.stack([torch.cat(centres), torch.cat(neighbours)])
    order = torch.argsort(edge_index[0], stable=True) if len(groups) > 1 else None
    edge_shifts = torch.cat(shifts)
    if order is not None:
        edge_index, edge_shifts = edge_index[:, order], edge_shifts[order]
    return edge_index, edge_shifts


def _pairs_of_group(
    wrapped: torch.Tensor,
    eff: torch.Tensor,
    grid: torch.Tensor,
    members: np.ndarray,
    sizes: np.ndarray,
    atom_start: torch.Tensor,
    cutoff: float,
    max_candidates: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre, neighbour and image index of the pairs within cutoff of some systems.

    Candidates are enumerated as flat indices over (system, i, j, image) and tested
    chunk by chunk; the image vectors S @ cell of each system are tabulated once.
    """
    device = wrapped.device
    n_img = grid.shape[0]
    counts = sizes[members] ** 2 * n_img
    ends_host = np.cumsum(counts)
    total = int(ends_host[-1])
    ends = torch.as_tensor(ends_host, device=device)
    starts = ends - torch.as_tensor(counts, device=device)
    member_t = torch.as_tensor(members, device=device)
    n_of = torch.as_tensor(sizes[members], device=device)
    first = atom_start[member_t]
    images = torch.einsum("gk,skx->sgx", grid, eff[member_t])  # (n_members, n_img, 3)
    zero_image = n_img // 2  # the product of symmetric ranges has S = 0 in the middle
    out_i, out_j, out_g = [], [], []
    for lo in range(0, total, max_candidates):
        flat = torch.arange(lo, min(lo + max_candidates, total), device=device)
        m = torch.searchsorted(ends, flat, right=True)
        local = flat - starts[m]
        g = local % n_img
        pair = local // n_img
        i = first[m] + pair // n_of[m]
        j = first[m] + pair % n_of[m]
        d = wrapped[j] - wrapped[i] + images[m, g]
        keep = ((d * d).sum(-1) < cutoff * cutoff) & ((i != j) | (g != zero_image))
        out_i.append(i[keep])
        out_j.append(j[keep])
        out_g.append(g[keep])
    return torch.cat(out_i), torch.cat(out_j), torch.cat(out_g)


class VerletList:
    """A neighbour list with cutoff ``r_max + skin`` (A), rebuilt only when needed.

    ``build`` computes the list and remembers the positions; ``is_stale`` is a device
    boolean, true once some atom has moved more than skin / 2 from where it was at the
    last build (max_a |R_a - R_a^build| > skin / 2), which is when a pair closer than
    r_max could be missing. Reading it on the host is the caller's choice (see
    :class:`mlip.md.forcefield.ForceField`).
    """

    def __init__(self, r_max: float, skin: float = 1.0, max_candidates: int = 2**20) -> None:
        if r_max < 0 or skin < 0 or r_max + skin <= 0:
            raise ValueError(f"need r_max >= 0, skin >= 0, r_max + skin > 0; got {r_max}, {skin}")
        if max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
        self.r_max, self.skin, self.max_candidates = float(r_max), float(skin), max_candidates
        self.edge_index: torch.Tensor | None = None
        self.edge_shifts: torch.Tensor | None = None
        self.reference: torch.Tensor | None = None
        self.builds = 0

    @property
    def cutoff(self) -> float:
        return self.r_max + self.skin

    def build(
        self,
        positions: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        system_idx: torch.Tensor,
        num_atoms: Sequence[int],
    ) -> None:
        """Rebuild the list for these positions (synchronises with the host)."""
        self.edge_index, self.edge_shifts = neighbor_list(
            positions, cell, pbc, system_idx, num_atoms, self.cutoff, self.max_candidates
        )
        self.reference = positions.detach().clone()
        self.builds += 1

    def is_stale(self, positions: torch.Tensor) -> torch.Tensor:
        """0-d bool tensor on the device: has any atom moved more than skin / 2?"""
        if self.reference is None or self.reference.shape != positions.shape:
            return torch.ones((), dtype=torch.bool, device=positions.device)
        moved2 = ((positions.detach() - self.reference) ** 2).sum(-1)
        return (moved2 > (0.5 * self.skin) ** 2).any()
