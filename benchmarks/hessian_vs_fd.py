"""Analytic Hessian (MLIPCalculator.get_hessian) vs ASE finite differences (Vibrations).

For ethanol and aspirin at their xTB minima (``*_minimum`` groups of
../shared/data/*_xtb.h5), float64 on the CPU, prints the wall time of the exact
autograd Hessian (best of two) and of ``ase.vibrations.Vibrations`` (central differences of the
forces, 6N + 1 force calls for nfree=2) with the same calculator, and the largest
absolute difference of the two Hessians (eV/A^2).

    python benchmarks/hessian_vs_fd.py [--model PATH] [--delta 1e-3] [--nfree 2]

Without --model an untrained ``mlip.model.MLIPModel`` with the default config is
used (or, if mlip/model.py is not there, the Lennard-Jones reference potential).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from ase.vibrations import Vibrations

from mlip.calculator import MLIPCalculator
from mlip.vib import read_structure

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
SYSTEMS = {
    "ethanol": f"{DATA}/ethanol_xtb.h5:ethanol_minimum",
    "aspirin": f"{DATA}/aspirin_xtb.h5:aspirin_minimum",
}


def build_model(path: str | None) -> tuple[torch.nn.Module | str, str]:
    """(model or path, description)."""
    if path is not None:
        return path, f"model file {path}"
    from mlip.model import MLIPModel, ModelConfig

    torch.manual_seed(0)
    model = MLIPModel(ModelConfig()).to(torch.float64)
    n_params = sum(p.numel() for p in model.parameters())
    return model, f"untrained MLIPModel, default config ({n_params} parameters)"


def time_system(calc: MLIPCalculator, spec: str, delta: float, nfree: int) -> dict:
    atoms, _ = read_structure(spec)
    atoms.calc = calc
    atoms.get_potential_energy()  # warm-up (graph, neighbour list code paths)
    t_analytic = float("inf")
    for _ in range(2):  # best of two; the cache is cleared so each call recomputes
        calc.reset()
        start = time.perf_counter()
        analytic = calc.get_hessian(atoms)
        t_analytic = min(t_analytic, time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        vib = Vibrations(atoms, delta=delta, nfree=nfree, name=os.path.join(tmp, "vib"))
        start = time.perf_counter()
        vib.run()
        numeric = vib.get_vibrations().get_hessian_2d()
        t_fd = time.perf_counter() - start
    return {
        "atoms": len(atoms),
        "analytic_s": t_analytic,
        "fd_s": t_fd,
        "force_calls": nfree * 3 * len(atoms) + 1,
        "max_abs_diff": float(np.abs(analytic - numeric).max()),
        "max_abs_h": float(np.abs(analytic).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: untrained MLIPModel)")
    parser.add_argument("--delta", type=float, default=1e-3, help="FD step, Angstrom")
    parser.add_argument("--nfree", type=int, default=2, choices=[2, 4])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, description = build_model(args.model)
    calc = MLIPCalculator(model, device="cpu", dtype="float64")
    print(f"model: {description}; float64, CPU, {torch.get_num_threads()} threads")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (other processes slow both timings)")
    print(f"finite differences: ase Vibrations, delta {args.delta} A, nfree {args.nfree}")
    header = (
        f"{'system':<9} {'atoms':>5} {'analytic / s':>12} {'FD / s':>8} {'calls':>5} "
        f"{'speed-up':>8} {'max|dH| eV/A^2':>15} {'max|H|':>8}"
    )
    print(header)
    for name, spec in SYSTEMS.items():
        r = time_system(calc, spec, args.delta, args.nfree)
        print(
            f"{name:<9} {r['atoms']:>5} {r['analytic_s']:>12.3f} {r['fd_s']:>8.2f} "
            f"{r['force_calls']:>5} {r['fd_s'] / r['analytic_s']:>8.1f} "
            f"{r['max_abs_diff']:>15.2e} {r['max_abs_h']:>8.2f}"
        )


if __name__ == "__main__":
    main()
