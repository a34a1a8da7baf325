"""LAMMPS jobs for the tests: data files, job specs, running them under mpiexec, results.

Nothing here imports LAMMPS or mpi4py (the test process stays free of MPI): the jobs run
in ``mpiexec -n RANKS python support/lammps_runs.py`` (:func:`run_jobs`), and their
results come back as arrays, with the structure LAMMPS holds turned into ``ase.Atoms``
(:func:`atoms_of`) for the calculator to compare with. Units: LAMMPS metal (eV, A, ps,
bar).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from support.processes import mpiexec

TESTS = Path(__file__).resolve().parent.parent
WORKER = TESTS / "support" / "lammps_runs.py"
#: 1 eV/A^3 in bar, as LAMMPS metal units have it (force->nktv2p; CODATA: 1.602176634e6)
EV_PER_A3_IN_BAR = 1.6021765e6


def write_data(atoms: Atoms, path: Path, elements: list[str]) -> Path:
    """A LAMMPS data file (atom_style atomic, masses) with type k = elements[k - 1]."""
    write(path, atoms, format="lammps-data", specorder=elements, masses=True, units="metal")
    return path


def setup(data: Path, boundary: str = "p p p", extra: list[str] | None = None) -> list[str]:
    """The commands reading a data file (units metal), with per-atom energies as c_pe."""
    return [
        "units metal",
        "atom_style atomic",
        "atom_modify map array",
        f"boundary {boundary}",
        f"read_data {data}",
        *(extra or []),
    ]


def static_job(name: str, data: Path, model, elements, boundary="p p p", **extra) -> dict:  # noqa: ANN001
    """``run 0`` with per-atom energies (c_pe) and the virial pressure tensor (c_pv, bar)."""
    return {
        "name": name,
        "setup": setup(data, boundary),
        "model": model,
        "elements": list(elements),
        "commands": ["compute pe all pe/atom", "compute pv all pressure NULL virial"],
        "per_atom": ["c_pe"],
        "vectors": ["pv"],
        **extra,
    }


def run_jobs(jobs: list[dict], ranks: int, folder: Path) -> dict[str, np.ndarray]:
    """Run the jobs on ``ranks`` MPI ranks; the arrays of the results, keyed NAME/FIELD.
    AssertionError with the output if the run fails."""
    folder.mkdir(parents=True, exist_ok=True)
    spec, out = folder / f"jobs_{ranks}.json", folder / f"results_{ranks}.npz"
    spec.write_text(json.dumps({"jobs": jobs}))
    result = run_worker(ranks, [str(spec), str(out)], folder)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


def run_worker(ranks: int, args: list[str], folder: Path):  # noqa: ANN201
    """``mpiexec -n RANKS python lammps_runs.py ARGS`` in ``folder`` (one torch thread)."""
    return mpiexec(ranks, [str(WORKER), *args], folder, environment())


def environment() -> dict[str, str]:
    """The environment of a LAMMPS subprocess: the tests folder importable, one thread."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def atoms_of(results: dict[str, np.ndarray], name: str, elements: list[str]) -> Atoms:
    """The structure a job ended with (LAMMPS's box and atoms, by id) as ``ase.Atoms``."""
    types = results[f"{name}/type"]
    return Atoms(
        symbols=[elements[t - 1] for t in types],
        positions=results[f"{name}/x"],
        cell=results[f"{name}/cell"],
        pbc=results[f"{name}/pbc"],
    )


def pressure_tensor(stress: np.ndarray) -> np.ndarray:
    """LAMMPS's virial pressure vector (xx yy zz xy xz yz, bar) of an ASE stress (Voigt
    xx yy zz yz xz xy, eV/A^3): P = -sigma."""
    xx, yy, zz, yz, xz, xy = stress
    return -np.array([xx, yy, zz, xy, xz, yz]) * EV_PER_A3_IN_BAR
