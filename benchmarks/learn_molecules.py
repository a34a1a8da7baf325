"""The molecules of the active-learning benchmark: GFN2-xTB minima and 500 K xTB MD.

Units: K, fs, ps, eV, Angstrom.

For each molecule (``MOLECULES``: ``ase.build.molecule`` where ASE has it, else a
SMILES embedded by RDKit, ``pip install rdkit``) this writes ``DIR/NAME_xtb.h5`` in the
layout of ``../shared/data/ethanol_xtb.h5`` (FORMAT.md), labelled with tblite's
GFN2-xTB:

* group ``NAME_minimum``: the GFN2-xTB minimum (ASE BFGS to 1e-4 eV/A largest force),
  with energy and forces, the seed of ``mlip learn``;
* group ``NAME``: ``--frames`` conformers of 500 K Langevin MD of xTB itself from the
  minimum (0.5 fs, friction 0.01/fs, 1 ps of equilibration, one frame every
  ``--every`` steps): the pool of random 500 K frames (the baseline) and the validation
  frames, as ``ethanol_xtb.h5``'s group ``ethanol``;
* group ``NAME_test``: ``--test-frames`` frames of a second, independent trajectory
  (another seed, same protocol): the test set.

A file that exists is kept (delete it to redo it); a file is written atomically once its
molecule is done. Seeds are fixed, so the set is the same on every machine up to the
floating-point noise of xTB and MD.

    python benchmarks/learn_molecules.py --out /work/data/learn_molecules
    python benchmarks/learn_molecules.py --out DIR --molecules acetone uracil
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

SPEC = "tblite:GFN2-xTB"
#: name -> ("ase", ase.build.molecule name) or ("smiles", SMILES)
MOLECULES: dict[str, tuple[str, str]] = {
    "methylamine": ("ase", "H3CNH2"),
    "acetic_acid": ("ase", "CH3COOH"),
    "acetone": ("ase", "CH3COCH3"),
    "toluene": ("smiles", "Cc1ccccc1"),
    "uracil": ("smiles", "O=C1C=CNC(=O)N1"),
    "phenol": ("smiles", "Oc1ccccc1"),
    "salicylic_acid": ("smiles", "OC(=O)c1ccccc1O"),
    "naphthalene": ("smiles", "c1ccc2ccccc2c1"),
}


def build(name: str):  # noqa: ANN201 (ase.Atoms)
    """The molecule's starting geometry (not yet minimised)."""
    kind, key = MOLECULES[name]
    if kind == "ase":
        from ase.build import molecule

        return molecule(key)
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError as err:
        raise SystemExit(f"{name}: built from SMILES by RDKit; pip install rdkit") from err
    from ase import Atoms

    mol = Chem.AddHs(Chem.MolFromSmiles(key))
    if AllChem.EmbedMolecule(mol, randomSeed=7) != 0:
        raise RuntimeError(f"{name}: RDKit could not embed {key}")
    AllChem.MMFFOptimizeMolecule(mol)
    positions = mol.GetConformer().GetPositions()
    return Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=positions)


def minimise(atoms):  # noqa: ANN001, ANN201
    from ase.optimize import BFGS

    from mlip.labelling import make_labeller

    atoms = atoms.copy()
    atoms.calc = make_labeller(SPEC).calculator
    BFGS(atoms, logfile=None).run(fmax=1e-4, steps=2000)
    return atoms


def trajectory(minimum, frames: int, every: int, seed: int) -> list:  # noqa: ANN001
    """``frames`` Structures of 500 K Langevin xTB MD (module docstring)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from mlip.data.graph import Structure
    from mlip.labelling import make_labeller

    atoms = minimum.copy()
    atoms.calc = make_labeller(SPEC).calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=500, friction=0.01 / units.fs, rng=rng)
    dyn.run(2000)  # 1 ps of equilibration
    out = []
    for _ in range(frames):
        dyn.run(every)
        s = Structure.from_atoms(atoms.copy())
        s.energy, s.forces = float(atoms.get_potential_energy()), atoms.get_forces().copy()
        out.append(s)
    return out


def make(name: str, out: str, frames: int, test_frames: int, every: int) -> str:
    from mlip.data.graph import Structure
    from mlip.data.writer import Group, write_mlip_hdf5

    path = os.path.join(out, f"{name}_xtb.h5")
    if os.path.exists(path):
        return path
    start = time.perf_counter()
    minimum = minimise(build(name))
    seed_structure = Structure.from_atoms(minimum.copy())
    seed_structure.energy = float(minimum.get_potential_energy())
    seed_structure.forces = minimum.get_forces().copy()
    seed = 1000 + sorted(MOLECULES).index(name)  # one per molecule, fixed
    pool = trajectory(minimum, frames, every, seed)
    test = trajectory(minimum, test_frames, every, seed + 500)
    groups = [Group(f"{name}_minimum", [seed_structure]), Group(name, pool),
              Group(f"{name}_test", test)]  # fmt: skip
    write_mlip_hdf5(path, groups, f"{SPEC} (tblite), ASE Langevin 500 K, every {every} steps")
    print(f"{name}: {len(minimum)} atoms, {path} ({time.perf_counter() - start:.0f} s)")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="/work/data/learn_molecules", help="folder of NAME_xtb.h5")
    p.add_argument("--molecules", nargs="+", default=list(MOLECULES), choices=list(MOLECULES))
    p.add_argument("--frames", type=int, default=1500, help="reference MD frames (pool, valid)")
    p.add_argument("--test-frames", type=int, default=500, help="independent trajectory frames")
    p.add_argument("--every", type=int, default=20, help="MD steps (0.5 fs) between frames")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name in args.molecules:
        make(name, args.out, args.frames, args.test_frames, args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
