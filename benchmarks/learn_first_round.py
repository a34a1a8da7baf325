"""What round 0 of ``mlip learn`` should label: how far round 1's MD gets, per molecule.

Units: K, fs, ps, Angstrom, eV/A; errors meV/A.

For each molecule of ``benchmarks/learn_molecules.py`` (``--data-dir``; ``ethanol``
reads ``../shared/data/ethanol_xtb.h5``) and each round-0 variant (``--variants``:
RATTLES:STD[:MAX_STD], e.g. ``20:0.05`` is 20 labelled copies of the minimum, the
minimum itself and 19 Gaussian rattles of 0.05 A; ``40:0.02:0.15`` 39 rattles whose
std grows evenly from 0.02 to 0.15 A), this runs round 0 of ``mlip learn`` with its
defaults otherwise (GFN2-xTB labels, the round's committee training) and then round 1's
exploration (:func:`mlip.learn.explore.explore`, 500 K, the default replicas, steps and
stop threshold), and reports per molecule and variant: the round-0 committee's force MAE
on ``--valid-frames`` frames of the molecule's 500 K reference MD (not its test
trajectory), its mean largest force std in round 1's MD, the MD time reached (mean,
median, least) and the share of replicas that reach ``--reach`` ps.

    python benchmarks/learn_first_round.py --out DIR --molecules acetone toluene \\
        --variants 20:0.05 40:0.02:0.15
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
SPEC = "tblite:GFN2-xTB"


def parse_variant(text: str) -> dict:
    parts = text.split(":")
    out = {"rattles": int(parts[0]), "rattle_std": float(parts[1])}
    if len(parts) > 2:
        out["rattle_max_std"] = float(parts[2])
    return out


def first_round(name: str, variant: str, args: argparse.Namespace) -> dict:
    from common import molecule_reference

    from mlip.data.hdf5 import H5Dataset
    from mlip.learn import LearnConfig, Learner
    from mlip.learn.explore import explore
    from mlip.train.calibration import committee_calibration

    path, group = molecule_reference(name, SHARED, args.data_dir)
    out = os.path.join(args.out, name, variant.replace(":", "_"))
    summary_path = os.path.join(out, "first_round.json")
    if os.path.exists(summary_path):
        with open(summary_path) as handle:
            return json.load(handle)
    settings = parse_variant(variant)
    config = LearnConfig(start=(f"{path}:{group}_minimum:0",), calculator=SPEC, out=out,
                         temperature=(args.temperature,), budget=settings["rattles"] + 40,
                         final_epochs=0, seed=args.seed, progress=False,
                         resume=os.path.exists(os.path.join(out, "state.json")),
                         **settings)  # fmt: skip
    learner = Learner(config)
    while learner.state["round"] == 0 and learner.state["phase"] != "done":
        phase = learner.state["phase"]
        {"select": learner._select, "label": learner._label, "train": learner._train}[phase](0)
    committee = learner._committee(0)
    found = explore(committee, learner.seeds, config, 1)
    reached = np.array(list(found.reached.values())) / 1000.0
    dataset = H5Dataset(path, [group])
    frames = np.random.default_rng(123).permutation(len(dataset))[: args.valid_frames]
    errors = committee_calibration(committee, dataset.iterate(sorted(frames.tolist())), 32)
    dataset.close()
    row = {"molecule": name, "variant": variant, "valid_F_MAE": errors["forces_mae_mean"],
           "mean_std": found.row()["md_mean_std"], "mean_ps": float(reached.mean()),
           "median_ps": float(np.median(reached)), "min_ps": float(reached.min()),
           "share_reached": float(np.mean(reached >= args.reach - 1e-9)),
           "stopped": len(found.stopped), "systems": len(found.reached)}  # fmt: skip
    with open(summary_path, "w") as handle:
        json.dump(row, handle, indent=1)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir", default="/work/data/learn_molecules")
    p.add_argument("--molecules", nargs="+", required=True)
    p.add_argument("--variants", nargs="+", default=["20:0.05"], help="RATTLES:STD[:MAX_STD]")
    p.add_argument("--temperature", type=float, default=500.0, help="K")
    p.add_argument("--reach", type=float, default=0.25, help="ps")
    p.add_argument("--valid-frames", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.molecules:
        for variant in args.variants:
            row = first_round(name, variant, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n| molecule | round 0 | valid F MAE (meV/A) | round 1 mean force std (eV/A) | "
          f"MD reached mean / median / least (ps) | replicas >= {args.reach:g} ps |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['molecule']} | {r['variant']} | {r['valid_F_MAE']:.1f} | "
              f"{r['mean_std']:.2f} | "
              f"{r['mean_ps']:.2f} / {r['median_ps']:.2f} / {r['min_ps']:.2f} | "
              f"{r['share_reached'] * 100:.0f} % |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
