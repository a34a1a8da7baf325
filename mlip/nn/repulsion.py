"""Short-range nuclear repulsion from the ZBL universal screened Coulomb pair potential.

    V_ij(r) = k_e Z_i Z_j / r * phi(r / a_ij)

    phi(x) = 0.18175 e^(-3.19980 x) + 0.50986 e^(-0.94229 x)
           + 0.28022 e^(-0.40290 x) + 0.02817 e^(-0.20162 x)
    a_ij   = 0.46850 A / (Z_i^0.23 + Z_j^0.23)        (0.8854 Bohr radii, ZBL's screening length)
    k_e    = e^2 / (4 pi eps0) = 14.399645 eV A

Two pair terms add it to the network's energy, E = E_network + 1/2 sum_i sum_j U_ij:

- :class:`CoreRepulsion` (the default, ``model.repulsion: core``) acts only below the
  shortest distance c_ij at which the training data hold the pair of elements i, j, as
  ZBL less its Taylor expansion to second order at c_ij::

      U_ij(r) = V(r) - V(c) - V'(c) (r - c) - V''(c) (r - c)^2 / 2     for r < c, else 0

  so it is exactly zero on every training pair, and the network is trained as without
  it, while a pair closer than any the data hold is pushed apart by ZBL's stiffening
  (V is completely monotone, so U > 0 and dU/dr < 0 below c). U and its first two
  derivatives vanish at c: forces and Hessians stay continuous. c_ij is measured by the
  trainer (:meth:`CoreRepulsion.set_cutoffs`; pairs the data never hold get the smallest
  measured ratio of c to the sum of covalent radii, times their own sum) and saved with
  the model; until it is set the term is zero.
- :class:`ZBLRepulsion` (``model.repulsion: zbl``) is V times the p = 6 polynomial
  envelope of :mod:`mlip.nn.radial` to the sum of the covalent radii (ASE's table,
  capped at r_max): it acts inside the data too, where bonds sit near that sum, and the
  network learns the rest.

Why: training data never hold atoms much closer than their shortest bond, and a network
extrapolated below that distance is soft (close pairs in hot MD or strained cells get
forces far too weak). The core term supplies repulsion only there, so it cannot cost
accuracy where the data are; the ZBL term inside the data helped copper and cost the
Cu-Au alloy and ethanol (docs/benchmarks/materials.md, the short-range pair term). ACE's
pacemaker adds its core repulsion below an inner cutoff from the data for the same
reason. Neither term has trainable parameters. Units: eV, A.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from ase.data import covalent_radii

from mlip.nn.radial import PolynomialEnvelope, pair_cutoffs

COULOMB_EV_A = 14.399645  # e^2 / (4 pi eps0), eV Angstrom
SCREENING_A = 0.46850  # 0.8854 a0 in Angstrom
ZBL_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)
ENVELOPE_P = 6
#: the values of ``model.repulsion``: no pair term, the core term, the enveloped ZBL
REPULSION_KINDS = ("none", "core", "zbl")


class _ScreenedCoulomb(torch.nn.Module):
    """The ZBL pair potential V(r) of the module docstring for the model's elements
    ``atomic_numbers`` (its species order), and the per-atom sum of the pair term
    ``pair_energy(lengths, species_i, species_j)`` that each subclass defines."""

    def __init__(self, atomic_numbers: Sequence[int]) -> None:
        super().__init__()
        self.atomic_numbers = [int(x) for x in atomic_numbers]
        z = torch.tensor([float(x) for x in self.atomic_numbers], dtype=torch.float64)
        self.register_buffer(
            "charge_product", COULOMB_EV_A * z[:, None] * z[None, :], persistent=False
        )
        self.register_buffer(
            "inv_screening",
            (z[:, None] ** 0.23 + z[None, :] ** 0.23) / SCREENING_A,
            persistent=False,
        )
        self.register_buffer(
            "coefficients", torch.tensor(ZBL_COEFFICIENTS, dtype=torch.float64), persistent=False
        )
        self.register_buffer(
            "exponents", torch.tensor(ZBL_EXPONENTS, dtype=torch.float64), persistent=False
        )

    def screened(
        self, r: torch.Tensor, charge: torch.Tensor, inv_a: torch.Tensor, order: int = 0
    ) -> list[torch.Tensor]:
        """[V, V', V''][: order + 1] at distances ``r`` (A; eV, eV/A, eV/A^2) for pairs of
        charge product ``charge`` (eV A) and inverse screening length ``inv_a`` (1/A)."""
        rates = self.exponents.to(r) * inv_a.unsqueeze(-1)  # (..., 4), 1/A
        terms = self.coefficients.to(r) * torch.exp(-rates * r.unsqueeze(-1))
        g = [terms.sum(-1), -(rates * terms).sum(-1), (rates**2 * terms).sum(-1)]
        values = [charge * g[0] / r]
        if order >= 1:
            values.append(charge * (g[1] / r - g[0] / r**2))
        if order >= 2:
            values.append(charge * (g[2] / r - 2 * g[1] / r**2 + 2 * g[0] / r**3))
        return values

    def forward(
        self, lengths: torch.Tensor, edge_index: torch.Tensor, species: torch.Tensor
    ) -> torch.Tensor:
        """Per-atom energies 1/2 sum_j U_ij, shape (n_atoms,), eV; each edge i -> j adds
        half its pair energy to its centre i (the graph holds both directions)."""
        centre, neighbour = edge_index
        pair = self.pair_energy(lengths, species[centre], species[neighbour])
        return lengths.new_zeros(species.shape[0]).index_add(0, centre, 0.5 * pair)


class ZBLRepulsion(_ScreenedCoulomb):
    """ZBL times the envelope to the sum of covalent radii (capped at ``r_max``, A)."""

    def __init__(self, atomic_numbers: Sequence[int], r_max: float) -> None:
        super().__init__(atomic_numbers)
        radii = torch.tensor(
            [float(covalent_radii[x]) for x in self.atomic_numbers], dtype=torch.float64
        )
        cutoff = (radii[:, None] + radii[None, :]).clamp(max=float(r_max))
        self.register_buffer("cutoff", cutoff, persistent=False)
        self.envelope = PolynomialEnvelope(1.0, ENVELOPE_P)

    def pair_energy(
        self, lengths: torch.Tensor, species_i: torch.Tensor, species_j: torch.Tensor
    ) -> torch.Tensor:
        """V(r) u(r / r_ij) for each pair, eV; 0 beyond r_ij."""
        cutoff = self.cutoff[species_i, species_j].to(lengths)
        x = torch.where(lengths < cutoff, lengths, cutoff)  # no overflow of 1/r beyond
        charge = self.charge_product[species_i, species_j].to(lengths)
        (energy,) = self.screened(x, charge, self.inv_screening[species_i, species_j].to(lengths))
        return energy * self.envelope(lengths / cutoff)


class CoreRepulsion(_ScreenedCoulomb):
    """ZBL less its second-order Taylor expansion at the data's shortest distance c_ij of
    each element pair, below c_ij (module docstring). ``cutoff`` (n_el, n_el, A) is saved
    with the model; 0 (not set) switches a pair off."""

    def __init__(self, atomic_numbers: Sequence[int]) -> None:
        super().__init__(atomic_numbers)
        n = len(self.atomic_numbers)
        self.register_buffer("cutoff", torch.zeros(n, n, dtype=torch.float64))

    def set_cutoffs(self, shortest: Mapping[tuple[int, int], float]) -> None:
        """c_ij from the shortest distance (A) of each pair of atomic numbers in the
        training data; a pair it lacks gets (R_i + R_j) times the smallest c / (R_k + R_l)
        of the pairs given (R: covalent radii); none given leaves the term off."""
        self.cutoff.copy_(pair_cutoffs(self.atomic_numbers, shortest))

    def cutoffs(self) -> dict[tuple[int, int], float]:
        """c_ij (A) by pair of atomic numbers (i <= j); empty while not set."""
        z = self.atomic_numbers
        return {
            (z[i], z[j]): float(self.cutoff[i, j])
            for i in range(len(z))
            for j in range(i, len(z))
            if float(self.cutoff[i, j]) > 0
        }

    def pair_energy(
        self, lengths: torch.Tensor, species_i: torch.Tensor, species_j: torch.Tensor
    ) -> torch.Tensor:
        """U(r) of each pair, eV; exactly 0 at and beyond c_ij (and where c_ij is 0)."""
        cutoff = self.cutoff[species_i, species_j].to(lengths)
        inside = lengths < cutoff
        # c of an unset pair taken as 1 A: finite values, and x = c, so U = 0 exactly
        c = torch.where(cutoff > 0, cutoff, torch.ones_like(cutoff))
        x = torch.where(inside, lengths, c)  # no 1/r overflow, no gradient beyond c
        charge = self.charge_product[species_i, species_j].to(lengths)
        inv_a = self.inv_screening[species_i, species_j].to(lengths)
        (v,) = self.screened(x, charge, inv_a)
        v0, v1, v2 = self.screened(c, charge, inv_a, order=2)
        dx = x - c
        return v - v0 - v1 * dx - 0.5 * v2 * dx**2


def make_repulsion(
    kind: str, atomic_numbers: Sequence[int], r_max: float
) -> _ScreenedCoulomb | None:
    """The pair term of ``model.repulsion`` (:data:`REPULSION_KINDS`), None for none."""
    if kind not in REPULSION_KINDS:
        raise ValueError(f"repulsion must be one of {list(REPULSION_KINDS)}, got {kind!r}")
    if kind == "core":
        return CoreRepulsion(atomic_numbers)
    if kind == "zbl":
        return ZBLRepulsion(atomic_numbers, r_max)
    return None
