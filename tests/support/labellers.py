"""Calculators for the labelling tests, named by ``MODULE:FACTORY`` specs
(``support.labellers:harmonic_mlip``): spring models of ethanol whose Hessian is known in
closed form (:meth:`mlip.potentials.HarmonicBonds.analytic_hessian`), an EMT that fails
on some geometries and one that kills its process. Units eV, Angstrom."""

from __future__ import annotations

import os
import signal

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from mlip.calculator import MLIPCalculator
from mlip.potentials import HarmonicBonds
from support.structures import ETHANOL_R

#: ethanol's 8 covalent bonds (k 30 eV/A^2) and 4 next-nearest pairs (k 5), at 1.03x
PAIRS = [(0, 1), (1, 2), (0, 3), (0, 4), (0, 5), (1, 6), (1, 7), (2, 8),
         (0, 2), (1, 3), (1, 8), (3, 4)]  # fmt: skip
KILL_AFTER = "MLIP_TEST_KILL_AFTER"  # environment: structures before the process kills itself


def springs() -> HarmonicBonds:
    d0 = [1.03 * float(np.linalg.norm(ETHANOL_R[a] - ETHANOL_R[b])) for a, b in PAIRS]
    return HarmonicBonds(PAIRS, [30.0] * 8 + [5.0] * 4, d0)


def harmonic_mlip() -> MLIPCalculator:
    """The springs through MLIPCalculator: it offers its own (autograd) Hessian."""
    return MLIPCalculator(springs())


class SpringCalculator(Calculator):
    """The springs in closed form (numpy): energy and forces, no Hessian of its own."""

    implemented_properties = ["energy", "forces"]

    def __init__(self) -> None:
        super().__init__()
        model = springs()
        self.pairs, self.k, self.d0 = model.bonds.numpy(), model.k.numpy(), model.d0.numpy()

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:  # noqa: ANN001
        super().calculate(atoms, properties, system_changes)
        r = self.atoms.positions
        vector = r[self.pairs[:, 1]] - r[self.pairs[:, 0]]
        d = np.linalg.norm(vector, axis=1)
        self.results["energy"] = float((0.5 * self.k * (d - self.d0) ** 2).sum())
        pull = (self.k * (d - self.d0) / d)[:, None] * vector  # on atom a, minus on b
        forces = np.zeros_like(r)
        np.add.at(forces, self.pairs[:, 0], pull)
        np.add.at(forces, self.pairs[:, 1], -pull)
        self.results["forces"] = forces


def harmonic_ase() -> SpringCalculator:
    return SpringCalculator()


class FailingEMT(EMT):
    """EMT that raises on geometries whose first atom has x > 0 (deterministic)."""

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:  # noqa: ANN001
        if atoms is not None and atoms.positions[0, 0] > 0:
            raise RuntimeError("SCF did not converge (test)")
        super().calculate(atoms, properties, system_changes)


def failing_emt() -> FailingEMT:
    return FailingEMT()


class KillingEMT(EMT):
    """EMT that SIGKILLs its own process at the call after ``$MLIP_TEST_KILL_AFTER``
    calculations (no clean-up can run: a killed job)."""

    calls = 0

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:  # noqa: ANN001
        limit = os.environ.get(KILL_AFTER)
        if limit is not None and KillingEMT.calls >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)
        KillingEMT.calls += 1
        super().calculate(atoms, properties, system_changes)


def killing_emt() -> KillingEMT:
    return KillingEMT()
