"""A thin ASE calculator over PySCF for molecules: energy and analytic forces.

``PySCFCalculator(method, basis)``: ``method`` "hf" (restricted or, for odd electron
counts, unrestricted Hartree-Fock) or an exchange-correlation functional name for
Kohn-Sham DFT (e.g. "pbe", "b3lyp"); ``basis`` any basis set name PySCF knows.
``atoms.info["charge"]`` and ``atoms.info["spin"]`` (2S) are used when present.
Results in eV and eV/A (PySCF works in Hartree and Bohr). Periodic systems are not
supported. Needs ``pip install pyscf`` (the ``pyscf`` extra of mlip).
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols

HARTREE_EV = 27.211386245988  # CODATA 2018
BOHR_A = 0.529177210903


def _pyscf():  # noqa: ANN202
    try:
        import pyscf  # noqa: F401
        from pyscf import dft, gto, scf
    except ImportError as err:
        raise ValueError(
            "calculator 'pyscf' needs the pyscf package: pip install pyscf "
            "(or pip install 'mlip[pyscf]')"
        ) from err
    return gto, scf, dft


def basis_elements(basis: str) -> frozenset[int]:
    """The elements (Z 1..86) for which PySCF has the basis set ``basis``."""
    import warnings

    gto, _, _ = _pyscf()
    known = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PySCF warns for each element the basis lacks
        for z in range(1, 87):
            try:
                if gto.basis.load(basis, chemical_symbols[z]):
                    known.add(z)
            except Exception:  # noqa: BLE001, S112 (several kinds for a missing basis)
                continue
    if not known:
        raise ValueError(f"PySCF knows no basis set {basis!r}")
    return frozenset(known)


class PySCFCalculator(Calculator):
    """Energy (eV) and forces (eV/A) of a molecule by PySCF HF or KS-DFT."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, method: str = "hf", basis: str = "def2-svp", **kwargs) -> None:
        super().__init__(**kwargs)
        self.method, self.basis = method, basis
        _pyscf()

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:  # noqa: ANN001
        super().calculate(atoms, properties or ["energy"], system_changes)
        if self.atoms.pbc.any():
            raise ValueError("PySCFCalculator treats molecules only (pbc must be False)")
        gto, scf, dft = _pyscf()
        mol = gto.M(
            atom=[(s, tuple(p)) for s, p in zip(self.atoms.get_chemical_symbols(),
                                                self.atoms.positions, strict=True)],
            basis=self.basis,
            unit="Angstrom",
            charge=int(self.atoms.info.get("charge", 0)),
            spin=int(self.atoms.info.get("spin", 0)),
            verbose=0,
        )  # fmt: skip
        open_shell = mol.spin != 0 or mol.nelectron % 2 == 1
        if self.method.lower() == "hf":
            mf = scf.UHF(mol) if open_shell else scf.RHF(mol)
        else:
            mf = dft.UKS(mol) if open_shell else dft.RKS(mol)
            mf.xc = self.method
        energy = mf.kernel()
        if not mf.converged:
            raise RuntimeError(f"PySCF {self.method}/{self.basis}: SCF did not converge")
        gradient = mf.nuc_grad_method().kernel()
        self.results["energy"] = self.results["free_energy"] = float(energy) * HARTREE_EV
        self.results["forces"] = -np.asarray(gradient) * HARTREE_EV / BOHR_A
