"""Accuracy per CPU-minute of the command a user types: ``mlip train`` with the defaults.

Protocol (rMD17-style): 1000 training conformers drawn at random (seed 0), 100 for
validation, the test set is the rest; energies and forces (and stress for Cu); stop at
the wall-clock budget and evaluate the best (EMA) model in float64. The training runs
``mlip train --data FILE [--group G] --train-size 1000 --valid-size 100 --max-time T``
exactly as typed (no config file), or with ``--config FILE`` (e.g. configs/accuracy.yaml,
the previous release's accurate settings) for the comparison.

* ``ethanol``, ``aspirin`` (GFN2-xTB): test energy (meV/atom) and force (meV/A) MAE,
  and the harmonic frequencies at the reference minimum (MAE over all modes and over
  the modes below 1000 cm^-1, cm^-1).
* ``cu`` (EMT, both groups of cu_emt.h5, 32- and 31-atom cells with stress): test
  errors including the pressure MAE and mean bias (GPa), forces and pressure on ten
  108-atom cells labelled by EMT here, and the lattice constant and bulk modulus of
  fcc Cu from an equation-of-state fit, next to EMT's own (``ase.calculators.emt``).

    python benchmarks/accuracy.py --system ethanol --minutes 20
    python benchmarks/accuracy.py --system ethanol --minutes 20 --config configs/accuracy.yaml
    python benchmarks/accuracy.py --system cu --minutes 15

Prints a table and writes OUT/accuracy.json. MACE figures are quoted (mace-torch is not
installed here): 0.3.16 on the same 1000 ethanol conformers, 20 CPU-minutes, test F MAE
13.5 meV/A.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from common import (
    DATA,
    cu_cell_errors,
    cu_equation_of_state,
    cu_test_cells,
    frequency_errors,
)

SYSTEMS = {
    "ethanol": ("ethanol_xtb.h5", ["ethanol"], "ethanol_minimum"),
    "aspirin": ("aspirin_xtb.h5", ["aspirin"], "aspirin_minimum"),
    "cu": ("cu_emt.h5", None, None),
}
MACE = {"ethanol": {"forces_mae": 13.5}}  # meV/A, quoted from the issue


def train_command(args: argparse.Namespace, out: str) -> list[str]:
    """The ``mlip train`` arguments of this run (as a user would type them)."""
    filename, groups, _ = SYSTEMS[args.system]
    argv = ["train"] + ([args.config] if args.config else [])
    argv += ["--data", os.path.join(args.data_dir, filename)]
    if groups:
        argv += ["--group", *groups]
    argv += ["--train-size", "1000", "--valid-size", "100", "--max-time", str(args.minutes * 60)]
    argv += ["--out", out, "--no-progress", *args.extra]
    return argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=list(SYSTEMS), default="ethanol")
    parser.add_argument("--molecule", dest="system", choices=list(SYSTEMS), help="alias")
    parser.add_argument("--data-dir", default=DATA)
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget")
    parser.add_argument("--config", default=None, help="YAML config (default: none, defaults)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=None, help="run directory (default runs/accuracy_*)")
    parser.add_argument("extra", nargs="*", help="further mlip train options (after --)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from mlip.calculator import MLIPCalculator
    from mlip.cli import main as mlip_main
    from mlip.model import load_model

    label = os.path.splitext(os.path.basename(args.config))[0] if args.config else "defaults"
    out = args.out or f"runs/accuracy_{args.system}_{label}_{time.strftime('%H%M%S')}"
    argv = train_command(args, out)
    print("mlip " + " ".join(argv), flush=True)
    start = time.perf_counter()
    if mlip_main(argv) != 0:
        raise SystemExit("training failed")
    wall = time.perf_counter() - start
    with open(os.path.join(out, "eval.json")) as handle:
        test = json.load(handle)["splits"]["test"]
    model = load_model(os.path.join(out, "model.pt"))
    row = {
        "system": args.system,
        "recipe": label,
        "minutes": wall / 60,
        "energy_mae": test["energy_per_atom_mae"],
        "forces_mae": test["forces_mae"],
    }
    _, _, minimum = SYSTEMS[args.system]
    if minimum:
        data = os.path.join(args.data_dir, SYSTEMS[args.system][0])
        row.update(frequency_errors(model, data, minimum))
    else:
        from ase.calculators.emt import EMT

        row["pressure_mae"] = test["pressure_mae"]
        row["pressure_bias"] = test["pressure_bias"]
        row["stress_mae"] = test["stress_mae"]
        calculator = MLIPCalculator(model, dtype="float64")
        cells = cu_test_cells()
        row.update({f"cu108_{k}": v for k, v in cu_cell_errors(calculator, cells).items()})
        row.update({f"model_{k}": v for k, v in cu_equation_of_state(calculator).items()})
        row.update({f"emt_{k}": v for k, v in cu_equation_of_state(EMT()).items()})
    with open(os.path.join(out, "accuracy.json"), "w") as handle:
        json.dump(row, handle, indent=1)
    print()
    print(format_row(row))


def format_row(row: dict) -> str:
    """The result as a small markdown table (meV/atom, meV/A, cm^-1, GPa, A)."""
    lines = [
        f"{row['system']}, {row['recipe']}, {row['minutes']:.1f} min in all",
        "| quantity | mlip | reference |",
        "| --- | ---: | ---: |",
        f"| test E MAE (meV/atom) | {row['energy_mae']:.3f} | |",
        f"| test F MAE (meV/A) | {row['forces_mae']:.2f} | "
        f"{MACE.get(row['system'], {}).get('forces_mae', '')} (MACE, quoted) |",
    ]
    if "freq_mae" in row:
        lines += [
            f"| frequency MAE at the minimum (cm^-1) | {row['freq_mae']:.2f} | |",
            f"| ... modes below 1000 cm^-1 | {row['freq_mae_soft']:.2f} | |",
            f"| largest frequency error (cm^-1) | {row['freq_max_error']:.2f} | |",
        ]
    if "pressure_bias" in row:
        lines += [
            f"| test stress MAE (meV/A^3) | {row['stress_mae']:.3f} | |",
            f"| test pressure MAE / bias (GPa) | {row['pressure_mae']:.3f} / "
            f"{row['pressure_bias']:+.3f} | |",
            f"| 108-atom cells: F MAE (meV/A) | {row['cu108_forces_mae']:.2f} | |",
            f"| 108-atom cells: pressure MAE / bias (GPa) | {row['cu108_pressure_mae']:.3f} / "
            f"{row['cu108_pressure_bias']:+.3f} | |",
            f"| lattice constant (A) | {row['model_lattice_constant']:.4f} | "
            f"{row['emt_lattice_constant']:.4f} (EMT) |",
            f"| bulk modulus (GPa) | {row['model_bulk_modulus']:.1f} | "
            f"{row['emt_bulk_modulus']:.1f} (EMT) |",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
