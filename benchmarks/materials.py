"""Materials test bench: a model's crystal properties against a reference calculator.

    python benchmarks/materials.py MODEL --reference emt [--system cu|cuau] [--quick]

MODEL is an mlip model file (``model.pt``, evaluated in float64) or any calculator spec
of ``mlip label`` (``emt``, ``mlip:model.pt``, ``MODULE:FACTORY``, ...: see
:mod:`mlip.labelling.calculators`), and so is ``--reference``; ``emt`` against
``emt`` is the bench's self-check (every error zero). Both calculators go through the
same code, so the error column is the model's alone. Measured:

* ``cu``, fcc Cu: lattice constant and bulk modulus (Birch-Murnaghan fit of E(V),
  +-2 % linear strain), elastic constants C11, C12, C44 (central differences of the
  stress under +-0.5 % strains, ions relaxed), vacancy formation energy (3x3x3 cubic
  supercell, 108 sites, positions relaxed), (100) and (111) surface energies (relaxed
  slabs, 7.5 A of vacuum on each side), phonon frequencies at X and L (phonopy on a
  3x3x3 supercell: exact Hessian-vector products for an mlip model, the library path of
  ``mlip phonons``; 0.01 A finite displacements for other calculators), and errors on
  held-out larger cells (default ``/work/data/materials/cu_test_emt.h5``: 108- and
  256-atom cells from MD at 300-1200 K, strained and vacancy cells; made by
  ``benchmarks/make_materials_data.py``): force MAE, energy MAE and the pressure MAE
  and mean bias, per cell size.
* ``cuau``, fcc Cu-Au: the same for the ordered L1_2 Cu3Au (vacancies on a Cu and on an
  Au site, with the elements' own crystals as chemical potentials; phonons at Gamma,
  X, M and R of its simple cubic lattice), the lattice constant, bulk modulus and
  elastic constants (cubic averages) of a random Cu50Au50 fcc cell (3x3x3, 108 atoms,
  seeded), the formation energies (against fcc Cu and Au, cell and positions relaxed)
  of L1_2 Cu3Au, L1_0 CuAu, L1_2 CuAu3 and random 32-atom cells at x = 1/8 ... 7/8, and
  the held-out cells of ``cuau_test_emt.h5``.

Held-out cells carry labels of the calculator in the file's ``level_of_theory``; when
that is not the reference spec they are labelled again with the reference.
``--quick`` uses smaller supercells, slabs and fewer points (for tests and a first
look; its figures are not the bench's). Prints a markdown table (model, reference,
error: relative in % for properties, absolute in meV for energies) and writes the rows
as JSON with ``--json``.

Why ASE's tools and not matcalc: matcalc (PyPI) computes EOS, elastic constants,
phonons, vacancies and surfaces from any ASE calculator and works with mlip's
calculator, but it brings pymatgen and its stack (pandas, plotly, scikit-learn, a
model hub client) into the test environment for what is here a few lines over
``ase.eos``, ``ase.build``, ``ase.optimize`` and phonopy, which mlip already depends
on; and its phonons use finite displacements only, where an mlip model has exact
force constants. Its results for EMT agree with these functions' (checked by hand once
when the choice was made).

Units: A, eV, GPa, J/m^2, THz, meV/A (forces), meV/atom (energies).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import crystal_properties as cp
import numpy as np
import torch
from ase import Atoms
from ase.build import bulk
from common import DATA as SHARED
from common import training_max_force, training_min_distance

DATA = "/work/data/materials"
CU, AU = 29, 79


@dataclass(frozen=True)
class Settings:
    """How large the calculations are (full bench or ``--quick``)."""

    eos_points: int = 11
    vacancy_repeat: int = 3  # cubic cells per side of the vacancy supercell
    phonon_supercell: int = 3
    layers_100: int = 4  # conventional-cell repeats: two atomic planes each
    layers_111: int = 7  # atomic planes
    random_repeat: int = 3  # the random Cu50Au50 cell
    fractions: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)  # 32 atoms
    issue_cells: bool = True  # Cu: issue 23's ten 108-atom cells as well


QUICK = Settings(eos_points=5, vacancy_repeat=2, phonon_supercell=2, layers_100=2,
                 layers_111=4, random_repeat=2, fractions=(), issue_cells=False)  # fmt: skip


def make_calculator(spec: str) -> Any:
    """An ASE calculator: an mlip model file (float64) or a calculator spec."""
    if os.path.isfile(spec):
        from mlip.calculator import MLIPCalculator

        return MLIPCalculator(spec, dtype="float64")
    from mlip.labelling import make_labeller

    return make_labeller(spec).calculator


def l12(minority: int = AU, majority: int = CU, a: float = 3.71) -> Atoms:
    """The 4-atom conventional cell of L1_2 (minority on the cube corner)."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.numbers = [minority, majority, majority, majority]
    return atoms


def l10(a: float = 3.82) -> Atoms:
    """The 4-atom cell of L1_0 CuAu: (001) planes of Cu and of Au."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.numbers = [CU, AU, AU, CU]
    return atoms


def random_alloy(x: float, repeat: int, seed: int = 0) -> Atoms:
    """A random fcc Cu(1-x)Au(x) cell of ``repeat``^3 cubic cells (Vegard's lattice
    constant between 3.59 and 4.06 A), drawn with ``seed``."""
    atoms = bulk("Cu", "fcc", a=(1 - x) * 3.59 + x * 4.06, cubic=True).repeat(repeat)
    rng = np.random.default_rng([seed, int(round(1000 * x)), repeat])
    numbers = np.full(len(atoms), CU)
    numbers[rng.choice(len(atoms), int(round(x * len(atoms))), replace=False)] = AU
    atoms.numbers = numbers
    return atoms


Row = dict[str, Any]


def row(quantity: str, unit: str, model: Any, reference: Any, kind: str = "relative") -> Row:
    """A table row; ``kind`` relative (error in %), absolute (in meV, energies given in
    eV), difference (in the row's unit), phonon (mean and largest relative error over the
    branches) or mae (no reference)."""
    out: Row = {"quantity": quantity, "unit": unit, "model": model, "reference": reference}
    if kind == "relative":
        out["error"], out["error_unit"] = 100.0 * (model - reference) / abs(reference), "%"
    elif kind == "absolute":
        out["error"], out["error_unit"] = 1000.0 * (model - reference), "meV"
    elif kind == "difference":
        out["error"], out["error_unit"] = model - reference, unit
    elif kind == "phonon":
        m, r = np.asarray(model), np.asarray(reference)
        keep = np.abs(r) > 0.1  # THz: the acoustic modes at Gamma are zero in both
        relative = np.abs(m[keep] - r[keep]) / np.abs(r[keep]) if keep.any() else np.zeros(1)
        out["error"], out["error_unit"] = 100.0 * float(relative.mean()), "%"
        out["max_error"] = 100.0 * float(relative.max())
        out["model"], out["reference"] = m.tolist(), r.tolist()
    else:
        out["reference"], out["error"], out["error_unit"] = None, None, ""
    return out


def crystal_rows(name: str, cell: Atoms, vacancies: list[tuple[str, int]],
                 qpoints: dict[str, list[float]], calcs: dict[str, Any],
                 settings: Settings, timings: dict[str, float]) -> list[Row]:  # fmt: skip
    """EOS, elastic constants, vacancies, surfaces and phonons of one crystal."""
    values: dict[str, dict[str, Any]] = {}
    for who, calc in calcs.items():
        start = time.perf_counter()
        relaxed = cp.relaxed_crystal(cell, calc)
        eos = cp.equation_of_state(relaxed, calc, points=settings.eos_points)
        elastic = cp.elastic_constants(relaxed, calc)
        references = {z: pure_energy(z, calc) for z in set(cell.numbers.tolist())}
        supercell = relaxed.repeat(settings.vacancy_repeat)
        single = len(references) == 1
        vacancy = [
            cp.vacancy_formation_energy(supercell, calc, index,
                                        None if single else references[int(cell.numbers[index])])
            for _, index in vacancies
        ]  # fmt: skip
        surfaces = [
            cp.surface_energy(relaxed, calc, (1, 0, 0), settings.layers_100),
            cp.surface_energy(relaxed, calc, (1, 1, 1), settings.layers_111),
        ]
        q = np.array(list(qpoints.values()))
        phonons = cp.phonon_frequencies(relaxed, calc, settings.phonon_supercell, q)
        values[who] = dict(eos=eos, elastic=elastic, vacancy=vacancy, surfaces=surfaces,
                           phonons=phonons)  # fmt: skip
        timings[f"{name} ({who})"] = time.perf_counter() - start
    m, r = values["model"], values["reference"]
    rows = bulk_rows(name, m, r)
    rows += [row(f"{name}: vacancy formation energy, {site}", "eV", m["vacancy"][k],
                 r["vacancy"][k], "absolute") for k, (site, _) in enumerate(vacancies)]  # fmt: skip
    rows += [row(f"{name}: surface energy ({hkl})", "J/m^2", m["surfaces"][k], r["surfaces"][k])
             for k, hkl in enumerate(("100", "111"))]  # fmt: skip
    rows += [row(f"{name}: phonons at {label}", "THz", m["phonons"][k], r["phonons"][k], "phonon")
             for k, label in enumerate(qpoints)]  # fmt: skip
    return rows


def bulk_rows(name: str, m: dict[str, Any], r: dict[str, Any], elastic_note: str = "") -> list[Row]:
    """Lattice constant, bulk modulus (EOS) and C11, C12, C44 of ``name``: the model's
    values ``m`` against the reference's ``r`` (``eos`` and ``elastic`` entries)."""
    rows = [
        row(f"{name}: lattice constant", "A", m["eos"]["lattice_constant"],
            r["eos"]["lattice_constant"]),
        row(f"{name}: bulk modulus (EOS)", "GPa", m["eos"]["bulk_modulus"],
            r["eos"]["bulk_modulus"]),
    ]  # fmt: skip
    return rows + [row(f"{name}: {c}{elastic_note}", "GPa", m["elastic"][c], r["elastic"][c])
                   for c in ("C11", "C12", "C44")]  # fmt: skip


def pure_energy(z: int, calc: Any) -> float:
    """Energy per atom (eV) of the relaxed fcc crystal of element ``z`` (remembered on
    the calculator object, which the bench makes for one run)."""
    cache = calc.__dict__.setdefault("_bench_pure_energy", {})
    if z not in cache:
        crystal = bulk("Cu", "fcc", a={CU: 3.59, AU: 4.06}.get(z, 4.0), cubic=True)
        crystal.numbers = [z] * 4
        relaxed = cp.relaxed_crystal(crystal, calc)
        cache[z] = float(relaxed.get_potential_energy()) / len(relaxed)
    return cache[z]


def formation_structures(fractions: tuple[float, ...]) -> dict[str, Atoms]:
    """The ordered Cu-Au cells and a random 32-atom cell per Au fraction, by name."""
    structures = {"L1_2 Cu3Au": l12(AU, CU, 3.71), "L1_0 CuAu": l10(),
                  "L1_2 CuAu3": l12(CU, AU, 3.95)}  # fmt: skip
    for x in fractions:
        structures[f"random x={x:.3f} (32)"] = random_alloy(x, 2)
    return structures


def formation_energies(structures: dict[str, Atoms], calc: Any) -> tuple[dict, dict[int, float]]:
    """Formation energies (eV/atom) of ``structures``, each relaxed by ``calc`` against its
    relaxed fcc Cu and Au, and those pure crystals' energies (eV/atom, by element)."""
    references = {z: pure_energy(z, calc) for z in (CU, AU)}
    formation = {name: cp.formation_energy(s, calc, references)[0]
                 for name, s in structures.items()}  # fmt: skip
    return formation, references


def alloy_rows(calcs: dict[str, Any], settings: Settings, timings: dict[str, float]) -> list[Row]:
    """Random Cu50Au50 (EOS, elastic constants) and formation energies vs composition."""
    structures = formation_structures(settings.fractions)
    random_cell = random_alloy(0.5, settings.random_repeat)
    random_name = f"random Cu50Au50 ({len(random_cell)})"
    values: dict[str, dict[str, Any]] = {}
    for who, calc in calcs.items():
        start = time.perf_counter()
        formation, references = formation_energies(structures, calc)
        formation[random_name], relaxed = cp.formation_energy(random_cell, calc, references)
        eos = cp.equation_of_state(relaxed, calc, points=settings.eos_points)
        elastic = cp.elastic_constants(relaxed, calc)
        values[who] = dict(formation=formation, eos=eos, elastic=elastic)
        timings[f"alloy ({who})"] = time.perf_counter() - start
    structures[random_name] = random_cell
    m, r, name = values["model"], values["reference"], random_name
    rows = bulk_rows(name, m, r, " (cubic average)")
    rows += [row(f"formation energy, {s}", "meV/atom", 1000 * m["formation"][s],
                 1000 * r["formation"][s], "difference") for s in structures]  # fmt: skip
    errors = [abs(m["formation"][s] - r["formation"][s]) for s in structures]
    mae = 1000 * float(np.mean(errors))
    rows.append(row("formation energy MAE over these", "meV/atom", mae, None, "mae"))
    return rows


def read_cells(path: str, reference: Any, reference_spec: str) -> tuple[list, str]:
    """Labelled cells of an mlip HDF5 file: its labels where its ``level_of_theory`` is
    the reference spec, else labels computed with the reference calculator."""
    import h5py

    from mlip.data.hdf5 import H5Dataset

    with h5py.File(path, "r") as handle:
        level = str(handle.attrs.get("level_of_theory", ""))
    dataset = H5Dataset(path)
    structures = list(dataset.iterate(range(len(dataset))))
    dataset.close()
    relabel = level.strip().lower() != reference_spec.strip().lower()
    cells = []
    for s in structures:
        atoms = s.to_atoms()
        if relabel:
            labelled = cp.attach(atoms, reference)
            labels = {"energy": labelled.get_potential_energy(), "forces": labelled.get_forces(),
                      "stress": labelled.get_stress(voigt=True)}  # fmt: skip
        else:
            labels = {"energy": s.energy, "forces": s.forces, "stress": s.stress}
        cells.append((atoms, labels))
    source = f"labelled again by {reference_spec}" if relabel else f"labels of the file ({level})"
    return cells, source


class TrainingRange(NamedTuple):
    """What the model's training data cover: the largest force component (eV/A) and the
    shortest interatomic distance (A); None where unknown."""

    max_force: float | None = None
    min_distance: float | None = None


def training_range(path: str | None) -> TrainingRange:
    """The :class:`TrainingRange` of an mlip HDF5 file (empty without one)."""
    if path is None:
        return TrainingRange()
    return TrainingRange(training_max_force(path), training_min_distance(path))


def error_rows(where: str, cells: list, model: Any, training: TrainingRange) -> list[Row]:
    """Force, energy and pressure error rows of ``model`` on labelled ``cells``; with
    the training data's range the force MAE of the cells within and beyond its largest
    force, and of the atoms nearer a neighbour than its shortest distance and the others."""
    max_force, min_distance = training
    e = cp.cell_errors(cells, model, max_force, min_distance)
    where = f"{where} ({e['cells']})"
    rows = [row(f"{where}: force MAE", "meV/A", e["forces_mae"], None, "mae"),
            row(f"{where}: force MAE of the median cell", "meV/A", e["forces_mae_median_cell"],
                None, "mae")]  # fmt: skip
    if max_force is not None:
        for side in ("within", "beyond"):
            if e[f"cells_{side}"]:  # no row for an empty side
                rows.append(row(f"{where}: force MAE of the {e[f'cells_{side}']} cells {side} "
                                f"the training data's largest force ({max_force:.2f} eV/A)",
                                "meV/A", e[f"forces_mae_{side}"], None, "mae"))  # fmt: skip
    if min_distance is not None:
        if e["atoms_close"]:
            rows.append(row(f"{where}: force MAE of the {e['atoms_close']} atoms nearer a "
                            f"neighbour than the training data's shortest distance "
                            f"({min_distance:.3f} A)", "meV/A", e["forces_mae_close"], None,
                            "mae"))  # fmt: skip
        rows.append(row(f"{where}: force MAE of the other {e['atoms_far']} atoms", "meV/A",
                        e["forces_mae_far"], None, "mae"))  # fmt: skip
    rows.append(row(f"{where}: energy MAE", "meV/atom", e["energy_mae"], None, "mae"))
    if "pressure_mae" in e:
        rows.append(row(f"{where}: pressure MAE", "GPa", e["pressure_mae"], None, "mae"))
        rows.append(row(f"{where}: pressure mean bias", "GPa", e["pressure_bias"], None, "mae"))
    return rows


def held_out_rows(path: str, model: Any, reference: Any, reference_spec: str,
                  training: TrainingRange | None = None) -> list[Row]:  # fmt: skip
    """Force, energy and pressure errors on the held-out cells, per cell size."""
    training = training or TrainingRange()
    cells, source = read_cells(path, reference, reference_spec)
    sizes: dict[int, list] = {}
    for cell in cells:  # 4 r^3 atoms of an r^3 cubic supercell (or one less: a vacancy)
        repeat = int(round((len(cell[0]) / 4) ** (1 / 3)))
        sizes.setdefault(4 * repeat**3, []).append(cell)
    rows = []
    for size, group in sorted(sizes.items()):
        rows += error_rows(f"held-out {size}-atom cells, {source}", group, model, training)
    return rows


def issue_cells_rows(model: Any, reference: Any, training: TrainingRange) -> list[Row]:
    """The ten 108-atom Cu cells of issue 23's table (:func:`common.cu_test_cells`:
    strains up to 2 %, Gaussian displacements of 0.05-0.15 A), labelled by the
    reference: the cells the issue's figures were measured on."""
    from common import cu_test_cells

    cells = []
    for atoms in cu_test_cells():
        labelled = cp.attach(atoms, reference)
        cells.append((atoms, {"energy": labelled.get_potential_energy(),
                              "forces": labelled.get_forces(),
                              "stress": labelled.get_stress(voigt=True)}))  # fmt: skip
    return error_rows("issue 23's 108-atom cells", cells, model, training)


SYSTEMS = {
    "cu": {
        "crystal": ("fcc Cu", lambda: bulk("Cu", "fcc", a=3.59, cubic=True), [("Cu", 0)],
                    {"X": [0.0, 1.0, 0.0], "L": [0.5, 0.5, 0.5]}),
        "test": "cu_test_emt.h5",
        "train": os.path.join(SHARED, "cu_emt.h5"),
    },
    "cuau": {
        "crystal": ("L1_2 Cu3Au", lambda: l12(AU, CU, 3.71), [("Cu site", 1), ("Au site", 0)],
                    {"Gamma": [0.0, 0.0, 0.0], "X": [0.0, 0.5, 0.0], "M": [0.5, 0.5, 0.0],
                     "R": [0.5, 0.5, 0.5]}),
        "test": "cuau_test_emt.h5",
        "train": os.path.join(DATA, "cuau_emt.h5"),
    },
}  # fmt: skip


def run_bench(model_spec: str, reference_spec: str, system: str, test_data: str | None,
              settings: Settings, train_data: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Every row of the bench for ``system`` (see the module docstring) as a dict."""
    calcs = {"model": make_calculator(model_spec), "reference": make_calculator(reference_spec)}
    timings: dict[str, float] = {}
    name, make_cell, vacancies, qpoints = SYSTEMS[system]["crystal"]
    rows = crystal_rows(name, make_cell(), vacancies, qpoints, calcs, settings, timings)
    if system == "cuau":
        rows += alloy_rows(calcs, settings, timings)
    training = training_range(train_data)
    if test_data:
        start = time.perf_counter()
        rows += held_out_rows(test_data, calcs["model"], calcs["reference"], reference_spec,
                              training)  # fmt: skip
        timings["held-out cells"] = time.perf_counter() - start
    if system == "cu" and settings.issue_cells:
        rows += issue_cells_rows(calcs["model"], calcs["reference"], training)
    return {"system": system, "model": model_spec, "reference": reference_spec,
            "test_data": test_data, "train_data": train_data, "settings": vars(settings),
            "rows": rows,
            "seconds": timings}  # fmt: skip


def _number(value: Any, unit: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # phonon branches: the distinct frequencies
        distinct = sorted({round(v, 2) + 0.0 for v in value})  # + 0.0: no "-0.00"
        return " / ".join(f"{v:.2f}" for v in distinct)
    digits = {"A": 4, "eV": 3, "J/m^2": 3, "GPa": 1 if abs(value) > 5 else 3}.get(unit, 2)
    return f"{value:.{digits}f}"


def format_table(result: dict[str, Any]) -> str:
    """The rows as a markdown table."""
    lines = [
        f"{result['system']}: {result['model']} against {result['reference']}",
        "",
        "| quantity | unit | model | reference | error |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        error = "" if r["error"] is None else f"{r['error']:+.2f} {r['error_unit']}"
        if "max_error" in r:
            error = f"{r['error']:.2f} % (max {r['max_error']:.2f} %)"
        lines.append(f"| {r['quantity']} | {r['unit']} | {_number(r['model'], r['unit'])} | "
                     f"{_number(r['reference'], r['unit'])} | {error} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL", help="mlip model file or calculator spec")
    parser.add_argument("--reference", default="emt", help="calculator spec (default emt)")
    parser.add_argument("--system", choices=list(SYSTEMS), default="cu")
    parser.add_argument("--test-data", default=None,
                        help=f"held-out cells, mlip HDF5 (default {DATA}/SYSTEM_test_emt.h5; "
                        "'none' leaves them out)")  # fmt: skip
    parser.add_argument("--train-data", default=None,
                        help="the model's training data, mlip HDF5: held-out cells are split "
                        "by its largest force (default: the system's training file where it "
                        "exists; 'none': no split)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small cells (tests, first look)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    test_data = args.test_data or os.path.join(DATA, SYSTEMS[args.system]["test"])
    if test_data.lower() == "none":
        test_data = None
    elif not os.path.exists(test_data):
        hint = "make them with benchmarks/make_materials_data.py, or pass --test-data none"
        raise SystemExit(f"held-out cells not found: {test_data} ({hint})")
    train_data = args.train_data or SYSTEMS[args.system]["train"]
    if train_data.lower() == "none" or (args.train_data is None and not os.path.exists(train_data)):
        train_data = None
    result = run_bench(args.model, args.reference, args.system, test_data,
                       QUICK if args.quick else Settings(), train_data)  # fmt: skip
    print(format_table(result))
    if args.json:
        from mlip.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
