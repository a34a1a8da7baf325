"""Materials data for choosing and testing training recipes: fcc Cu-Au and Cu, EMT labels.

Three sets, each written outside the repository (default ``/work/data/materials/``) as
``SET.h5`` in the mlip HDF5 layout by :func:`mlip.labelling.label_structures` (the
library behind ``mlip label INPUT OUT.h5 --calculator emt``), next to its unlabelled input
``SET.input.extxyz``, whose frames carry their provenance (``kind``, ``phase``,
``temperature_K``, ``x_au``; the HDF5 group attribute ``source_index`` points back to
them):

* ``cuau_emt``: the training pool, 1200 cells of 32 atoms (2x2x2 conventional fcc cells)
  and 31 (the same with a vacancy), energies (eV), forces (eV/A) and stress (eV/A^3).
  Twelve phases: random fcc Cu(1-x)Au(x) solid solutions at x = 0, 1/8, ..., 1 and the
  ordered L1_2 Cu3Au, L1_0 CuAu and L1_2 CuAu3. For every phase: strained cells
  (linear volumetric strain -3..+3 %, shear and deviatoric strain up to 3 %, Gaussian
  displacements of 0.02-0.12 A), Langevin MD snapshots at 300, 600, 900 and 1200 K in
  cells strained by up to 2 % around thermal expansion, and the same MD with one atom
  removed. Enough for ``mlip train --train-size 1000 --valid-size 100`` with 100 left.
* ``cuau_test_emt``: held-out LARGER cells of the same kinds, 108 atoms (3x3x3) and
  256 atoms (4x4x4): random alloys at x = 1/8, 1/4, 1/2, 3/4, 7/8 and the three ordered
  compounds, MD at 300-1200 K, strained and vacancy cells.
* ``cu_test_emt``: fcc Cu cells of 108 and 256 atoms, the same kinds, the larger-cell
  test of a model trained on ``cu_emt.h5``.

A base cell is fcc at Vegard's lattice constant between EMT's own Cu (3.590 A) and Au
(4.056 A); the ordered compounds start from their EMT-relaxed cells (L1_0 is
tetragonal). Atoms are sorted by element, so that every composition and size is one
HDF5 group (named after its formula). The MD runs with EMT itself (ASE's Langevin,
2 fs, friction 0.02/fs, 600 fs of equilibration from Maxwell-Boltzmann velocities,
snapshots 50 fs apart). Everything is seeded per structure (``--seed`` and the
structure's place in its set), so a set is the same on every run and machine, and
labelling resumes where an interrupted run stopped. ``materials_data.json`` in the
output folder records counts by kind, groups, sizes and the time each stage took.

    python benchmarks/make_materials_data.py [--out /work/data/materials] [--sets ...]

Units: eV, Angstrom, fs, K.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.build import bulk

DEFAULT_OUT = "/work/data/materials"
SEED = 23
A_CU, A_AU = 3.5898, 4.0562  # A, EMT's fcc lattice constants (ase.eos fit)
TEMPERATURES = (300.0, 600.0, 900.0, 1200.0)  # K
TIMESTEP, FRICTION = 2.0, 0.02  # fs, 1/fs
EQUILIBRATION, INTERVAL = 300, 25  # MD steps
ORDERED = ("L12_Cu3Au", "L10_CuAu", "L12_CuAu3")
SET_CODES = {"cuau_emt": 1, "cuau_test_emt": 2, "cu_test_emt": 3}


@dataclass(frozen=True)
class Recipe:
    """How to make one or more frames: ``kind`` strain | md | vacancy, ``phase`` (an
    ordered compound or ``random_x0.250``), ``repeat`` of the 4-atom cubic cell,
    temperature (K, MD kinds), number of snapshots, MD steps before the first, seed."""

    kind: str
    phase: str
    repeat: int
    temperature: float = 0.0
    frames: int = 1
    seed: tuple[int, ...] = ()
    equilibration: int = EQUILIBRATION


def vegard(x: float) -> float:
    """Lattice constant (A) of fcc Cu(1-x)Au(x) by Vegard's law between EMT's own."""
    return (1.0 - x) * A_CU + x * A_AU


def ordered_cell(phase: str) -> Atoms:
    """The 4-atom conventional cell of an ordered compound, relaxed (cell and positions)
    with EMT."""
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    # fcc sites (0,0,0) (0,1/2,1/2) (1/2,0,1/2) (1/2,1/2,0): L1_2 puts the minority on
    # the corner, L1_0 alternates (001) planes of Cu and Au
    order = {"L12_Cu3Au": "AuCu3", "L10_CuAu": "CuAuAuCu", "L12_CuAu3": "CuAu3"}[phase]
    symbols = Atoms(order).get_chemical_symbols()
    atoms = bulk("Cu", "fcc", a=vegard(symbols.count("Au") / 4.0), cubic=True)
    atoms.set_chemical_symbols(symbols)
    atoms.calc = EMT()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4, steps=300)
    atoms.calc = None
    return atoms


_ORDERED_CACHE: dict[str, Atoms] = {}


def base_cell(phase: str, repeat: int, rng: np.random.Generator) -> Atoms:
    """An unstrained ``repeat``^3 supercell of ``phase`` (random arrangement drawn with
    ``rng`` for a solid solution)."""
    if phase in ORDERED:
        if phase not in _ORDERED_CACHE:
            _ORDERED_CACHE[phase] = ordered_cell(phase)
        return _ORDERED_CACHE[phase].repeat(repeat)
    x = float(phase.removeprefix("random_x"))
    atoms = bulk("Cu", "fcc", a=vegard(x), cubic=True).repeat(repeat)
    n_au = int(round(x * len(atoms)))
    numbers = np.full(len(atoms), 29)
    numbers[rng.choice(len(atoms), n_au, replace=False)] = 79
    atoms.numbers = numbers
    return atoms


def strain_matrix(
    rng: np.random.Generator, volumetric: tuple[float, float], shear: float
) -> np.ndarray:
    """I + epsilon: linear volumetric strain in ``volumetric``, symmetric shear and
    deviatoric components up to ``shear``."""
    off = rng.uniform(-shear, shear, (3, 3))
    epsilon = 0.5 * (off + off.T)
    epsilon[np.diag_indices(3)] = rng.uniform(*volumetric) + rng.uniform(-shear, shear, 3) / 3
    return np.eye(3) + epsilon


def strained(atoms: Atoms, matrix: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ matrix, scale_atoms=True)
    return out


def md_snapshots(atoms: Atoms, recipe: Recipe, rng: np.random.Generator) -> list[Atoms]:
    """``recipe.frames`` Langevin snapshots of ``atoms`` at ``recipe.temperature`` with
    EMT (module docstring)."""
    from ase.calculators.emt import EMT
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary

    try:  # ASE >= 3.29, where MaxwellBoltzmannDistribution is deprecated
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    atoms = atoms.copy()
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K=recipe.temperature, rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())  # Langevin's own fixcm is deprecated
    dynamics = Langevin(atoms, TIMESTEP * units.fs, temperature_K=recipe.temperature,
                        friction=FRICTION / units.fs, fixcm=False, rng=rng)  # fmt: skip
    dynamics.run(recipe.equilibration)
    frames = []
    for _ in range(recipe.frames):
        dynamics.run(INTERVAL if recipe.frames > 1 else 0)
        frames.append(atoms.copy())
    return frames


def make_frames(recipe: Recipe) -> list[Atoms]:
    """The frames of one recipe, atoms sorted by element, provenance in ``info``."""
    rng = np.random.default_rng(list(recipe.seed))
    atoms = base_cell(recipe.phase, recipe.repeat, rng)
    if recipe.kind == "strain":
        atoms = strained(atoms, strain_matrix(rng, (-0.03, 0.03), 0.03))
        atoms.positions += rng.uniform(0.02, 0.12) * rng.standard_normal(atoms.positions.shape)
        frames = [atoms]
    else:
        if recipe.kind == "vacancy":
            del atoms[int(rng.integers(len(atoms)))]
        expansion = 1.5e-5 * recipe.temperature  # about Cu's thermal expansion
        matrix = strain_matrix(rng, (expansion - 0.015, expansion + 0.02), 0.01)
        frames = md_snapshots(strained(atoms, matrix), recipe, rng)
    x_au = float(np.mean(frames[0].numbers == 79))
    out = []
    for frame in frames:
        order = np.argsort(frame.numbers, kind="stable")
        clean = Atoms(numbers=frame.numbers[order], positions=frame.positions[order],
                      cell=frame.cell.array, pbc=True)  # fmt: skip
        clean.wrap()
        clean.info.update(kind=recipe.kind, phase=recipe.phase, x_au=round(x_au, 4),
                          temperature_K=recipe.temperature)  # fmt: skip
        out.append(clean)
    return out


def alloy_phases(fractions: list[float]) -> list[str]:
    return [f"random_x{x:.3f}" for x in fractions] + list(ORDERED)


def recipes(name: str, seed: int = SEED, tiny: bool = False) -> list[Recipe]:
    """What set ``name`` holds (module docstring); ``tiny``: one structure of each kind
    per cell size, after 10 MD steps, for tests."""
    plan: list[tuple[str, str, int, float, int]] = []  # kind, phase, repeat, T, frames
    if name == "cuau_emt":
        for phase in alloy_phases([k / 8 for k in range(9)]):
            plan += [("strain", phase, 2, 0.0, 1)] * 24
            plan += [("md", phase, 2, t, 15) for t in TEMPERATURES]
            plan += [("vacancy", phase, 2, t, 4) for t in TEMPERATURES]
    elif name == "cuau_test_emt":
        phases = alloy_phases([0.125, 0.25, 0.5, 0.75, 0.875])
        for k, phase in enumerate(phases):
            plan += [("md", phase, 3, t, 2) for t in TEMPERATURES]
            plan += [("strain", phase, 3, 0.0, 1)] * 2
            plan += [("vacancy", phase, 3, t, 1) for t in (600.0, 1200.0)]
            hot, cold = TEMPERATURES[k % 4], TEMPERATURES[(k + 2) % 4]
            plan += [("md", phase, 4, hot, 1), ("md", phase, 4, cold, 1)]
            plan += [("strain", phase, 4, 0.0, 1), ("vacancy", phase, 4, 900.0, 1)]
    elif name == "cu_test_emt":
        for repeat, copies in ((3, 4), (4, 2)):
            plan += [("md", "random_x0.000", repeat, t, 1) for t in TEMPERATURES] * copies
            plan += [("strain", "random_x0.000", repeat, 0.0, 1)] * (2 * copies)
            plan += [("vacancy", "random_x0.000", repeat, t, 1) for t in TEMPERATURES][:copies]
    else:
        raise ValueError(f"unknown set {name!r}; known: {', '.join(SET_CODES)}")
    if tiny:
        seen, small = set(), []
        for kind, phase, repeat, temperature, _ in plan:
            if (kind, repeat) not in seen:
                seen.add((kind, repeat))
                small.append((kind, phase, repeat, temperature, 1))
        plan = small
    code, steps = SET_CODES[name], 10 if tiny else EQUILIBRATION
    return [Recipe(kind, phase, repeat, t, frames, (seed, code, k), steps)
            for k, (kind, phase, repeat, t, frames) in enumerate(plan)]  # fmt: skip


def write_input(path: str, frames: list[Atoms]) -> None:
    """The unlabelled frames as extended XYZ, atomically."""
    import ase.io

    from mlip.fileio import atomic_path

    with atomic_path(path) as temp:
        ase.io.write(temp, frames, format="extxyz")


def make_set(name: str, out: str, seed: int = SEED, tiny: bool = False,
             force: bool = False, progress: bool = True) -> dict:  # fmt: skip
    """Build and label one set into ``out/NAME.h5``; returns its summary (counts,
    groups, size, seconds). An existing input is reused and labelling resumes unless
    ``force``."""
    from mlip.data.hdf5 import H5Dataset
    from mlip.labelling import LabelConfig, describe, label_structures

    os.makedirs(out, exist_ok=True)
    source = os.path.join(out, f"{name}.input.extxyz")
    output = os.path.join(out, f"{name}.h5")
    plan = recipes(name, seed, tiny)
    started = time.perf_counter()
    if force or not os.path.exists(source):
        frames = [frame for recipe in plan for frame in make_frames(recipe)]
        write_input(source, frames)
    else:
        import ase.io

        frames = ase.io.read(source, index=":")
    generated = time.perf_counter() - started
    config = LabelConfig(input=source, output=output, calculator="emt", overwrite=force,
                         progress=progress)  # fmt: skip
    result = label_structures(config)
    print(describe(result), flush=True)
    labelled = time.perf_counter() - started - generated
    dataset = H5Dataset(output)
    groups = {g.name: g.num_conformers for g in dataset.groups}
    dataset.close()
    return {
        "file": output,
        "input": source,
        "structures": result.labelled,
        "failed": len(result.failed),
        "atoms": dict(sorted(Counter(len(f) for f in frames).items())),
        "kinds": dict(Counter(str(f.info["kind"]) for f in frames)),
        "phases": dict(Counter(str(f.info["phase"]) for f in frames)),
        "groups": groups,
        "megabytes": round(os.path.getsize(output) / 2**20, 2),
        "generate_seconds": round(generated, 1),
        "label_seconds": round(labelled, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (outside the repo)")
    parser.add_argument("--sets", nargs="+", default=list(SET_CODES), choices=list(SET_CODES))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--tiny", action="store_true", help="a few structures each, for tests")
    parser.add_argument("--force", action="store_true", help="rebuild and relabel from scratch")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args()
    summary_path = os.path.join(args.out, "materials_data.json")
    summary = {}
    if os.path.exists(summary_path):
        with open(summary_path) as handle:
            summary = json.load(handle)
    for name in args.sets:
        print(f"{name}: {len(recipes(name, args.seed, args.tiny))} recipes", flush=True)
        summary[name] = make_set(name, args.out, args.seed, args.tiny, args.force, args.progress)
        summary[name]["seed"] = args.seed
        print(json.dumps(summary[name], indent=1), flush=True)
        from mlip.fileio import atomic_write_text

        atomic_write_text(summary_path, json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
