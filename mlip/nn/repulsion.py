"""Short-range nuclear repulsion: the ZBL universal screened Coulomb pair term.

    V_ij(r) = k_e Z_i Z_j / r * phi(r / a_ij) * u(r / r_ij),       E_rep = 1/2 sum_i sum_j V_ij

    phi(x) = 0.18175 e^(-3.19980 x) + 0.50986 e^(-0.94229 x)
           + 0.28022 e^(-0.40290 x) + 0.02817 e^(-0.20162 x)
    a_ij   = 0.46850 A / (Z_i^0.23 + Z_j^0.23)        (0.8854 Bohr radii, ZBL's screening length)
    k_e    = e^2 / (4 pi eps0) = 14.399645 eV A

u is the polynomial envelope of :mod:`mlip.nn.radial` (p = 6) with the cutoff r_ij the
sum of the two covalent radii (ASE's table, capped at the model's r_max): the term acts
only where two atoms are closer than a bond, and goes to zero with its first and second
derivatives there, so forces and Hessians stay continuous.

Why: training data never holds atoms much closer than its shortest bond, and a network
extrapolated below that distance can be soft (atoms pass through each other in hot MD,
close pairs get forces far too weak). The pair term is physics the data need not teach;
the network learns the rest, E = E_network + E_rep. It has no parameters. Units: eV, A.

It is off by default (``model.pair_repulsion``): where the data's bonds sit at the sum
of the covalent radii (organic molecules), the network must cancel the term's stiffness
inside the data, and on one alloy it traded force and phonon accuracy for energy
accuracy (docs/benchmarks/materials.md, the short-range pair term).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ase.data import covalent_radii

from mlip.nn.radial import PolynomialEnvelope

COULOMB_EV_A = 14.399645  # e^2 / (4 pi eps0), eV Angstrom
SCREENING_A = 0.46850  # 0.8854 a0 in Angstrom
ZBL_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)
ENVELOPE_P = 6


class ZBLRepulsion(torch.nn.Module):
    """Per-atom ZBL energies (eV) from the edges of a graph, for the elements
    ``atomic_numbers`` (the model's species order); cutoffs capped at ``r_max`` (A)."""

    def __init__(self, atomic_numbers: Sequence[int], r_max: float) -> None:
        super().__init__()
        z = torch.tensor([float(x) for x in atomic_numbers], dtype=torch.float64)
        radii = torch.tensor(
            [float(covalent_radii[int(x)]) for x in atomic_numbers], dtype=torch.float64
        )
        self.register_buffer(
            "charge_product", COULOMB_EV_A * z[:, None] * z[None, :], persistent=False
        )
        self.register_buffer(
            "inv_screening",
            (z[:, None] ** 0.23 + z[None, :] ** 0.23) / SCREENING_A,
            persistent=False,
        )
        cutoff = (radii[:, None] + radii[None, :]).clamp(max=float(r_max))
        self.register_buffer("cutoff", cutoff, persistent=False)
        self.register_buffer(
            "coefficients", torch.tensor(ZBL_COEFFICIENTS, dtype=torch.float64), persistent=False
        )
        self.register_buffer(
            "exponents", torch.tensor(ZBL_EXPONENTS, dtype=torch.float64), persistent=False
        )
        self.envelope = PolynomialEnvelope(1.0, ENVELOPE_P)

    def pair_energy(
        self, lengths: torch.Tensor, species_i: torch.Tensor, species_j: torch.Tensor
    ) -> torch.Tensor:
        """V_ij(r) of the module docstring for each pair, eV; 0 beyond r_ij."""
        cutoff = self.cutoff[species_i, species_j].to(lengths)
        x = torch.where(lengths < cutoff, lengths, cutoff)  # no overflow of 1/r beyond
        screened = (
            self.coefficients.to(lengths)
            * torch.exp(
                -self.exponents.to(lengths)
                * (x * self.inv_screening[species_i, species_j].to(lengths)).unsqueeze(-1)
            )
        ).sum(-1)
        energy = self.charge_product[species_i, species_j].to(lengths) / x * screened
        return energy * self.envelope(lengths / cutoff)

    def forward(
        self, lengths: torch.Tensor, edge_index: torch.Tensor, species: torch.Tensor
    ) -> torch.Tensor:
        """Per-atom energies 1/2 sum_j V_ij, shape (n_atoms,), eV; each edge i -> j adds
        half its pair energy to its centre i (the graph holds both directions)."""
        centre, neighbour = edge_index
        pair = self.pair_energy(lengths, species[centre], species[neighbour])
        return lengths.new_zeros(species.shape[0]).index_add(0, centre, 0.5 * pair)
