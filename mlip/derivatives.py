"""Forces, stress, Hessians and Hessian-vector products of an energy model, by autograd.

For an energy model E(R, cell) (eV, Angstrom) and a batch of systems:

* forces      F = -dE/dR                                   (n_atoms, 3), eV/A
* virial      W = -dE/d(eps) at eps = 0, for the symmetric strain eps applied as
                R -> R (1 + eps), cell -> cell (1 + eps)     (n_systems, 3, 3), eV
* stress      sigma = -W / V  (ASE sign convention)          (n_systems, 3, 3), eV/A^3
* Hessian     H = d2E/dR dR = -dF/dR, one (3N_s, 3N_s) atom-major block per system
* HVP         H v = d(dE/dR . v)/dR, one extra reverse pass (differentiable when training)
* rows        H[3i + a, :] of selected atoms i, (3k, 3 n_atoms): k atoms cost 3k products

The Hessian rows of all systems of a batch are taken together: a probe that is one-hot
at local coordinate k of every system returns row k of every block in one
vector-Jacobian product, so a batch costs max_s(3 N_s) products, evaluated in
vectorised chunks (``torch.autograd.grad(..., is_grads_batched=True)``, i.e. vmap)
with a plain loop as fallback. :func:`hessian_rows` takes the rows of selected atoms
only (one-hot probes at their coordinates), at a cost proportional to their number: a
crystal's force constants need the rows of its symmetry-irreducible atoms only.
"""

from __future__ import annotations

from typing import Protocol

import torch

from mlip import keys


class EnergyModel(Protocol):
    """What the derivative functions need of a model: forward(batch) -> {ENERGY: (n_systems,)}."""

    r_max: float

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...


def compute(
    model: EnergyModel,
    batch: dict[str, torch.Tensor],
    forces: bool = True,
    stress: bool = False,
    hessian: bool = False,
    training: bool = False,
    hessian_probes: torch.Tensor | None = None,
    hessian_chunk: int | None = None,
    hessian_atoms: torch.Tensor | None = None,
    members: bool = False,
) -> dict[str, torch.Tensor]:
    """Evaluate a model and the requested derivatives on a batch.

    Returns a dict with ENERGY (n_systems,), NODE_ENERGY (n_atoms,) and, as asked,
    FORCES (n_atoms, 3), STRESS and VIRIAL (n_systems, 3, 3), HESSIAN (flattened
    per-system blocks, see :mod:`mlip.keys`). ``hessian_probes`` (n_atoms, 3), one probe
    vector per system on its own atoms, adds HESSIAN_PROBED (n_atoms, 3): H_s v_s on
    the atoms of each system, differentiable; probes of shape (K, n_atoms, 3) give
    (K, n_atoms, 3) in one vectorised pass (``hessian_chunk`` at a time when given, see
    :func:`hessian_vector_products`). ``hessian_atoms`` (k,) indices into the
    batch's atoms adds HESSIAN_ROWS (3k, 3 n_atoms): the rows 3i, 3i+1, 3i+2 of each
    selected atom i of the batch-wide Hessian (zero outside the atom's own system), see
    :func:`hessian_rows`. ``training=True`` keeps the graph so
    that a loss of these outputs can be back-propagated to the weights.
    ``members=True`` with a committee (a model with ``members``, :mod:`mlip.committee`)
    and ``forces`` adds MEMBER_ENERGY (n_members, n_systems) and MEMBER_FORCES
    (n_members, n_atoms, 3), eV/A: each member is evaluated on its own
    (:func:`_committee_members`) and every output, linear in the energy, is the mean
    of the members' outputs. The input batch is not modified.
    """
    if members and forces and getattr(model, "members", None) is not None:
        return _committee_members(
            model.members, batch, stress, hessian, training, hessian_probes, hessian_chunk,
            hessian_atoms,
        )  # fmt: skip
    batch = dict(batch)
    want_second = hessian or hessian_probes is not None or hessian_atoms is not None
    need_grad = forces or stress or want_second
    positions = batch[keys.POSITIONS].detach()
    if need_grad:
        positions = positions.requires_grad_(True)
    with torch.enable_grad() if need_grad else torch.no_grad():
        strain = None
        if stress:  # built under enable_grad, so that it works inside torch.no_grad() too
            strain, batch[keys.POSITIONS], batch[keys.CELL] = _strained(batch, positions)
        else:
            batch[keys.POSITIONS] = positions
        out = dict(model(batch))
        if not need_grad:
            return out
        inputs = [positions] + ([strain] if stress else [])
        create_graph = training or want_second
        grads = torch.autograd.grad(
            out[keys.ENERGY].sum(), inputs, create_graph=create_graph, allow_unused=True
        )
        grad_positions = grads[0] if grads[0] is not None else torch.zeros_like(positions)
        out[keys.FORCES] = -grad_positions
        if stress:
            virial = -grads[1] if grads[1] is not None else torch.zeros_like(strain)
            volume = torch.linalg.det(batch[keys.CELL]).abs().clamp_min(1e-12)
            out[keys.VIRIAL] = virial
            out[keys.STRESS] = -virial / volume[:, None, None]
        if hessian_probes is not None and hessian_probes.dim() == 3 and hessian_chunk:
            out[keys.HESSIAN_PROBED] = hessian_vector_products(
                grad_positions, positions, hessian_probes, hessian_chunk, training
            )
        elif hessian_probes is not None:
            out[keys.HESSIAN_PROBED] = _hessian_vector_products(
                grad_positions, positions, hessian_probes, training
            )
        if hessian:
            chunk = hessian_chunk or auto_hessian_chunk(batch[keys.EDGE_INDEX].shape[1])
            out[keys.HESSIAN] = hessian_blocks(
                grad_positions, positions, batch[keys.NUM_ATOMS], chunk, training
            )
        if hessian_atoms is not None:
            chunk = hessian_chunk or auto_hessian_chunk(batch[keys.EDGE_INDEX].shape[1])
            out[keys.HESSIAN_ROWS] = hessian_rows(
                grad_positions, positions, hessian_atoms, chunk, training
            )
    if not training:
        out = {k: v.detach() for k, v in out.items()}
    return out


def _committee_members(
    members: torch.nn.ModuleList,
    batch: dict[str, torch.Tensor],
    stress: bool,
    hessian: bool,
    training: bool,
    hessian_probes: torch.Tensor | None,
    hessian_chunk: int | None,
    hessian_atoms: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """:func:`compute` of each member in turn; the committee's outputs are their means.

    Energy, forces, virial, stress and Hessians are linear in E, so those of the mean
    energy E = (1/K) sum_k E_k are the means of the members'. Each member has its own
    forward and reverse pass: reverse passes from rows of the stacked member energies of
    one joint graph cost K times as much, since each walks every member's graph
    (benchmarks/committee_md.py measures both), and a member's graph is freed before the
    next one is built.
    """
    outs = [
        compute(
            member,
            batch,
            forces=True,
            stress=stress,
            hessian=hessian,
            training=training,
            hessian_probes=hessian_probes,
            hessian_chunk=hessian_chunk,
            hessian_atoms=hessian_atoms,
        )
        for member in members
    ]
    out = {key: torch.stack([o[key] for o in outs]).mean(0) for key in outs[0]}
    out[keys.MEMBER_ENERGY] = torch.stack([o[keys.ENERGY] for o in outs])
    out[keys.MEMBER_FORCES] = torch.stack([o[keys.FORCES] for o in outs])
    return out


def _hessian_vector_products(
    grad_positions: torch.Tensor, positions: torch.Tensor, probes: torch.Tensor, training: bool
) -> torch.Tensor:
    """H v for probes (n_atoms, 3) or (K, n_atoms, 3), differentiable when ``training``.

    Several probes are one reverse pass each when training: the vectorised product
    (``is_grads_batched``) of a graph that is differentiated once more was slower than a
    loop in training steps (benchmarks/training_throughput.py); without a weight
    gradient the vectorised pass is kept.
    """

    def product(v: torch.Tensor, batched: bool) -> torch.Tensor:
        (hv,) = torch.autograd.grad(
            grad_positions,
            positions,
            grad_outputs=v,
            create_graph=training,
            retain_graph=True,
            allow_unused=True,
            is_grads_batched=batched,
        )
        return torch.zeros_like(v) if hv is None else hv

    if probes.dim() == 2:
        return product(probes, False)
    if training:
        return torch.stack([product(v, False) for v in probes])
    return product(probes, True)


def compile_model(model: EnergyModel) -> EnergyModel:
    """``torch.compile`` of an energy model for energies, forces and stress (not Hessians).

    Dynamic shapes, so that other atom, edge and system counts reuse the compiled graph.
    TorchInductor's multi-threaded CPU kernels for this graph crash or fail to compile
    with more than one torch thread (torch 2.13: a parallel scatter-add with symbolic
    sizes), so the generated CPU kernels run on one thread (``cpp.threads = 1``; eager
    fallbacks and GPU kernels are unaffected). Callers must check the elements first:
    the model's own check is skipped while compiling. A committee (a model with
    ``members``) becomes a committee of compiled members, since ``compute(...,
    members=True)`` calls the members one by one, bypassing a compiled whole.
    """
    members = getattr(model, "members", None)
    if members is not None:
        return type(model)([compile_model(m) for m in members])
    return torch.compile(model, dynamic=True, options={"cpp.threads": 1})


def _strained(
    batch: dict[str, torch.Tensor], positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero strain eps (n_systems, 3, 3) and R (1 + sym eps), cell (1 + sym eps) built on it."""
    n_systems = batch[keys.NUM_ATOMS].shape[0]
    strain = torch.zeros(
        n_systems, 3, 3, dtype=positions.dtype, device=positions.device, requires_grad=True
    )
    symmetric = 0.5 * (strain + strain.transpose(1, 2))
    cell = batch[keys.CELL] + torch.bmm(batch[keys.CELL], symmetric)
    strained = positions + torch.einsum("ax,axy->ay", positions, symmetric[batch[keys.BATCH]])
    return strain, strained, cell


def auto_hessian_chunk(num_edges: int, budget: int = 20_000) -> int:
    """Rows per vectorised product: vmap memory grows as rows x edges, so large graphs
    take fewer rows at a time (a 108-atom Cu cell was faster with fewer rows at once)."""
    return max(1, min(64, budget // max(1, num_edges)))


def hessian_blocks(
    grad_positions: torch.Tensor,
    positions: torch.Tensor,
    num_atoms: torch.Tensor,
    chunk: int = 64,
    create_graph: bool = False,
) -> torch.Tensor:
    """Exact per-system Hessian blocks from dE/dR (built with create_graph=True).

    Returns the flattened blocks (sum_s (3 N_s)^2,), eV/A^2, atom-major.
    """
    dof = 3 * num_atoms  # (n_systems,)
    max_dof = int(dof.max())
    n_atoms = positions.shape[0]
    offsets = torch.cumsum(dof, 0) - dof  # first coordinate of each system
    system_of_coord = torch.repeat_interleave(torch.arange(len(dof), device=dof.device), dof)
    local_coord = torch.arange(3 * n_atoms, device=dof.device) - offsets[system_of_coord]

    rows = torch.empty(max_dof, 3 * n_atoms, dtype=positions.dtype, device=positions.device)
    flat_grad = grad_positions.reshape(-1)
    for start in range(0, max_dof, chunk):
        ks = torch.arange(start, min(start + chunk, max_dof), device=dof.device)
        probes = (local_coord[None, :] == ks[:, None]).to(positions.dtype)  # (chunk, 3 n_atoms)
        rows[ks] = _batched_vjp(flat_grad, positions, probes, create_graph).reshape(len(ks), -1)

    blocks = []
    for s in range(len(dof)):
        o, d = int(offsets[s]), int(dof[s])
        blocks.append(rows[:d, o : o + d].reshape(-1))
    return torch.cat(blocks)


def hessian_rows(
    grad_positions: torch.Tensor,
    positions: torch.Tensor,
    atoms: torch.Tensor | list[int],
    chunk: int = 64,
    create_graph: bool = False,
) -> torch.Tensor:
    """Exact rows of the Hessian of selected atoms from dE/dR (built with create_graph=True).

    ``atoms`` (k,) are indices into ``positions`` (n_atoms, 3). Returns (3k, 3 n_atoms),
    eV/A^2: row 3m + a is d(dE/dR_{atoms[m], a})/dR, atom-major columns (x0, y0, z0, x1,
    ...). Each row is the product of the Hessian with a one-hot vector
    (:func:`hessian_vector_products`), so the cost is proportional to k, not to n_atoms.
    """
    n_atoms = positions.shape[0]
    atoms = torch.as_tensor(atoms, dtype=torch.long, device=positions.device).reshape(-1)
    if len(atoms) and (int(atoms.min()) < 0 or int(atoms.max()) >= n_atoms):
        raise IndexError(f"atom indices must be in 0..{n_atoms - 1}, got {atoms.tolist()}")
    coords = (3 * atoms[:, None] + torch.arange(3, device=atoms.device)).reshape(-1)
    probes = torch.zeros(len(coords), 3 * n_atoms, dtype=positions.dtype, device=positions.device)
    probes[torch.arange(len(coords), device=coords.device), coords] = 1.0
    products = hessian_vector_products(
        grad_positions, positions, probes.reshape(-1, n_atoms, 3), chunk, create_graph
    )
    return products.reshape(len(coords), 3 * n_atoms)


def hessian_vector_products(
    grad_positions: torch.Tensor,
    positions: torch.Tensor,
    vectors: torch.Tensor,
    chunk: int = 64,
    create_graph: bool = False,
) -> torch.Tensor:
    """H v for K vectors v (K, n_atoms, 3), A, from dE/dR (built with create_graph=True).

    Returns (K, n_atoms, 3), eV/A (eV/A^2 times the vectors' A): the exact linear
    response of the forces, -H v, is the change of the forces for a displacement v.
    ``chunk`` products at a time are vectorised (vmap), with a loop fallback. (The
    loss's probes, :func:`compute` without ``hessian_chunk``, take
    ``_hessian_vector_products`` instead: one reverse pass per probe when training.)
    """
    out = torch.empty(vectors.shape, dtype=positions.dtype, device=positions.device)
    flat_grad = grad_positions.reshape(-1)
    for start in range(0, len(vectors), chunk):
        part = vectors[start : start + chunk].reshape(-1, flat_grad.numel())
        out[start : start + len(part)] = _batched_vjp(flat_grad, positions, part, create_graph)
    return out


def _batched_vjp(
    flat_grad: torch.Tensor, positions: torch.Tensor, probes: torch.Tensor, create_graph: bool
) -> torch.Tensor:
    """Rows probes @ d(flat_grad)/d(positions), vectorised (vmap) with a loop fallback."""
    try:
        (out,) = torch.autograd.grad(
            flat_grad,
            positions,
            grad_outputs=probes,
            is_grads_batched=True,
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
        )
        if out is None:
            return torch.zeros(probes.shape[0], *positions.shape, dtype=positions.dtype)
        return out
    except RuntimeError:  # an op without a batching rule: fall back to one product per row
        rows = []
        for probe in probes:
            (row,) = torch.autograd.grad(
                flat_grad,
                positions,
                probe,
                retain_graph=True,
                create_graph=create_graph,
                allow_unused=True,
            )
            rows.append(torch.zeros_like(positions) if row is None else row)
        return torch.stack(rows)


def split_hessian(flat: torch.Tensor, num_atoms: torch.Tensor) -> list[torch.Tensor]:
    """Split flattened Hessian blocks into a list of (3 N_s, 3 N_s) matrices."""
    sizes = (3 * num_atoms) ** 2
    return [
        block.reshape(3 * int(n), 3 * int(n))
        for block, n in zip(torch.split(flat, sizes.tolist()), num_atoms, strict=True)
    ]
