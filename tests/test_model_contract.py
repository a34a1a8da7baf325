"""The model contract: the same physics checks over every energy model, in float64.

Every energy model (the learned :class:`mlip.model.MLIPModel`, each potential of
:mod:`mlip.potentials` and :class:`mlip.committee.Committee`) has a ``Test<Model>``
class below that inherits the checks of :class:`EnergyModelContract` (and
:class:`CutoffContract` when it has a cutoff) and supplies the model and the structures
it is checked on (the test-mixin style of nequip). A new energy model needs such a
class: ``test_every_energy_model_is_under_contract`` fails otherwise. The checks:

- E(3): E invariant, F' = F Q^T and S' = Q S Q^T under rotations, reflections and
  translations, to 1e-10 relative, for a molecule and for a periodic cell;
- forces equal central differences of the energy;
- the Hessian is symmetric and equals central differences of the forces;
- a batch gives what each system gives alone (energy, forces, stress; Hessian blocks);
- the stress equals the strain derivative of the energy (periodic cell);
- at the cutoff: a pair beyond r_max adds nothing and the energy is continuous as an
  atom crosses r_max; for models that promise it, forces and Hessian are continuous too.

Checks that concern one model only stay in their own files (permutations and small
cells of the learned model in test_model_physics.py, agreement with ASE in
test_calculator.py).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list
from support import argon_cluster, argon_crystal, assert_equivariant, copper, ethanol, evaluate
from support.models import small_model
from support.physics import (
    finite_difference_forces,
    finite_difference_hessian,
    finite_difference_stress,
)
from support.structures import ETHANOL_R

from mlip import keys, potentials
from mlip.committee import Committee
from mlip.data.graph import Structure
from mlip.derivatives import split_hessian
from mlip.model import MLIPModel
from mlip.potentials import HarmonicBonds, LennardJones

pytestmark = pytest.mark.usefixtures("one_thread")


class EnergyModelContract:
    """Checks every energy model passes. A subclass provides the ``model`` fixture and
    the structures: :meth:`molecule`, :meth:`crystal`, :meth:`strain_cell`,
    :meth:`batch`, :meth:`hessian_batch`."""

    #: the class under contract (for the coverage test)
    model_class: type

    def molecule(self, seed: int) -> Structure:
        """A non-periodic structure, different for each seed."""
        raise NotImplementedError

    def crystal(self, seed: int) -> Structure:
        """A periodic structure, different for each seed."""
        raise NotImplementedError

    def strain_cell(self) -> Structure:
        """A periodic structure for the stress check."""
        raise NotImplementedError

    def batch(self) -> list[Structure]:
        """Molecules and cells evaluated together and one by one."""
        raise NotImplementedError

    def hessian_batch(self) -> list[Structure]:
        """Structures whose Hessian blocks are computed together and one by one."""
        raise NotImplementedError

    def test_invariance_molecule(self, model) -> None:
        assert_equivariant(model, self.molecule(1))

    def test_invariance_periodic(self, model) -> None:
        assert_equivariant(model, self.crystal(3))

    def test_forces_are_finite_differences(self, model) -> None:
        s = self.molecule(3)
        forces = evaluate(model, [s])[keys.FORCES].numpy()
        # h = 1e-5: the steep third derivative of the core pair term at short bonds
        # makes the O(h^2) error of central differences about 2e-7 eV/A at 1e-4
        fd = finite_difference_forces(model, s, h=1e-5)
        assert np.abs(forces).max() > 0
        assert np.abs(forces - fd).max() < 1e-7 * max(1.0, np.abs(forces).max())

    def test_hessian_symmetric_and_finite_difference_of_forces(self, model) -> None:
        s = self.molecule(4)
        hess = split_hessian(
            evaluate(model, [s], hessian=True)[keys.HESSIAN], torch.tensor([s.num_atoms])
        )[0].numpy()
        assert np.abs(hess).max() > 0
        assert np.abs(hess - hess.T).max() < 1e-12 * np.abs(hess).max()
        fd = finite_difference_hessian(model, s, h=1e-4)
        assert np.abs(hess - fd).max() < 1e-6 * np.abs(hess).max()

    def test_hessian_of_batch_equals_single(self, model) -> None:
        structures = self.hessian_batch()
        out = evaluate(model, structures, hessian=True)
        n = torch.tensor([s.num_atoms for s in structures])
        blocks = split_hessian(out[keys.HESSIAN], n)
        for s, block in zip(structures, blocks, strict=True):
            single = evaluate(model, [s], hessian=True)[keys.HESSIAN].reshape(block.shape)
            assert torch.allclose(block, single, rtol=0, atol=1e-11)

    def test_stress_is_strain_derivative(self, model) -> None:
        s = self.strain_cell()
        stress = evaluate(model, [s], stress=True)[keys.STRESS][0].numpy()
        fd = finite_difference_stress(model, s, h=1e-5)
        assert np.abs(stress).max() > 0
        assert np.abs(stress - fd).max() < 1e-7 * max(1e-3, np.abs(stress).max())

    def test_batched_equals_one_by_one(self, model) -> None:
        structures = self.batch()
        batched = evaluate(model, structures, stress=True)
        offset = 0
        for k, s in enumerate(structures):
            single = evaluate(model, [s], stress=True)
            assert torch.allclose(batched[keys.ENERGY][k], single[keys.ENERGY][0], rtol=1e-13)
            sl = slice(offset, offset + s.num_atoms)
            assert torch.allclose(batched[keys.FORCES][sl], single[keys.FORCES], atol=1e-12, rtol=0)
            assert torch.allclose(batched[keys.STRESS][k], single[keys.STRESS][0], atol=1e-12)
            offset += s.num_atoms


class CutoffContract(EnergyModelContract):
    """Models with a cutoff ``r_max``: a pair beyond it adds nothing, the energy is
    continuous as it crosses r_max and, if ``smooth_derivatives``, the forces and the
    Hessian are continuous too (they vanish just inside). A subclass provides
    :meth:`dimer` and :meth:`isolated`."""

    #: bound on |E(r_max - 1e-4) - E(beyond r_max)|, eV
    cutoff_energy_tol = 1e-8
    #: forces and Hessian continuous at r_max too
    smooth_derivatives = True

    def dimer(self, r: float) -> Structure:
        """Two atoms at distance ``r`` A."""
        raise NotImplementedError

    def isolated(self) -> list[Structure]:
        """Each atom of the dimer alone."""
        raise NotImplementedError

    def test_smooth_at_cutoff(self, model) -> None:
        """E (and for smooth models F and dF/dr) continuous as a dimer crosses r_max;
        a pair beyond it adds nothing."""
        r_max = model.r_max
        far = evaluate(model, [self.dimer(r_max + 0.5)])
        alone = sum(float(evaluate(model, [s])[keys.ENERGY][0]) for s in self.isolated())
        e_far = float(far[keys.ENERGY])
        assert e_far == pytest.approx(alone, abs=1e-12)
        assert far[keys.FORCES].abs().max() == 0
        eps = 1e-4
        inside = evaluate(model, [self.dimer(r_max - eps)], hessian=True)
        assert abs(float(inside[keys.ENERGY]) - e_far) < self.cutoff_energy_tol
        if self.smooth_derivatives:
            # Envelope goes to zero with its first two derivatives: E - E_far = O(eps^3),
            # F = O(eps^2).
            assert inside[keys.FORCES].abs().max() < 1e-5
            assert inside[keys.HESSIAN].abs().max() < 1e-2


# -- the learned model ------------------------------------------------------------------


class TestMLIPModel(CutoffContract):
    """A small untrained float64 model (8 channels, 2 layers, l <= 2, r_max 5 A)."""

    model_class = MLIPModel

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls) -> MLIPModel:
        return small_model()

    def molecule(self, seed: int) -> Structure:
        return ethanol(seed)

    def crystal(self, seed: int) -> Structure:
        return copper(2, seed=seed)

    def strain_cell(self) -> Structure:
        return copper(1, cubic=True, seed=2)

    def batch(self) -> list[Structure]:
        return [ethanol(7), copper(2, seed=4), ethanol(8), copper(1, seed=5)]

    def hessian_batch(self) -> list[Structure]:
        return [ethanol(5), copper(1, seed=1), ethanol(6)]

    def dimer(self, r: float) -> Structure:
        return Structure(np.array([6, 8]), np.array([[0.0, 0, 0], [r, 0, 0]]))

    def isolated(self) -> list[Structure]:
        return [Structure(np.array([z]), np.zeros((1, 3))) for z in (6, 8)]


# -- Lennard-Jones ----------------------------------------------------------------------

EPS, SIGMA, RC = 0.0104, 3.4, 8.5  # argon, eV and Angstrom


def _away_from_cutoff(atoms: Atoms) -> Structure:
    """The structure, after checking that no pair lies within 0.05 A of the cutoff (the
    shifted LJ force jumps there, which finite differences must not straddle)."""
    distances = neighbor_list("d", atoms, RC + 0.5)
    assert np.abs(distances - RC).min() > 0.05
    return Structure.from_atoms(atoms)


class TestLennardJones(CutoffContract):
    """Argon (epsilon 0.0104 eV, sigma 3.4 A, r_max 8.5 A): clusters and fcc cells.

    The potential is shifted, not smoothed: its energy is continuous at r_max (within
    eps |dV/dr(r_max)| = 1.2e-8 eV of the far value 1e-4 A inside), its force jumps
    by dV/dr(r_max), which :meth:`test_force_at_cutoff_is_the_pair_force` pins.
    """

    model_class = LennardJones
    cutoff_energy_tol = 2e-8
    smooth_derivatives = False

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls) -> LennardJones:
        return LennardJones(epsilon=EPS, sigma=SIGMA, r_max=RC)

    def molecule(self, seed: int) -> Structure:
        return _away_from_cutoff(argon_cluster(7, seed=seed))

    def crystal(self, seed: int) -> Structure:
        return _away_from_cutoff(argon_crystal(seed=seed))

    def strain_cell(self) -> Structure:
        return _away_from_cutoff(argon_crystal(seed=2, repeat=(1, 1, 1)))

    def batch(self) -> list[Structure]:
        return [
            _away_from_cutoff(argon_cluster(7, seed=7)),
            _away_from_cutoff(argon_crystal(seed=4)),
            _away_from_cutoff(argon_cluster(5, seed=8)),
            _away_from_cutoff(argon_crystal(seed=5, repeat=(1, 1, 1))),
        ]

    def hessian_batch(self) -> list[Structure]:
        return [
            _away_from_cutoff(argon_cluster(5, seed=5)),
            _away_from_cutoff(argon_crystal(seed=1, repeat=(1, 1, 1))),
            _away_from_cutoff(argon_cluster(6, seed=6)),
        ]

    def dimer(self, r: float) -> Structure:
        return Structure(np.array([18, 18]), np.array([[0.0, 0, 0], [r, 0, 0]]))

    def isolated(self) -> list[Structure]:
        return [Structure(np.array([18]), np.zeros((1, 3))) for _ in range(2)]

    def test_force_at_cutoff_is_the_pair_force(self, model) -> None:
        """Just inside r_max the dimer feels -dV/dr = 4 eps (12 s^12 / r^13 - 6 s^6 / r^7)."""
        r = RC - 1e-4
        forces = evaluate(model, [self.dimer(r)])[keys.FORCES].numpy()
        magnitude = 4 * EPS * (12 * SIGMA**12 / r**13 - 6 * SIGMA**6 / r**7)
        np.testing.assert_allclose(forces[1], [magnitude, 0, 0], rtol=1e-10, atol=0)
        np.testing.assert_array_equal(forces[0], -forces[1])


# -- harmonic bonds ---------------------------------------------------------------------

#: springs of ethanol: the 8 covalent bonds (k 30 eV/A^2) and 4 next-nearest pairs (k 5)
ETHANOL_BONDS = [(0, 1), (1, 2), (0, 3), (0, 4), (0, 5), (1, 6), (1, 7), (2, 8)]
ETHANOL_PAIRS = [(0, 2), (1, 3), (1, 8), (3, 4)]


def ethanol_springs() -> HarmonicBonds:
    """Springs at 1.03 times their lengths in the reference ethanol (so forces act)."""
    pairs = ETHANOL_BONDS + ETHANOL_PAIRS
    d0 = [1.03 * float(np.linalg.norm(ETHANOL_R[a] - ETHANOL_R[b])) for a, b in pairs]
    return HarmonicBonds(pairs, [30.0] * len(ETHANOL_BONDS) + [5.0] * len(ETHANOL_PAIRS), d0)


def ethanol_box(seed: int) -> Structure:
    """Ethanol in a periodic, slightly sheared 6 A box (bonds do not wrap)."""
    s = ethanol(seed)
    cell = 6.0 * np.eye(3) + 0.2 * np.random.default_rng(seed).standard_normal((3, 3))
    return Structure(s.atomic_numbers, s.positions, cell, np.ones(3, dtype=bool))


class TestHarmonicBonds(EnergyModelContract):
    """Springs between fixed atom pairs of ethanol; no cutoff, so no cutoff checks."""

    model_class = HarmonicBonds

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls) -> HarmonicBonds:
        return ethanol_springs()

    def molecule(self, seed: int) -> Structure:
        return ethanol(seed)

    def crystal(self, seed: int) -> Structure:
        return ethanol_box(seed)

    def strain_cell(self) -> Structure:
        return ethanol_box(2)

    def batch(self) -> list[Structure]:  # HarmonicBonds: every system has the same atoms
        return [ethanol(7), ethanol_box(4), ethanol(8), ethanol_box(5)]

    def hessian_batch(self) -> list[Structure]:
        return [ethanol(5), ethanol_box(1), ethanol(6)]

    def test_hessian_is_the_closed_form(self, model) -> None:
        s = ethanol(9)
        hess = evaluate(model, [s], hessian=True)[keys.HESSIAN].reshape(27, 27).numpy()
        closed = model.analytic_hessian(s.positions)
        assert np.abs(hess - closed).max() < 1e-12 * np.abs(closed).max()


# -- committees ---------------------------------------------------------------------------


class TestCommittee(CutoffContract):
    """A committee of three small untrained models (mlip.committee): its mean is an energy
    model like the others, on the learned model's structures."""

    model_class = Committee

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls) -> Committee:
        return Committee([small_model(seed=s) for s in range(3)])

    molecule = TestMLIPModel.molecule
    crystal = TestMLIPModel.crystal
    strain_cell = TestMLIPModel.strain_cell
    batch = TestMLIPModel.batch
    hessian_batch = TestMLIPModel.hessian_batch
    dimer = TestMLIPModel.dimer
    isolated = TestMLIPModel.isolated


def test_every_energy_model_is_under_contract() -> None:
    """MLIPModel, Committee and every torch module of mlip.potentials have a contract
    class here."""
    classical = {
        cls
        for _, cls in inspect.getmembers(potentials, inspect.isclass)
        if issubclass(cls, torch.nn.Module) and cls.__module__ == potentials.__name__
    }
    contracts = [
        cls
        for cls in globals().values()
        if inspect.isclass(cls) and issubclass(cls, EnergyModelContract)
        if cls.__name__.startswith("Test")
    ]
    assert {LennardJones, HarmonicBonds} <= classical
    assert {c.model_class for c in contracts} == classical | {MLIPModel, Committee}
