"""Accuracy per CPU-minute of the command a user types: ``mlip train`` with the defaults.

Protocol (rMD17-style): 1000 training conformers drawn at random (seed 0), 100 for
validation, the test set is the rest (``--train-size``, ``--valid-size``, ``--test-size``
change it, for smoke runs); energies and forces (and stress for Cu); stop at
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

MACE in the same invocation (ethanol, aspirin): with ``--mace-python PATH`` (the
interpreter of a virtual environment with mace-torch, see ``mace_baseline.py``) the
same train/valid/test split is written as extended XYZ, ``mace_run_train`` trains with
MACE's small-molecule settings for the same wall-clock budget after mlip has finished
(one run at a time, the same thread count), and its model is evaluated on the same test
frames (energy, forces, and the frequencies of its Hessian at the same minimum):

    python benchmarks/accuracy.py --system ethanol --minutes 20 \
        --mace-python /path/mace-venv/bin/python

Without it the MACE column holds the figure given in the project's issue for ethanol,
marked "quoted" (mace-torch 0.3.16 with the same settings, 20 epochs, 21.6 min on the
same 1000 conformers). Prints a table and writes OUT/accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from common import (
    DATA,
    SOFT_MODE_CUTOFF,
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
#: MACE's figures given in the issue that asked for this benchmark (not measured here):
#: mace-torch 0.3.16, the settings of mace_baseline.MACE_SETTINGS, 20 epochs (21.6 min)
QUOTED_MACE = {"ethanol": {"energy_mae": 7.5, "forces_mae": 13.5}}  # meV/atom, meV/A
MACE_SYSTEMS = ("ethanol", "aspirin")  # Cu would need MACE's stress loss: not set up


def quoted_protocol(args: argparse.Namespace) -> bool:
    """Whether this run is the protocol of :data:`QUOTED_MACE` (1000 training conformers,
    100 for validation, 20 minutes): a quote of another protocol would mislead."""
    sizes = (args.train_size, args.valid_size, args.minutes)
    # a split size passed after `--` overrides ours (`--train-size 150` as in 10846f0's
    # script); other options there (`--batch-size`) leave the protocol as it is
    split_options = ("--train-size", "--valid-size", "--test-size")
    overridden = any(a.split("=")[0] in split_options for a in args.extra)
    return sizes == (1000, 100, 20.0) and not overridden


def train_command(args: argparse.Namespace, out: str) -> list[str]:
    """The ``mlip train`` arguments of this run (as a user would type them)."""
    filename, groups, _ = SYSTEMS[args.system]
    argv = ["train"] + ([args.config] if args.config else [])
    argv += ["--data", os.path.join(args.data_dir, filename)]
    if groups:
        argv += ["--group", *groups]
    argv += ["--train-size", str(args.train_size), "--valid-size", str(args.valid_size)]
    if args.test_size is not None:
        argv += ["--test-size", str(args.test_size)]
    argv += ["--max-time", str(args.minutes * 60)]
    argv += ["--out", out, "--no-progress", *args.extra]
    return argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=list(SYSTEMS), default="ethanol")
    parser.add_argument("--molecule", dest="system", choices=list(SYSTEMS), help="alias")
    parser.add_argument("--data-dir", default=DATA)
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget")
    parser.add_argument("--train-size", type=int, default=1000, help="training conformers")
    parser.add_argument("--valid-size", type=int, default=100, help="validation conformers")
    parser.add_argument(
        "--test-size", type=int, default=None, help="test conformers (default: the rest)"
    )
    parser.add_argument("--config", default=None, help="YAML config (default: none, defaults)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=None, help="run directory (default runs/accuracy_*)")
    parser.add_argument(
        "--mace-python",
        default=None,
        help="python of a mace-torch environment: train and test MACE in this run too",
    )
    parser.add_argument("extra", nargs="*", help="further mlip train options (after --)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.mace_python and args.system not in MACE_SYSTEMS:
        parser.error(f"--mace-python: MACE is set up for {', '.join(MACE_SYSTEMS)} only")
    if args.mace_python:
        import mace_baseline

        print(f"MACE environment: {mace_baseline.versions(args.mace_python)}", flush=True)
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
    if args.mace_python:
        row["mace"] = run_mace(args, out, minimum)
    elif args.system in QUOTED_MACE and quoted_protocol(args):
        row["mace"] = {**QUOTED_MACE[args.system], "quoted": True}
    with open(os.path.join(out, "accuracy.json"), "w") as handle:
        json.dump(row, handle, indent=1)
    print()
    print(format_row(row))


def run_mace(args: argparse.Namespace, out: str, minimum: str | None) -> dict:
    """MACE on the split of the mlip run in ``out``, for the same budget and threads:
    test errors (meV/atom, meV/A) and frequency errors at the reference minimum."""
    import mace_baseline

    from mlip.data.hdf5 import H5Dataset
    from mlip.vib import harmonic_analysis

    workdir = os.path.join(out, "mace")
    files = mace_baseline.write_split(out, workdir)
    trained = mace_baseline.train(
        args.mace_python, files, workdir, args.minutes, threads=args.threads
    )
    result = {
        **trained,
        **mace_baseline.evaluate(args.mace_python, trained["model"], files["test"], workdir),
        **mace_baseline.versions(args.mace_python),
        "quoted": False,
    }
    if minimum:
        data = os.path.join(args.data_dir, SYSTEMS[args.system][0])
        dataset = H5Dataset(data, [minimum])
        structure = dataset[0]
        dataset.close()
        hessian = mace_baseline.hessian(args.mace_python, trained["model"], structure, workdir)
        masses = structure.to_atoms().get_masses()
        predicted = harmonic_analysis(hessian, masses, structure.positions)
        comparison = predicted.compare(
            harmonic_analysis(structure.hessian, masses, structure.positions)
        )
        result.update(
            freq_mae=comparison.mae,
            freq_mae_soft=comparison.mae_below(SOFT_MODE_CUTOFF),
            freq_max_error=comparison.max_error,
        )
    return result


def mace_cell(row: dict, key: str, digits: int = 2) -> str:
    """MACE's figure for ``key``: measured in this run, or quoted (not measured)."""
    mace = row.get("mace") or {}
    if key not in mace:
        return ""
    return f"{mace[key]:.{digits}f}" + (" (quoted)" if mace.get("quoted") else "")


def format_row(row: dict) -> str:
    """The result as a small markdown table (meV/atom, meV/A, cm^-1, GPa, A)."""
    lines = [
        f"{row['system']}, {row['recipe']}, {row['minutes']:.1f} min in all",
        "| quantity | mlip | MACE | reference |",
        "| --- | ---: | ---: | ---: |",
        f"| test E MAE (meV/atom) | {row['energy_mae']:.3f} | {mace_cell(row, 'energy_mae')} | |",
        f"| test F MAE (meV/A) | {row['forces_mae']:.2f} | {mace_cell(row, 'forces_mae')} | |",
    ]
    if "freq_mae" in row:
        lines += [
            f"| frequency MAE at the minimum (cm^-1) | {row['freq_mae']:.2f} | "
            f"{mace_cell(row, 'freq_mae')} | |",
            f"| ... modes below 1000 cm^-1 | {row['freq_mae_soft']:.2f} | "
            f"{mace_cell(row, 'freq_mae_soft')} | |",
            f"| largest frequency error (cm^-1) | {row['freq_max_error']:.2f} | "
            f"{mace_cell(row, 'freq_max_error')} | |",
        ]
    mace = row.get("mace") or {}
    if mace and not mace.get("quoted"):
        lines.append(
            f"| epochs (MACE: best at) / training minutes | | {mace['epochs']} "
            f"({mace['best_epoch']}) / {mace['train_minutes']:.1f} | |"
        )
    if "pressure_bias" in row:
        lines += [
            f"| test stress MAE (meV/A^3) | {row['stress_mae']:.3f} | | |",
            f"| test pressure MAE / bias (GPa) | {row['pressure_mae']:.3f} / "
            f"{row['pressure_bias']:+.3f} | | |",
            f"| 108-atom cells: F MAE (meV/A) | {row['cu108_forces_mae']:.2f} | | |",
            f"| 108-atom cells: pressure MAE / bias (GPa) | {row['cu108_pressure_mae']:.3f} / "
            f"{row['cu108_pressure_bias']:+.3f} | | |",
            f"| lattice constant (A) | {row['model_lattice_constant']:.4f} | | "
            f"{row['emt_lattice_constant']:.4f} (EMT) |",
            f"| bulk modulus (GPa) | {row['model_bulk_modulus']:.1f} | | "
            f"{row['emt_bulk_modulus']:.1f} (EMT) |",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
