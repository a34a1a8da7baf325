"""Inference cost of the mlip model on CPU, float64: energy+forces and full Hessian.

Each call starts from an ``ase.Atoms`` (neighbour list, graph building and Python
overhead included, as an ASE calculator call would), for ethanol (9 atoms), aspirin
(21 atoms) and 108-atom fcc Cu. Usage:

    python benchmarks/inference.py [--model model.pt] [--repeats 20] [--threads 2] [--compile]

``--compile`` adds a column: energy+forces with :func:`mlip.derivatives.compile_model`
(what ``MLIPCalculator(..., compile=True)`` does), compilation excluded from the timing.

MACE in the same run: with ``--mace-python PATH`` (the interpreter of a mace-torch
environment, see ``mace_baseline.py``) MACE's ASE calculator is timed the same way,
float64, same threads and repeats, on the structures whose elements it knows, with
``--mace-model FILE`` or else a model of the accuracy benchmark's MACE settings trained
for one epoch here (the cost of a call does not depend on the weights):

    python benchmarks/inference.py --threads 2 --mace-python /path/mace-venv/bin/python

Without it the MACE columns hold the figures given in the project's issue, marked
"quoted": MACE's ASE calculator (93k parameters, float64) on the 2-core development
machine, 125 / 148 ms per energy+forces call for ethanol / aspirin, 1.8 / 8.5 s per
Hessian.
"""

from __future__ import annotations

import argparse
import os

import torch
from ase.build import bulk
from mace_side import time_calls  # the same timer as MACE's side: stdlib only
from md_common import model_for

from mlip import derivatives
from mlip.data.graph import atoms_to_batch
from mlip.model import MLIPModel, ModelConfig, load_model

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
SHIPPED = os.path.join(os.path.dirname(__file__), "..", "datasets", "ethanol_small.h5")
#: MACE's ms per E+F call and per Hessian given in the issue (not measured here)
QUOTED_MACE_MS = {"ethanol": (125.0, 1800.0), "aspirin": (148.0, 8500.0)}


def molecule_from_h5(path: str, group: str):
    from mlip.data.hdf5 import H5Dataset

    return H5Dataset(path, groups=[group])[0].to_atoms()


def systems(data_dir: str) -> dict:
    out = {}
    for name in ("ethanol", "aspirin"):
        path = os.path.join(data_dir, f"{name}_xtb.h5")
        if os.path.exists(path):
            out[name] = molecule_from_h5(path, f"{name}_minimum")
    out["Cu108"] = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="trained model file; default: untrained default config")
    parser.add_argument(
        "--data-dir", default=DATA, help="folder with ethanol_xtb.h5, aspirin_xtb.h5"
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time a compiled model")
    parser.add_argument(
        "--mace-python", default=None, help="python of a mace-torch environment: time MACE too"
    )
    parser.add_argument("--mace-model", default=None, help="MACE model file to time")
    parser.add_argument("--out", default="runs/inference", help="folder for MACE's files")
    parser.add_argument(
        "--systems", nargs="+", default=None, help="ethanol, aspirin, Cu108 (default: all)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    structures = systems(args.data_dir)
    if args.systems:
        structures = {name: structures[name] for name in args.systems if name in structures}
    mace_ms, mace_note = quoted_mace(), "MACE: quoted (not measured in this run)"
    if args.mace_python:
        mace_ms, mace_note = measure_mace(args, structures)
    if args.model:
        model = load_model(args.model, dtype=torch.float64)
    else:
        model = MLIPModel(ModelConfig(atomic_numbers=[1, 6, 8, 29])).double().eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.model or 'untrained default config'}, {n_params} parameters, float64, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    how = "measured" if args.mace_python else "quoted"
    header = (
        f"{'system':>8} {'atoms':>5} {'E+F ms':>8} {'Hessian ms':>11} "
        f"{'MACE E+F':>9} {'MACE H':>8} ({how})"
    )
    header += f" {'compiled E+F ms':>16}" if args.compile else ""
    print(header)
    for name, atoms in structures.items():
        model_here, note = model_for(model, atoms)

        def energy_forces(atoms=atoms, model=model_here):
            return derivatives.compute(model, atoms_to_batch(atoms, model.r_max), forces=True)

        def hessian(atoms=atoms, model=model_here):
            return derivatives.compute(model, atoms_to_batch(atoms, model.r_max), hessian=True)

        ef = time_calls(energy_forces, args.repeats)
        # Large Hessians take seconds to minutes: timed once, after the E+F warm-up.
        large = len(atoms) > 50
        hess = time_calls(hessian, 1 if large else max(1, args.repeats // 5), warm_up=not large)
        mace = mace_ms.get(name)
        mace_txt = f"{mace[0]:>9.1f} {mace[1]:>8.0f}" if mace else f"{'-':>9} {'-':>8}"
        compiled_txt = ""
        if args.compile:
            compiled = derivatives.compile_model(model_here)
            energy_forces(model=compiled)  # compiles; the timing below warms up once more
            ms = time_calls(lambda compiled=compiled: energy_forces(model=compiled), args.repeats)
            compiled_txt = f" {ms:>16.2f}"
        print(f"{name:>8} {len(atoms):>5} {ef:>8.2f} {hess:>11.1f} {mace_txt} {'':>{len(how) + 2}}"
              f"{compiled_txt}{note}")  # fmt: skip
    print(mace_note)


def quoted_mace() -> dict[str, tuple[float, float]]:
    return dict(QUOTED_MACE_MS)


def measure_mace(args: argparse.Namespace, structures: dict) -> tuple[dict, str]:
    """MACE's (E+F ms, Hessian ms) per structure, measured now, and a line saying how."""
    import mace_baseline

    versions = mace_baseline.versions(args.mace_python)
    model = args.mace_model or mace_baseline.timing_model(
        args.mace_python, SHIPPED, os.path.join(args.out, "mace_model"), args.threads
    )
    timed = mace_baseline.timings(
        args.mace_python, model, structures, args.out, args.repeats, args.threads
    )
    rows = {
        name: (row["energy_forces_ms"], row["hessian_ms"])
        for name, row in timed["rows"].items()
        if "skipped" not in row
    }
    note = (
        f"MACE: measured in this run (mace-torch {versions['mace']}, e3nn {versions['e3nn']}, "
        f"torch {versions['torch']}; {timed['parameters']} parameters, float64, "
        f"{timed['threads']} threads; model {model})"
    )
    return rows, note


if __name__ == "__main__":
    main()
