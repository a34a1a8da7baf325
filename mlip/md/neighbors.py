"""Batched neighbour lists on the device (torch only), with a Verlet skin.

:func:`batched_neighbor_list` finds, for every system of a batch (torch tensors on any
device), all pairs (i, j, S) with

    |R_j - R_i + S @ cell| < cutoff,   S integer along periodic directions, 0 otherwise,

excluding i == j with S == 0, in the edge convention of :mod:`mlip.keys`. It works for
any cell, including cells smaller than the cutoff: positions are wrapped into the cell
(fractional coordinates f in [0, 1) along periodic directions), and along a periodic
direction k only the images |S_k| <= ceil(cutoff / h_k) can be within reach, h_k being
the distance between the lattice planes spanned by the other two cell vectors
(h_k = V / |a_l x a_m|). Small systems (all replicas of a batch at once) are tested
pair by pair, O(N^2 n_images) work; large systems in cells at least 2.5 cutoffs high
use a cell list, O(N). Candidates are processed in chunks of ``max_candidates`` to
bound memory. (The host, one-structure-at-a-time list of the data layer, from vesin, is
:func:`mlip.data.graph.neighbor_list`; both give the same pairs.)

:class:`VerletList` builds the list with cutoff r_max + skin and keeps it until some
atom has moved more than skin / 2 since the build; until then every pair closer than
r_max is in the list (two atoms approach each other by at most skin), and the extra
pairs are harmless because models zero every edge beyond r_max.

When the cell changes (NPT), pair vectors across the boundary, R_j - R_i + S @ cell,
change with the cell even if no atom moves, so displacements alone do not bound them.
:meth:`VerletList.is_stale` with ``cell`` given uses the exact criterion of
:func:`deformed_cell_limit`: with F = cell_ref^-1 cell the deformation gradient since
the build (row vectors: cell = cell_ref F), every pair vector is r = r' F with
r' = r_ref + Delta_j - Delta_i, Delta_a = R_a F^-1 - R_a^ref the displacement seen in
the reference cell. A pair left out of the list had |r_ref| >= r_max + skin, so now
|r| >= s_min (r_max + skin - 2 max_a |Delta_a|), s_min the smallest singular value of
F; the list is complete while 2 max |Delta| < r_max + skin - r_max / s_min. For F = 1
this is the fixed-cell test max |Delta| < skin / 2.
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


def batched_neighbor_list(
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    system_idx: torch.Tensor,
    num_atoms: Sequence[int],
    cutoff: float,
    max_candidates: int = 2**20,
    cell_list_min_atoms: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs within ``cutoff`` (A) of every system: edge_index (2, E), shifts (E, 3).

    ``num_atoms`` are the system sizes on the host (they fix the shapes). Shifts are
    integer multiples of the cell rows, as floats of the positions' dtype, relative to
    the given (unwrapped) positions. Systems of at least ``cell_list_min_atoms`` atoms
    whose cell is at least 2.5 cutoffs high along its periodic directions use a cell
    list (:func:`_cell_list_pairs`, O(N)); the others are tested pair by pair, batched.
    Synchronises with the host (output sizes are data dependent); meant to be called
    only when the list must be rebuilt.
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
    heights_host, pbc_host = heights.cpu().numpy(), pbc.cpu().numpy()
    atom_start_host = np.cumsum(sizes) - sizes
    atom_start = torch.as_tensor(atom_start_host, device=device)

    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # i, j, image S'
    groups: dict[tuple[int, int, int], list[int]] = {}
    for s, r in enumerate(map(tuple, reach)):
        tall = (~pbc_host[s] | (heights_host[s] >= 2.5 * cutoff)).all()
        if sizes[s] >= cell_list_min_atoms and tall:
            lo, hi = atom_start_host[s], atom_start_host[s] + sizes[s]
            parts.append(
                _cell_list_pairs(
                    wrapped,
                    frac - wrap,
                    eff[s],
                    heights_host[s],
                    pbc_host[s],
                    lo,
                    hi,
                    cutoff,
                    max_candidates,
                )  # fmt: skip
            )
        else:
            groups.setdefault(r, []).append(s)
    for r, members in groups.items():
        grid = torch.tensor(
            list(itertools.product(*[range(-k, k + 1) for k in r])), dtype=dtype, device=device
        )
        i, j, g = _pairs_of_group(
            wrapped, eff, grid, np.asarray(members), sizes, atom_start, cutoff, max_candidates
        )
        parts.append((i, j, grid[g]))
    i, j, image = (torch.cat(x) for x in zip(*parts, strict=True))
    edge_index, edge_shifts = torch.stack([i, j]), image - wrap[j] + wrap[i]
    if len(parts) > 1:
        order = torch.argsort(edge_index[0], stable=True)
        edge_index, edge_shifts = edge_index[:, order], edge_shifts[order]
    return edge_index, edge_shifts


def _cell_list_pairs(
    wrapped: torch.Tensor,
    frac: torch.Tensor,
    eff: torch.Tensor,
    heights: np.ndarray,
    pbc: np.ndarray,
    lo: int,
    hi: int,
    cutoff: float,
    max_candidates: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs of atoms lo..hi-1 (one system) within cutoff, by binning: i, j, image S'.

    The cell is divided into n_k = floor(h_k / (cutoff / 2)) bins along each axis
    (periodic axes: fractional coordinate in [0, 1); others: the atoms' extent), so bins
    are at least cutoff / 2 high and a pair within cutoff lies at most r_k =
    ceil(cutoff / bin height) bins apart. Each atom is tested against the atoms of the
    (2 r_k + 1) products of neighbouring bins (wrapped around periodic axes, with the
    image S' of the wrap); the caller guarantees n_k >= 2 r_k + 1 on periodic axes
    (h_k >= 2.5 cutoff), so no bin is visited twice. Bins are padded to the fullest one.
    """
    device, dtype = wrapped.device, wrapped.dtype
    f = frac[lo:hi]
    low = torch.where(torch.as_tensor(pbc, device=device), 0.0, f.min(0).values)
    span = torch.where(torch.as_tensor(pbc, device=device), 1.0, f.max(0).values - low)
    span_host = span.cpu().numpy() * (1 + 1e-9) + 1e-9
    length = heights * np.where(pbc, 1.0, span_host)  # A along each axis
    n_bins = np.maximum(1, np.floor(length / (0.5 * cutoff))).astype(np.int64)
    reach = np.ceil(cutoff / (length / n_bins)).astype(np.int64)
    reach = np.where(pbc, reach, np.minimum(reach, n_bins - 1))
    n_t = torch.as_tensor(n_bins, device=device)
    scaled = (f - low) / torch.as_tensor(span_host, dtype=dtype, device=device)
    bins = torch.minimum((scaled * n_t).floor().long().clamp_min(0), n_t - 1)  # (N, 3)
    flat = (bins[:, 0] * n_bins[1] + bins[:, 1]) * n_bins[2] + bins[:, 2]
    order = torch.argsort(flat)
    counts = torch.bincount(flat, minlength=int(np.prod(n_bins)))
    starts = torch.cumsum(counts, 0) - counts
    fullest = int(counts.max())
    offsets = torch.tensor(
        list(itertools.product(*[range(-k, k + 1) for k in reach])), device=device
    )  # (n_off, 3)
    periodic = torch.as_tensor(pbc, device=device)
    slots = torch.arange(fullest, device=device)
    n_atoms = hi - lo
    chunk = max(1, max_candidates // (len(offsets) * fullest))
    out_i, out_j, out_s = [], [], []
    for a in range(0, n_atoms, chunk):
        centre = torch.arange(a, min(a + chunk, n_atoms), device=device)  # local indices
        target = bins[centre, None, :] + offsets[None]  # (B, n_off, 3)
        image = torch.where(periodic, torch.div(target, n_t, rounding_mode="floor"), 0)
        inside = (periodic | ((target >= 0) & (target < n_t))).all(-1)  # (B, n_off)
        target = torch.where(periodic, target - image * n_t, target.clamp(0))
        target = torch.minimum(target, n_t - 1)
        tbin = (target[..., 0] * n_bins[1] + target[..., 1]) * n_bins[2] + target[..., 2]
        valid = inside[..., None] & (slots < counts[tbin][..., None])  # (B, n_off, M)
        pos = (starts[tbin][..., None] + slots).clamp(max=n_atoms - 1)
        neighbour = order[pos]  # local indices, (B, n_off, M)
        i = (centre[:, None, None] + lo).expand_as(neighbour)[valid]
        j = neighbour[valid] + lo
        s = image[:, :, None, :].expand(*neighbour.shape, 3)[valid].to(dtype)
        d = wrapped[j] - wrapped[i] + s @ eff
        keep = ((d * d).sum(-1) < cutoff * cutoff) & ((i != j) | (s != 0).any(-1))
        out_i.append(i[keep])
        out_j.append(j[keep])
        out_s.append(s[keep])
    return torch.cat(out_i), torch.cat(out_j), torch.cat(out_s)


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


def smallest_singular_value(matrices: torch.Tensor) -> torch.Tensor:
    """(n,) smallest singular values of (n, 3, 3) matrices, in closed form on the device.

    s_min^2 is the smallest eigenvalue of the symmetric A = F F^T, from the
    trigonometric solution of its characteristic cubic (Smith 1961): with q = tr A / 3,
    p = sqrt(|A - q|_F^2 / 6) and r = det((A - q) / p) / 2, the eigenvalues are
    q + 2 p cos(acos(r) / 3 + 2 pi k / 3); the smallest is k = 1 (p = 0: all equal q).
    No LAPACK call, hence no error check that would wait for the device.
    """
    a = matrices @ matrices.transpose(1, 2)
    q = torch.diagonal(a, dim1=1, dim2=2).sum(-1) / 3.0
    shifted = a - q[:, None, None] * torch.eye(3, dtype=a.dtype, device=a.device)
    p = torch.sqrt((shifted * shifted).sum((1, 2)) / 6.0)
    b = shifted / torch.where(p > 0, p, torch.ones_like(p))[:, None, None]
    det = (b[:, 0] * torch.cross(b[:, 1], b[:, 2], dim=-1)).sum(-1)
    phi = torch.acos((0.5 * det).clamp(-1.0, 1.0)) / 3.0
    smallest = q + 2.0 * p * torch.cos(phi + 2.0 * np.pi / 3.0)
    return torch.sqrt(torch.where(p > 0, smallest, q).clamp_min(0.0))


def deformed_cell_limit(
    cell_ref: torch.Tensor, cell: torch.Tensor, r_max: float, skin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """F^-1 (n_systems, 3, 3) and the largest allowed displacement (n_systems,) A.

    For invertible cells (rows) with cell = cell_ref F: F^-1 = cell^-1 cell_ref maps
    positions back to the reference cell, and the list built at cell_ref with cutoff
    r_max + skin is complete while every such displacement Delta satisfies
    |Delta| <= (r_max + skin - r_max / s_min(F)) / 2 (module docstring); a negative
    limit means stale whatever the atoms did. Systems whose cell did not change get
    exactly skin / 2 and F^-1 = 1.
    """
    # inv_ex: no error check, hence no host sync
    f_inv = torch.linalg.inv_ex(cell)[0] @ cell_ref
    s_min = smallest_singular_value(torch.linalg.inv_ex(cell_ref)[0] @ cell)
    s_min = s_min * (1.0 - 64.0 * torch.finfo(cell.dtype).eps)  # rounding: stay conservative
    limit = 0.5 * (r_max + skin - r_max / s_min.clamp_min(torch.finfo(cell.dtype).tiny))
    same = (cell == cell_ref).all(-1).all(-1)
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device).expand_as(f_inv)
    f_inv = torch.where(same[:, None, None], eye, f_inv)
    return f_inv, torch.where(same, torch.full_like(limit, 0.5 * skin), limit)


class VerletList:
    """A neighbour list with cutoff ``r_max + skin`` (A), rebuilt only when needed.

    ``build`` computes the list and remembers the positions and cells; ``is_stale`` is
    a device boolean, true once some atom has moved more than skin / 2 from where it was
    at the last build (max_a |R_a - R_a^build| > skin / 2), which is when a pair closer
    than r_max could be missing. With ``cell`` given (cells that change, NPT) the test
    is the exact deformed-cell criterion of :func:`deformed_cell_limit`, applied to the
    systems whose cell differs from the one at the build. Reading it on the host is the
    caller's choice (see :class:`mlip.md.forcefield.ForceField`).
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
        self.reference_cell: torch.Tensor | None = None
        self.reference_pbc: torch.Tensor | None = None
        self.reference_system_idx: torch.Tensor | None = None
        self._all_periodic = True
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
        self.edge_index, self.edge_shifts = batched_neighbor_list(
            positions, cell, pbc, system_idx, num_atoms, self.cutoff, self.max_candidates
        )
        self.reference = positions.detach().clone()
        self.reference_pbc = pbc.detach().clone()
        self._all_periodic = bool(pbc.all())  # host: then the cells are their own effective cells
        self.reference_cell = self._effective(cell.detach().to(positions.dtype)).clone()
        self.reference_system_idx = system_idx
        self.builds += 1

    def _effective(self, cell: torch.Tensor) -> torch.Tensor:
        return cell if self._all_periodic else effective_cell(cell, self.reference_pbc)

    def is_stale(self, positions: torch.Tensor, cell: torch.Tensor | None = None) -> torch.Tensor:
        """0-d bool tensor on the device: could a pair closer than r_max be missing?

        Without ``cell``: has any atom moved more than skin / 2 since the build? With
        ``cell`` (n_systems, 3, 3), the current cells: the exact test for deformed cells
        (:func:`deformed_cell_limit`), the same as without for unchanged cells.
        """
        if self.reference is None or self.reference.shape != positions.shape:
            return torch.ones((), dtype=torch.bool, device=positions.device)
        if cell is None:
            moved2 = ((positions.detach() - self.reference) ** 2).sum(-1)
            return (moved2 > (0.5 * self.skin) ** 2).any()
        f_inv, limit = deformed_cell_limit(
            self.reference_cell,
            self._effective(cell.detach().to(self.reference.dtype)),
            self.r_max,
            self.skin,
        )
        idx = self.reference_system_idx
        back = torch.einsum("ax,axy->ay", positions.detach(), f_inv[idx])
        moved2 = ((back - self.reference) ** 2).sum(-1)
        atom_limit = limit[idx]
        return ((moved2 > atom_limit * atom_limit) | (atom_limit < 0)).any()
