"""Radial basis with a smooth cutoff envelope.

    B_n(r) = sqrt(2 / r_c) * sin(n pi r / r_c) / r,        n = 1..num_basis
    u(x)   = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2),  x = r / r_c

u (the polynomial envelope of DimeNet/NequIP/MACE) takes the value 1 at r = 0 and
goes to zero at r = r_c together with its first and second derivatives, so energies,
forces and Hessians stay continuous as an atom crosses the cutoff; u = 0 for r >= r_c.

Below the training data's shortest distance c_ij of each pair of elements the features
f(r) = B(r) u(r) may follow their tangent there instead (:class:`TangentBelow`,
``model.inner_features: tangent``, the default)::

    f(r) = f(c) + f'(c) x + 1/2 f''(c) x^2 exp(x / lambda),   x = r - c < 0

The Bessel functions continued below the data turn in ways no label constrained, and a
network reading them gives a repulsion that stops growing where it should steepen
(docs/benchmarks/materials.md, the features below the data); on the tangent, the
features keep moving as they did at the edge of the data, and so does what the network
makes of them. The curvature term, gone within a few lambda, keeps f'' continuous at c,
so forces and Hessians stay continuous. Distances in Angstrom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from ase.data import covalent_radii

#: the values of ``model.inner_features``: the tangent below the data, the basis' own
INNER_FEATURES = ("tangent", "bessel")
#: lambda of the module docstring (A): how far below c the features join their tangent
TANGENT_JOIN_A = 0.05


class BesselBasis(torch.nn.Module):
    """B_n(r) for n = 1..num_basis, shape (..., num_basis). Frequencies are trainable."""

    def __init__(self, r_max: float, num_basis: int = 8, trainable: bool = True) -> None:
        super().__init__()
        if r_max <= 0 or num_basis < 1:
            raise ValueError(f"need r_max > 0 and num_basis >= 1, got {r_max}, {num_basis}")
        self.r_max = float(r_max)
        weights = math.pi / r_max * torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype())
        if trainable:
            self.frequencies = torch.nn.Parameter(weights)
        else:
            self.register_buffer("frequencies", weights)
        self.prefactor = math.sqrt(2.0 / r_max)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / r

    def derivatives(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """B_n, dB_n/dr and d2B_n/dr2 at ``r`` (> 0), each of shape (..., num_basis)."""
        r = r.unsqueeze(-1)
        w = self.frequencies.to(r)
        sin, cos = torch.sin(w * r), torch.cos(w * r)
        b = self.prefactor * sin / r
        db = self.prefactor * (w * cos / r - sin / r**2)
        d2b = self.prefactor * (-(w**2) * sin / r - 2 * w * cos / r**2 + 2 * sin / r**3)
        return b, db, d2b


class PolynomialEnvelope(torch.nn.Module):
    """u(r / r_c) of the module docstring; exactly 0 beyond r_c."""

    def __init__(self, r_max: float, p: int = 6) -> None:
        super().__init__()
        if p < 2:
            raise ValueError(f"envelope exponent p must be >= 2, got {p}")
        self.r_max, self.p = float(r_max), int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = r / self.r_max
        u = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * x**p
            + p * (p + 2) * x ** (p + 1)
            - 0.5 * p * (p + 1) * x ** (p + 2)
        )
        return torch.where(x < 1.0, u, torch.zeros_like(u))

    def derivatives(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u, du/dr and d2u/dr2 at ``r`` (below r_c)."""
        p, rc = self.p, self.r_max
        x = r / rc
        k = 0.5 * p * (p + 1) * (p + 2)
        du = -k / rc * x ** (p - 1) * (1 - x) ** 2
        d2u = -k / rc**2 * ((p - 1) * x ** (p - 2) * (1 - x) ** 2 - 2 * x ** (p - 1) * (1 - x))
        return self(r), du, d2u


def pair_cutoffs(
    atomic_numbers: Sequence[int], shortest: Mapping[tuple[int, int], float]
) -> torch.Tensor:
    """c_ij (n_el, n_el; A, float64) from the training data's shortest distance of each
    pair of atomic numbers; a pair it lacks gets (R_i + R_j) times the smallest
    c / (R_k + R_l) of the pairs given (R: covalent radii); none given: all 0 (unset)."""
    numbers = [int(z) for z in atomic_numbers]
    radius = {z: float(covalent_radii[z]) for z in numbers}
    known = {}
    for (a, b), d in shortest.items():
        if a not in radius or b not in radius:
            raise ValueError(f"pair {a}-{b} has an element outside {numbers}")
        if not d > 0:
            raise ValueError(f"shortest distance of pair {a}-{b} must be > 0, got {d}")
        known[tuple(sorted((a, b)))] = float(d)
    table = torch.zeros(len(numbers), len(numbers), dtype=torch.float64)
    if known:
        ratio = min(d / (radius[a] + radius[b]) for (a, b), d in known.items())
        for i, a in enumerate(numbers):
            for j, b in enumerate(numbers):
                pair = (min(a, b), max(a, b))
                table[i, j] = known.get(pair, ratio * (radius[a] + radius[b]))
    return table


class TangentBelow(torch.nn.Module):
    """The radial features f = B u of each edge, on their tangent below the pair's c_ij
    (module docstring). ``cutoff`` (n_el, n_el, A) is saved with the model; 0 (not set)
    leaves a pair's features as they are."""

    def __init__(self, num_elements: int) -> None:
        super().__init__()
        n = int(num_elements)
        self.register_buffer("cutoff", torch.zeros(n, n, dtype=torch.float64))

    def forward(
        self,
        lengths: torch.Tensor,
        features: torch.Tensor,
        species_i: torch.Tensor,
        species_j: torch.Tensor,
        basis: BesselBasis,
        envelope: PolynomialEnvelope,
    ) -> torch.Tensor:
        """``features`` (n_edges, num_basis) of edges of ``lengths`` between atoms of
        element rows ``species_i``, ``species_j``, continued on the tangent below c_ij."""
        table = self.cutoff.to(lengths)
        cutoff = table[species_i, species_j]
        below = (lengths < cutoff) & (cutoff > 0)
        if not self.training or torch.compiler.is_compiling():
            # inference (MD, calculators, LAMMPS): no host sync and no data-dependent
            # shape, so every edge, then where
            tangent = self._tangent(table, lengths, cutoff, species_i, species_j, basis, envelope)
            return torch.where(below.unsqueeze(-1), tangent, features)
        # In training (the trainer's train mode) edges never lie below c (c is their
        # shortest distance), so the common case costs one comparison and one sync;
        # otherwise only the edges below c are evaluated.
        edges = below.nonzero().squeeze(-1)
        if edges.numel() == 0:
            return features
        tangent = self._tangent(
            table,
            lengths[edges],
            cutoff[edges],
            species_i[edges],
            species_j[edges],
            basis,
            envelope,
        )
        return features.index_copy(0, edges, tangent)

    @staticmethod
    def _tangent(
        table: torch.Tensor,
        lengths: torch.Tensor,
        cutoff: torch.Tensor,
        species_i: torch.Tensor,
        species_j: torch.Tensor,
        basis: BesselBasis,
        envelope: PolynomialEnvelope,
    ) -> torch.Tensor:
        """The tangent continuation (module docstring) at each edge, from the cutoff
        ``table`` (n_el, n_el, A) in the edges' dtype; equal to f(c) at and beyond c."""
        c = torch.where(table > 0, table, torch.ones_like(table))  # unset: any finite c
        b, db, d2b = basis.derivatives(c)  # (n_el, n_el, num_basis): per pair, not edge
        u, du, d2u = (t.unsqueeze(-1) for t in envelope.derivatives(c))
        f0, f1, f2 = b * u, db * u + b * du, d2b * u + 2 * db * du + b * d2u
        pair = (species_i, species_j)
        x = torch.clamp(lengths - cutoff, max=0.0).unsqueeze(-1)  # 0 at and beyond c
        return f0[pair] + f1[pair] * x + 0.5 * f2[pair] * x**2 * torch.exp(x / TANGENT_JOIN_A)
