"""How ``mlip learn`` should train its final committee: recipes on random 500 K frames.

Units: s (budgets, wall time); errors meV/A (forces) and meV/atom (energies).

The final training is the run's product: a committee trained once more from scratch on
the loop's few hundred labels. Its recipe is chosen here on labels of the same kind and
number, drawn at random from each molecule's 500 K GFN2-xTB reference MD
(``benchmarks/active_learning.random_md_data``, the benchmark's own random baseline),
and judged on ``--valid-frames`` other frames of that MD (validation, not the test
trajectories of ``active_learning.py``). Each recipe (``--recipes``, :data:`RECIPES`)
trains ``--members`` member(s) from scratch with the same seed; the table gives its
wall time, the width it trained and its validation force and energy MAE.

    python benchmarks/learn_final_training.py --out DIR --molecules ethanol aspirin --threads 2

Molecules: ``ethanol`` and ``aspirin`` from ``../shared/data`` (``--data-dir``), others
from ``benchmarks/learn_molecules.py``'s files (``--molecule-dir``). Run it alone: the
time-budgeted recipes train for as long as the budget, so other jobs on the machine take
their steps away.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import torch

from mlip.learn.config import ROUND_TRAINING

HERE = os.path.dirname(os.path.abspath(__file__))

#: recipe -> training keys over mlip train's defaults; "rounds-100ep" is a loop round's
#: model (ROUND_TRAINING) for 100 epochs, the final training before the change
RECIPES: dict[str, dict] = {
    "rounds-100ep": {**ROUND_TRAINING, "train.max_epochs": 100},
    "default-150s": {"train.max_time": 150.0},
    "default-300s": {"train.max_time": 300.0},
    "default-300s-batch4": {"train.max_time": 300.0, "data.batch_size": 4},
}


def run_recipe(name: str, recipe: str, args: argparse.Namespace) -> dict:
    from active_learning import random_md_data, test_errors, train_from_scratch
    from common import molecule_reference

    path, group = molecule_reference(name, args.data_dir, args.molecule_dir)
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, f"random_{args.labels}_s{args.seed}.h5")
    valid = os.path.join(folder, f"valid_s{args.seed}.h5")
    if not os.path.exists(data):
        random_md_data(data, valid, path, args.labels, args.seed, args.valid_frames, group=group)
    out = os.path.join(folder, recipe)
    start = time.perf_counter()
    model = train_from_scratch(data, out, RECIPES[recipe], args.members, args.seed)
    wall = time.perf_counter() - start
    errors = test_errors(model, valid)
    width = getattr(model, "members", [model])[0].config.num_channels  # the width trained
    return {"molecule": name, "recipe": recipe, "wall_s": wall, "channels": width,
            "valid_forces_mae": errors["forces_mae_mean"],
            "valid_energy_mae": errors["energy_per_atom_mae_mean"]}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/learn_final")
    p.add_argument("--molecules", nargs="+", default=["ethanol", "aspirin"])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--labels", type=int, default=300, help="random frames trained on")
    p.add_argument("--valid-frames", type=int, default=200)
    p.add_argument("--members", type=int, default=1, help="committee members a recipe")
    p.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data"))
    p.add_argument("--molecule-dir", default="/work/data/learn_molecules")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, HERE)
    rows = [run_recipe(m, r, args) for m in args.molecules for r in args.recipes]
    print(f"\n{args.labels} random 500 K frames, {args.members} member(s), seed {args.seed}, "
          f"{args.threads} threads; validation: {args.valid_frames} other frames\n")  # fmt: skip
    print(
        "| molecule | recipe | channels | wall (s) | valid F MAE (meV/A) | valid E MAE (meV/atom) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['molecule']} | {r['recipe']} | {r['channels']} | {r['wall_s']:.0f} | "
              f"{r['valid_forces_mae']:.1f} | {r['valid_energy_mae']:.2f} |")  # fmt: skip
    with open(os.path.join(args.out, "learn_final_training.json"), "w") as handle:
        json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
