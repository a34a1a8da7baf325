"""Radial basis with a smooth cutoff envelope.

    B_n(r) = sqrt(2 / r_c) * sin(n pi r / r_c) / r,        n = 1..num_basis
    u(x)   = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2),  x = r / r_c

u (the polynomial envelope of DimeNet/NequIP/MACE) takes the value 1 at r = 0 and
goes to zero at r = r_c together with its first and second derivatives, so energies,
forces and Hessians stay continuous as an atom crosses the cutoff; u = 0 for r >= r_c.
Distances in Angstrom.
"""

from __future__ import annotations

import math

import torch


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
