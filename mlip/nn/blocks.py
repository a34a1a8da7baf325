"""Equivariant interaction block of the mlip model (built from e3nn).

For node features h_i (irreps H_in), element one-hot z_i, edge unit vectors
r^_ij with spherical harmonics Y(r^_ij) and radial embedding phi(r_ij) (Bessel basis
times the smooth envelope, zero beyond r_c):

    A_i   = (1 / n_avg) sum_j  R(phi(r_ij)) * [ (W_up h_j) (x) Y(r^_ij) ]      (convolution)
    A_i  <- W_A A_i + W_sq (A_i (x)_channelwise A_i)                          (body order 3)
    h'_i  = Gate(A_i) + W_self(h_i (x) z_i)                                    (residual)

(x) is the Clebsch-Gordan tensor product restricted to the natural-parity irreps
(0e, 1o, 2e, 3o, ...); R is a bias-free MLP whose outputs weight each product path
per channel and are multiplied by the envelope, so an edge beyond r_c contributes
exactly nothing. The gate applies SiLU to scalars and multiplies each l > 0 irrep by
a sigmoid of its own gate scalar. Every operation is E(3)-equivariant, so energies
built from the scalar outputs are invariant under rotations, reflections and
translations (tested block by block in tests/test_nn_equivariance.py, and on the
model in tests/test_model_contract.py).
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import Gate


def natural_irreps(num_channels: int, l_max: int) -> o3.Irreps:
    """num_channels copies of each natural-parity irrep 0e, 1o, 2e, ... up to l_max."""
    return o3.Irreps([(num_channels, (l, (-1) ** l)) for l in range(l_max + 1)])


class RadialMLP(torch.nn.Module):
    """Bias-free SiLU MLP (so R(0) = 0) mapping the radial embedding to path weights."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        for k in range(len(sizes) - 1):
            linear = torch.nn.Linear(sizes[k], sizes[k + 1], bias=False)
            torch.nn.init.normal_(linear.weight, std=1.0 / sizes[k] ** 0.5)
            layers.append(linear)
            if k < len(sizes) - 2:
                layers.append(torch.nn.SiLU())
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Interaction(torch.nn.Module):
    """One message-passing layer; see the module docstring for the equations."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        irreps_sh: o3.Irreps,
        num_elements: int,
        num_radial: int,
        radial_hidden: int,
        correlation: int,
    ) -> None:
        super().__init__()
        if correlation not in (1, 2):
            raise ValueError(f"correlation must be 1 or 2, got {correlation}")
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.linear_up = o3.Linear(self.irreps_in, self.irreps_in)

        # Convolution h_j (x) Y_ij, one weight per path and channel ("uvu").
        wanted = {ir for _, ir in self.irreps_out}
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(self.irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir in ir_in * ir_sh:
                    if ir in wanted:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir))
        irreps_mid = o3.Irreps(mid)
        self.conv = o3.TensorProduct(
            self.irreps_in, irreps_sh, irreps_mid, instructions,
            shared_weights=False, internal_weights=False,
        )  # fmt: skip
        self.radial = RadialMLP([num_radial, radial_hidden, radial_hidden, self.conv.weight_numel])

        # Gate: scalars pass through SiLU; each l > 0 irrep gets one sigmoid gate per channel.
        scalars = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l > 0])
        gates = o3.Irreps([(m, (0, 1)) for m, _ in gated])
        self.gate = Gate(
            scalars,
            [torch.nn.functional.silu] * len(scalars),
            gates,
            [torch.sigmoid] * len(gates),
            gated,
        )
        irreps_pre_gate = self.gate.irreps_in
        self.linear_message = o3.Linear(irreps_mid, irreps_pre_gate)

        # Channel-wise square A (x) A raises the body order of each layer by one.
        self.square = None
        if correlation == 2:
            irreps_a = irreps_pre_gate.simplify()
            sq_out, sq_instr = [], []
            for i, (mul_i, ir_i) in enumerate(irreps_a):
                for j, (mul_j, ir_j) in enumerate(irreps_a):
                    if j < i or mul_i != mul_j:
                        continue
                    for ir in ir_i * ir_j:
                        if ir in {ir for _, ir in irreps_a}:
                            sq_instr.append((i, j, len(sq_out), "uuu", True))
                            sq_out.append((mul_i, ir))
            self.square = o3.TensorProduct(irreps_a, irreps_a, o3.Irreps(sq_out), sq_instr)
            self.linear_square = o3.Linear(o3.Irreps(sq_out), irreps_pre_gate)

        attrs = o3.Irreps(f"{num_elements}x0e")
        self.self_connection = o3.FullyConnectedTensorProduct(
            self.irreps_in, attrs, self.irreps_out
        )

    def forward(
        self,
        h: torch.Tensor,
        node_attrs: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        edge_index: torch.Tensor,
        inv_avg_neighbors: torch.Tensor,
        num_out: int | None = None,
        paired: bool = False,
    ) -> torch.Tensor:
        """New features of the first ``num_out`` nodes (all by default): the edges given
        must be those of these centres (neighbours may be any of ``h``'s nodes).
        ``paired``: the edges are in pairs (:data:`mlip.keys.EDGES_PAIRED`) and
        ``edge_radial`` holds the first half's rows only, which serve both halves."""
        centre, neighbour = edge_index
        n_out = h.shape[0] if num_out is None else num_out
        weights = self.radial(edge_radial)
        if paired:
            weights = torch.cat([weights, weights])
        # index_select for the gather: its backward is index_add (see nn.geometry)
        messages = self.conv(self.linear_up(h).index_select(0, neighbour), edge_sh, weights)
        a = torch.zeros(n_out, messages.shape[1], dtype=h.dtype, device=h.device)
        a = a.index_add(0, centre, messages) * inv_avg_neighbors
        a = self.linear_message(a)
        if self.square is not None:
            a = a + self.linear_square(self.square(a, a))
        return self.gate(a) + self.self_connection(h[:n_out], node_attrs[:n_out])
