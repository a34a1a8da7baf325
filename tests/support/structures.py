"""Test structures (Angstrom): ethanol, fcc copper, argon, and the training fixtures' systems."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk

from mlip.data.graph import Structure

ETHANOL_Z = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])
ETHANOL_R = np.array(
    [
        [-0.9357, 0.0436, -0.0201],
        [0.4781, -0.5243, 0.0286],
        [1.3641, 0.5593, -0.2005],
        [-1.6251, -0.7931, 0.1021],
        [-1.1103, 0.7802, 0.7687],
        [-1.1342, 0.5417, -0.9796],
        [0.6391, -1.2812, -0.7602],
        [0.6778, -1.0161, 0.9912],
        [1.2302, 1.2137, 0.4769],
    ]
)

#: the small molecule of the training fixtures (C, O and three H)
MOLECULE_Z = np.array([6, 8, 1, 1, 1])
MOLECULE_R = np.array(
    [[0.0, 0.0, 0.0], [1.4, 0.0, 0.0], [-0.5, 0.9, 0.0], [-0.5, -0.5, 0.8], [1.8, 0.8, 0.3]]
)


def ethanol(seed: int = 0, noise: float = 0.05) -> Structure:
    """Ethanol with Gaussian noise (``noise`` A) on every coordinate."""
    rng = np.random.default_rng(seed)
    return Structure(ETHANOL_Z.copy(), ETHANOL_R + noise * rng.standard_normal(ETHANOL_R.shape))


def copper(size: int = 1, cubic: bool = False, seed: int = 0, noise: float = 0.05) -> Structure:
    """fcc copper (a = 3.61 A), ``size`` repeats per direction, rattled by ``noise`` A."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=cubic).repeat(size)
    rng = np.random.default_rng(seed)
    atoms.positions += noise * rng.standard_normal(atoms.positions.shape)
    return Structure.from_atoms(atoms)


def molecules(n: int, seed: int = 0, noise: float = 0.08) -> list[Structure]:
    """``n`` noisy copies of the fixture molecule (unlabelled)."""
    rng = np.random.default_rng(seed)
    return [
        Structure(MOLECULE_Z.copy(), MOLECULE_R + noise * rng.standard_normal(MOLECULE_R.shape))
        for _ in range(n)
    ]


def crystals(n: int, seed: int = 1) -> list[Structure]:
    """``n`` periodic 4-atom cells (C, C, O, H) of about 2.6 A, slightly sheared (unlabelled)."""
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.0], [1.3, 1.3, 0.0], [1.3, 0.0, 1.3], [0.0, 1.3, 1.3]])
    out = []
    for _ in range(n):
        cell = np.eye(3) * 2.6 + 0.05 * rng.standard_normal((3, 3))
        out.append(
            Structure(
                np.array([6, 6, 8, 1]),
                base + 0.05 * rng.standard_normal((4, 3)),
                cell=cell,
                pbc=np.ones(3, dtype=bool),
            )
        )
    return out


def argon_cluster(n: int = 7, seed: int = 0) -> Atoms:
    """An argon cluster of ``n`` atoms cut from fcc (a = 5.26 A), rattled (no symmetry left)."""
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    centre = atoms.positions.mean(axis=0)
    order = np.argsort(np.linalg.norm(atoms.positions - centre, axis=1))
    small = Atoms("Ar" * n, positions=atoms.positions[order[:n]])
    small.rattle(0.05, seed=seed)
    return small


def argon_crystal(seed: int = 1, repeat: tuple[int, int, int] = (2, 2, 1)) -> Atoms:
    """Rattled fcc argon; a = 5.2 A keeps every pair > 0.2 A away from the cutoff 8.5 A."""
    atoms = bulk("Ar", "fcc", a=5.2, cubic=True).repeat(repeat)
    atoms.rattle(0.02, seed=seed)
    return atoms


def close_pair(atoms: Atoms, distance: float = 2.0) -> Atoms:
    """``atoms`` with atom 1 moved to ``distance`` (A) of atom 0's nearest image of it, in
    place: for Cu and Au well inside the sum of covalent radii, where the pair term of
    the test models is large."""
    vector = atoms.get_distance(0, 1, mic=True, vector=True)
    atoms.positions[1] = atoms.positions[0] + vector / np.linalg.norm(vector) * distance
    return atoms
