"""The MACE side of the benchmarks that measure MACE beside mlip: run by MACE's Python.

mace-torch pins e3nn 0.4.4 and mlip needs e3nn >= 0.5, so MACE lives in a virtual
environment of its own and the benchmarks (``accuracy.py``, ``inference.py``) call this
script with that environment's interpreter (``--mace-python PATH``). It imports only
MACE, ASE, numpy and torch, never mlip; the results go to a JSON file.

    PY benchmarks/mace_side.py versions
    PY benchmarks/mace_side.py time --model M.model --structures S.xyz --out T.json
    PY benchmarks/mace_side.py hessian --model M.model --structure MIN.xyz --out H.npy

``time``: milliseconds per energy+forces call and per full Hessian of each structure of
an extended XYZ file through MACE's ASE calculator, float64, from an ``ase.Atoms`` on
every call (neighbour list included, as in ``inference.py``); ``hessian``: the model's
Hessian (eV/A^2, (3N, 3N)) at one geometry. Units: eV, Angstrom, ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def versions() -> dict:
    """Versions of MACE and of what it runs on."""
    import ase
    import e3nn
    import mace
    import torch

    return {
        "mace": getattr(mace, "__version__", "unknown"),
        "e3nn": e3nn.__version__,
        "torch": torch.__version__,
        "ase": ase.__version__,
        "python": sys.version.split()[0],
    }


def calculator(model: str, threads: int):
    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(threads)
    return MACECalculator(model_paths=model, device="cpu", default_dtype="float64")


def parameter_count(calc) -> int:
    return int(sum(p.numel() for p in calc.models[0].parameters()))


def elements(calc) -> list[int]:
    return [int(z) for z in calc.z_table.zs]


def time_calls(fn, repeats: int, warm_up: bool = True) -> float:
    """Mean milliseconds of ``fn()`` over ``repeats`` calls (after one untimed call)."""
    if warm_up:
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def time_structures(model: str, structures: str, repeats: int, threads: int) -> dict:
    """E+F and Hessian milliseconds per structure (skipped: elements MACE lacks)."""
    import ase.io
    from ase.calculators.calculator import all_changes

    calc = calculator(model, threads)
    known = set(elements(calc))
    rows = {}
    for atoms in ase.io.read(structures, index=":"):
        name = atoms.info.get("name", atoms.get_chemical_formula())
        if not set(atoms.numbers.tolist()) <= known:
            rows[name] = {"skipped": "elements the MACE model lacks"}
            continue

        def energy_forces(atoms=atoms):
            calc.calculate(atoms, ["energy", "forces"], all_changes)

        def hessian(atoms=atoms):
            calc.get_hessian(atoms=atoms)

        large = len(atoms) > 50  # seconds to minutes a Hessian: timed once
        rows[name] = {
            "atoms": len(atoms),
            "energy_forces_ms": time_calls(energy_forces, repeats),
            "hessian_ms": time_calls(
                hessian, 1 if large else max(1, repeats // 5), warm_up=not large
            ),
        }
    return {
        "parameters": parameter_count(calc),
        "threads": threads,
        "rows": rows,
        **versions(),
    }


def hessian_at(model: str, structure: str, out: str, threads: int) -> None:
    import ase.io
    import numpy as np

    calc = calculator(model, threads)
    atoms = ase.io.read(structure)
    hessian = np.asarray(calc.get_hessian(atoms=atoms), dtype=np.float64)
    np.save(out, hessian.reshape(3 * len(atoms), 3 * len(atoms)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("versions", help="print the versions as JSON")
    timing = sub.add_parser("time", help="E+F and Hessian ms per structure")
    timing.add_argument("--model", required=True)
    timing.add_argument("--structures", required=True, help="extended XYZ, info 'name'")
    timing.add_argument("--repeats", type=int, default=20)
    timing.add_argument("--threads", type=int, default=2)
    timing.add_argument("--out", required=True, help="JSON file")
    hess = sub.add_parser("hessian", help="the model Hessian at one geometry (.npy)")
    hess.add_argument("--model", required=True)
    hess.add_argument("--structure", required=True)
    hess.add_argument("--threads", type=int, default=1)
    hess.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "versions":
        print(json.dumps(versions()))
    elif args.command == "time":
        result = time_structures(args.model, args.structures, args.repeats, args.threads)
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    else:
        hessian_at(args.model, args.structure, args.out, args.threads)


if __name__ == "__main__":
    main()
