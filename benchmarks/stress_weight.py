"""The weight of the stress term on periodic data: ``mlip train`` at several
``--stress-weight`` values for the same number of epochs, one table.

    python benchmarks/stress_weight.py --data ../shared/data/cu_emt.h5 --out runs/sw_cu
    python benchmarks/stress_weight.py --data /work/data/materials/cuau_emt.h5 --out runs/sw_cuau

Each weight trains ``mlip train --data DATA --train-size 1000 --valid-size 100
--max-epochs EPOCHS --num-channels C --stress-weight W`` in ``OUT/sW`` (an epoch budget,
not a time budget, so that runs sharing a machine compare alike; the cost of a step does
not depend on the weight: the stress is computed whenever the data carry it), and the
table gives the validation errors of each: energy per atom, forces, stress, pressure
MAE and mean bias. A finished run is reused. On Cu data with ``--cells`` the ten
108-atom cells of :func:`common.cu_test_cells` (issue 23's larger, hotter cells) are
evaluated as well.

Units: meV/atom, meV/A, meV/A^3, GPa.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(data: str, out: str, weight: float, args: argparse.Namespace) -> dict:
    """Train (or reuse) the run of one weight; its eval.json."""
    run = os.path.join(out, f"s{weight:g}")
    if not os.path.exists(os.path.join(run, "eval.json")):
        from mlip.cli import main as mlip

        command = ["train", "--data", data, "--train-size", str(args.train_size),
                   "--valid-size", str(args.valid_size), "--max-epochs", str(args.epochs),
                   "--num-channels", str(args.num_channels), "--stress-weight", f"{weight:g}",
                   "--seed", str(args.seed), "--out", run, "--no-progress"]  # fmt: skip
        if os.path.exists(os.path.join(run, "last.ckpt")):
            command.append("--resume")
        if mlip(command) != 0:
            raise SystemExit(f"mlip train failed for stress weight {weight:g}")
    with open(os.path.join(run, "eval.json")) as handle:
        return json.load(handle)["splits"]["valid"] | {"run": run}


def main(argv: Sequence[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="periodic mlip HDF5 data with stress")
    p.add_argument("--out", required=True, help="folder of the runs")
    p.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.1, 0.01])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--num-channels", type=int, default=32)
    p.add_argument("--train-size", type=int, default=1000)
    p.add_argument("--valid-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cells", action="store_true", help="Cu: issue 23's 108-atom cells too")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    rows = [train(args.data, args.out, w, args) | {"weight": w} for w in args.weights]
    if args.cells:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        from common import cu_cell_errors, cu_test_cells, training_max_force

        from mlip.calculator import MLIPCalculator
        from mlip.model import load_model

        cells, largest = cu_test_cells(), training_max_force(args.data)
        for row in rows:
            model = MLIPCalculator(
                load_model(os.path.join(row["run"], "model.pt")), dtype="float64"
            )
            row["cells"] = cu_cell_errors(model, cells, largest)
    print(f"\n{args.data}: {args.epochs} epochs, {args.num_channels} channels, validation "
          f"({args.valid_size} cells)\n")  # fmt: skip
    head = (
        "| stress weight | E (meV/atom) | F (meV/A) | stress (meV/A^3) | P MAE (GPa) "
        "| P bias (GPa) |"
    )
    rule = "| ---: | ---: | ---: | ---: | ---: | ---: |"
    if args.cells:
        head += " 108-atom cells F: all / within / beyond (meV/A) | cells P bias (GPa) |"
        rule += " ---: | ---: |"
    print(head + "\n" + rule)
    for r in rows:
        line = (f"| {r['weight']:g} | {r['energy_per_atom_mae']:.3f} | {r['forces_mae']:.2f} "
                f"| {r['stress_mae']:.3f} | {r['pressure_mae']:.3f} "
                f"| {r['pressure_bias']:+.3f} |")  # fmt: skip
        if args.cells:
            c = r["cells"]
            line += (f" {c['forces_mae']:.1f} / {c['forces_mae_within']:.1f} / "
                     f"{c['forces_mae_beyond']:.1f} | {c['pressure_bias']:+.3f} |")  # fmt: skip
        print(line)
    return rows


if __name__ == "__main__":
    main()
