"""mlip models inside LAMMPS on 1, 2 and 3 MPI ranks (``mpiexec`` from the tests).

The jobs run in ``mpiexec -n RANKS python support/lammps_runs.py`` through the Python
API (:func:`mlip.integrations.lammps.attach`), the command ``mlip lammps`` in
tests/test_lammps_cli.py. Every comparison is with the ASE calculator on the structure
LAMMPS holds (its box and atoms gathered by id), in float64:

* ``run 0`` equals the calculator to 1e-9 (energy, forces, per-atom energies, the
  virial pressure tensor) for an orthorhombic cell, a triclinic cell, a box smaller than
  the interaction range, two elements, a molecule in a shrink-wrapped box and one in
  a corner of a fixed box (ranks without atoms), on every rank count; a committee's
  force spread likewise;
* 1, 2 and 3 ranks give the same 50-step NVE trajectory (1e-8 A);
* a ghost shell one cutoff short is caught (the far-reaching model's last layer
  matters); Lennard-Jones through the coupling equals ``pair_style lj/cut`` with
  ``pair_modify shift yes``;
* NVE energy drift on copper below 1e-5 eV/atom/ps; ``minimize`` with ``fix box/relax``
  and ``fix npt`` reach the lattice constant of the calculator's equation of state;
* an exception in the model stops LAMMPS on every rank with its message and a
  non-zero exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.eos import EquationOfState
from support import close_pair, far_reaching_model, small_model
from support.lammps_jobs import (
    EV_PER_A3_IN_BAR,
    atoms_of,
    run_jobs,
    run_worker,
    setup,
    static_job,
    write_data,
)

from mlip.calculator import MLIPCalculator
from mlip.committee import Committee

ROOT = Path(__file__).resolve().parent.parent
CU_TINY = ROOT / "datasets" / "cu_tiny.pt"
METAL = ["Cu", "Au"]
ORGANIC = ["C", "H", "O"]
STATIC = ("ortho", "tri", "small", "molecule", "corner")
MOLECULES = ("molecule", "corner")
LJ = {"epsilon": 0.0104, "sigma": 3.4, "r_max": 8.5}


def copper_gold(repeat: tuple[int, int, int], seed: int) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    atoms.numbers[::3] = 79
    atoms.rattle(0.08, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """Models and data files: a 2-layer far-reaching Cu/Au model (interaction range
    8 A), one for C, H, O, a committee, and the structures of the jobs."""
    folder = tmp_path_factory.mktemp("lammps")
    models = {
        "metal": far_reaching_model((29, 79), 2, 4.0),
        "organic": far_reaching_model((1, 6, 8), 2, 3.0),
        "committee": Committee([small_model((29, 79), seed=k, r_max=4.0) for k in (0, 1)]),
    }
    paths = {name: str(folder / f"{name}.pt") for name in models}
    for name, model in models.items():
        model.save(paths[name])
    tri = copper_gold((3, 3, 3), 2)
    tri.set_cell(tri.cell.array + [[0, 0, 0], [1.3, 0, 0], [0.9, -0.6, 0]], scale_atoms=True)
    close_pair(tri)  # one pair at 2.0 A: the models' ZBL term is large
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.05, seed=4)
    corner = ethanol.copy()  # in a corner of a fixed box: other ranks own no atom
    corner.set_cell([30.0, 30.0, 30.0])
    corner.positions += 4.0 - corner.positions.min(0)
    ethanol.set_cell([12.0, 12.0, 12.0])
    ethanol.center()
    structures = {
        "ortho": (copper_gold((3, 3, 6), 1), METAL),  # 10.8 x 10.8 x 21.6 A
        "tri": (tri, METAL),
        "small": (copper_gold((2, 1, 2), 3), METAL),  # 3.6 A thick: below the range
        "molecule": (ethanol, ORGANIC),
        "corner": (corner, ORGANIC),
        "argon": (bulk("Ar", "fcc", a=5.26, cubic=True).repeat(4), ["Ar"]),
        "cu108": (bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3), ["Cu"]),
        "cu32": (bulk("Cu", "fcc", a=3.66, cubic=True).repeat(2), ["Cu"]),
    }
    structures["cu108"][0].rattle(0.05, seed=5)
    data = {
        name: write_data(atoms, folder / f"{name}.data", elements)
        for name, (atoms, elements) in structures.items()
    }
    return {"folder": folder, "models": models, "paths": paths, "data": data,
            "structures": structures}  # fmt: skip


def common_jobs(files: dict) -> list[dict]:
    """The jobs of every rank count: run 0 of each structure, a 50-step NVE run."""
    jobs = []
    for name in STATIC:
        kind = "organic" if name in MOLECULES else "metal"
        boundary = {"molecule": "s s s", "corner": "f f f"}.get(name, "p p p")
        elements = ORGANIC if name in MOLECULES else METAL
        jobs.append(static_job(name, files["data"][name], files["paths"][kind], elements, boundary))
    jobs.append({
        "name": "nve", "setup": setup(files["data"]["ortho"]), "model": files["paths"]["metal"],
        "elements": METAL, "steps": 50, "every": 10,
        "commands": ["velocity all create 900 42 loop geom", "fix integrate all nve",
                     "timestep 0.002", "neighbor 0.5 bin"],
    })  # fmt: skip
    return jobs


def two_rank_jobs(files: dict) -> list[dict]:
    """Jobs on two ranks only: committee, short ghost shell, Lennard-Jones, drift."""
    data, paths = files["data"], files["paths"]
    lj_commands = ["compute pv all pressure NULL virial", "velocity all create 80 3 loop geom",
                   "fix integrate all nve", "timestep 0.005"]  # fmt: skip
    return [
        static_job("committee", data["ortho"], paths["committee"], METAL,
                   fix_vectors={"mlip": 2}, per_atom=["c_pe", "d_mlip_force_std"]),
        static_job("short", data["ortho"], paths["metal"], METAL, ghost_cutoff=4.0,
                   setup=setup(data["ortho"], extra=["neighbor 0.0 bin"])),
        {"name": "lj", "setup": setup(data["argon"]), "model": {"lennard_jones": LJ},
         "elements": ["Ar"], "commands": lj_commands, "vectors": ["pv"], "steps": 20},
        {"name": "lj_cut", "attach": False, "vectors": ["pv"], "steps": 20,
         "setup": setup(data["argon"], extra=[
             f"pair_style lj/cut {LJ['r_max']}", f"pair_coeff * * {LJ['epsilon']} {LJ['sigma']}",
             "pair_modify shift yes"]),
         "commands": lj_commands},
        {"name": "drift", "setup": setup(data["cu108"]), "model": str(CU_TINY),
         "elements": ["Cu"], "steps": 1000, "every": 20,
         "commands": ["velocity all create 600 7 loop geom", "fix integrate all nve",
                      "timestep 0.001", "neighbor 0.5 bin"]},
    ]  # fmt: skip


def one_rank_jobs(files: dict) -> list[dict]:
    """Jobs on one rank only: the lattice constant by minimize/box relax and by NPT."""
    data = files["data"]
    return [
        {"name": "relax", "setup": setup(data["cu108"]), "model": str(CU_TINY),
         "elements": ["Cu"], "commands": ["fix relax all box/relax iso 0.0 vmax 0.001"],
         "finally": ["minimize 0.0 1e-10 1000 10000"]},
        {"name": "npt", "setup": setup(data["cu32"]), "model": str(CU_TINY),
         "elements": ["Cu"], "steps": 1500, "every": 10,
         "commands": ["velocity all create 10 5 loop geom", "timestep 0.002",
                      "fix barostat all npt temp 5 5 0.1 iso 0 0 0.5"]},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def runs(files):
    """The results of each rank count, run once on first use."""
    done: dict[int, dict] = {}

    def get(ranks: int) -> dict:
        if ranks not in done:
            jobs = common_jobs(files)
            jobs += {1: one_rank_jobs, 2: two_rank_jobs}.get(ranks, lambda _: [])(files)
            done[ranks] = run_jobs(jobs, ranks, files["folder"] / f"ranks{ranks}")
        return done[ranks]

    return get


def reference(files: dict, results: dict, name: str, model_name: str, elements: list[str]):  # noqa: ANN201
    atoms = atoms_of(results, name, elements)
    atoms.calc = MLIPCalculator(files["models"][model_name])
    return atoms


@pytest.mark.parametrize("ranks", [1, 2, 3])
@pytest.mark.parametrize("name", STATIC)
def test_run0_equals_the_calculator(files, runs, ranks, name):
    results = runs(ranks)
    organic = name in MOLECULES
    atoms = reference(files, results, name, "organic" if organic else "metal",
                      ORGANIC if organic else METAL)  # fmt: skip
    assert abs(results[f"{name}/thermo"][0, 0] - atoms.get_potential_energy()) < 1e-9
    assert np.abs(results[f"{name}/f"] - atoms.get_forces()).max() < 1e-9
    assert np.abs(results[f"{name}/c_pe"] - atoms.get_potential_energies()).max() < 1e-9
    pressure = results[f"{name}/pv"] / EV_PER_A3_IN_BAR  # xx yy zz xy xz yz, eV/A^3
    volume = abs(np.linalg.det(results[f"{name}/cell"]))
    if organic:  # no cell: LAMMPS's virial sum_i r_i f_i / V of the (shrink-wrapped) box
        virial = atoms.positions.T @ atoms.get_forces()
    else:
        virial = -atoms.get_stress(voigt=False) * volume
    expected = virial[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]] / volume
    assert np.abs(pressure - expected).max() < 1e-9
    assert np.abs(expected).max() > 1e-5  # a pressure tensor worth comparing
    owned, copies, remote, _ = results[f"{name}/stats"]
    if ranks == 1:  # every ghost is an image of an owned atom: none is computed again
        assert remote == 0 and (copies > 0) == (not organic)


def test_trajectories_are_the_same_on_1_2_and_3_ranks(runs):
    one = runs(1)
    assert one["nve/thermo"][-1, 1] > 1.0  # kinetic energy: the atoms moved
    for ranks in (2, 3):
        other = runs(ranks)
        assert np.abs(other["nve/x"] - one["nve/x"]).max() < 1e-8
        assert np.abs(other["nve/v"] - one["nve/v"]).max() < 1e-8
        assert np.abs(other["nve/thermo"][:, 2] - one["nve/thermo"][:, 2]).max() < 1e-8


def test_committee_force_spread_reaches_lammps(files, runs):
    results = runs(2)
    atoms = reference(files, results, "committee", "committee", METAL)
    assert np.abs(results["committee/f"] - atoms.get_forces()).max() < 1e-9
    spread = atoms.calc.get_property("forces_std", atoms)
    assert np.abs(results["committee/d_mlip_force_std"] - spread).max() < 1e-9
    largest, energy_std = results["committee/f_mlip"]
    assert abs(largest - spread.max()) < 1e-9 and spread.max() > 1e-3
    assert abs(energy_std - atoms.calc.get_property("energy_std", atoms)) < 1e-9


def test_a_ghost_shell_one_cutoff_short_is_caught(files, runs):
    """Ghosts out to r_max instead of 2 r_max (no skin): the forces are wrong."""
    results = runs(2)
    atoms = reference(files, results, "short", "metal", METAL)
    assert np.abs(results["short/f"] - atoms.get_forces()).max() > 1e-6


def test_lennard_jones_equals_lj_cut_with_shift(runs):
    results = runs(2)
    mlip, lammps = results["lj/thermo"], results["lj_cut/thermo"]
    assert abs(mlip[0, 0]) > 1.0  # a cohesive energy, eV
    assert np.abs(mlip[:, :3] - lammps[:, :3]).max() < 1e-9  # pe, ke, etotal over 20 steps
    assert np.abs(results["lj/x"] - results["lj_cut/x"]).max() < 1e-9
    assert np.abs(results["lj/pv"] - results["lj_cut/pv"]).max() < 1e-9 * EV_PER_A3_IN_BAR


def test_nve_energy_drift_on_copper(runs):
    """1 ps of NVE (1 fs steps) with the shipped copper model on two ranks."""
    thermo = runs(2)["drift/thermo"]
    energy = thermo[:, 2] / 108  # eV/atom
    time = np.arange(len(energy)) * 20 * 0.001  # ps
    drift = np.polyfit(time, energy, 1)[0]
    assert thermo[-1, 1] > 1.0  # still hot: the atoms moved all along
    assert abs(drift) < 1e-5, f"drift {drift:.3g} eV/atom/ps"


def test_relax_and_npt_reach_the_lattice_constant_of_the_eos(runs):
    results = runs(1)
    calculator = MLIPCalculator(str(CU_TINY))
    lattice = np.linspace(3.52, 3.66, 8)
    volumes, energies = [], []
    for a in lattice:
        cell = bulk("Cu", "fcc", a=a, cubic=True)
        cell.calc = calculator
        volumes.append(cell.get_volume())
        energies.append(cell.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    a0 = v0 ** (1 / 3)
    relaxed = results["relax/thermo"][-1, 3] / 3  # lx of 3 cells
    assert abs(relaxed - a0) < 5e-4
    assert abs(results["relax/thermo"][-1, 6]) < 1.0  # bar
    npt = results["npt/thermo"][:, 3] / 2
    assert abs(npt[0] - 3.66) < 1e-9 and abs(npt[-len(npt) // 3 :].mean() - a0) < 2e-3


def test_an_exception_in_the_model_stops_lammps(files, tmp_path):
    job = static_job("fail", files["data"]["ortho"],
                     {"failing": {"path": files["paths"]["metal"], "calls": 3}}, METAL,
                     steps=10)  # fmt: skip
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"jobs": [job]}))
    result = run_worker(2, [str(spec), str(tmp_path / "out.npz")], tmp_path)
    assert result.returncode == 3  # not the user's: an internal error, with its traceback
    assert "internal error: step 2, rank" in result.stderr and "Traceback" in result.stderr
    assert "model failed on purpose at call 3" in result.stderr
    assert not (tmp_path / "out.npz").exists()
