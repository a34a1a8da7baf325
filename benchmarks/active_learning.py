"""Active learning against random MD data, molecule by molecule, GFN2-xTB (tblite).

Units: K, fs, ps, eV, Angstrom; errors meV/A (forces) and meV/atom (energies).

For each molecule of ``--molecules`` (``ethanol``: ``../shared/data/ethanol_xtb.h5``;
the others: ``NAME_xtb.h5`` of ``benchmarks/learn_molecules.py`` in ``--molecule-dir``),
in ``OUT/NAME/``:

1. ``mlip learn`` (:mod:`mlip.learn`) from the molecule's xTB minimum only, labeller
   ``tblite:GFN2-xTB``, committee MD at ``--temperature``, at most ``--budget`` labels,
   ``mlip learn``'s defaults otherwise.
2. Test set: an independent 500 K Langevin trajectory of the reference method itself
   (ethanol: ASE Langevin with tblite from the minimum, its own seed, ``--test-ps``
   after 1 ps of equilibration, a frame every 20 steps; the others: group ``NAME_test``
   of their file, the same protocol), labelled by the same method.
3. Baseline: as many labels as the loop used, drawn at random from the molecule's
   reference 500 K MD (group ``NAME``), trained as a committee from scratch with the
   loop's final training (``mlip learn --final-time``, ``--final-epochs``: mlip train's
   recipe under a time budget), which the loop ends with on its own labels, so data is compared with
   data, and the loop's last fine-tuned committee is reported beside it. Validation
   frames (on which recipes are chosen): ``--valid-frames`` others of that MD. With
   ``--hessian-fraction f`` the loop labels finite-difference Hessians on that fraction of
   each round, and a second random baseline carries as many Hessians (conformers of the
   reference MD that have one), so Hessians are compared with Hessians too.
4. Reports per molecule: the round table, test force/energy MAE of the committees, the
   Spearman correlation of the learned committee's force std with its true force error
   on the test set (:mod:`mlip.train.calibration`), and whether ``--stability-ps`` of
   500 K MD with the learned committee stays intact (``md_stability.run_stability``:
   bonds within 1.5x, no contact below 0.75 A, no explosion); then one table over the
   molecules: labels spent, rounds, how the loop ended, test F MAE learned against
   random and the stability.

    python benchmarks/learn_molecules.py --out /work/data/learn_molecules      # the data
    python benchmarks/active_learning.py --out runs/al --molecules ethanol acetone uracil
    python benchmarks/active_learning.py --out runs/al_short --short           # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the reference data's folder: shared/data beside the checkout (``--data-dir``)
DATA_DIR = os.path.join(os.path.dirname(ROOT), "shared", "data")
REFERENCE_FILE = "ethanol_xtb.h5"
#: the folder of benchmarks/learn_molecules.py's files (``--molecule-dir``)
MOLECULE_DIR = "/work/data/learn_molecules"
SPEC = "tblite:GFN2-xTB"
#: --short: a small version of the full run (same code path; 40 labels; its wall time
#: is on docs/benchmarks/active_learning.md)
SHORT = {"budget": 40, "per_round": 10, "rattles": 10, "md_steps": 400, "committee": 2,
         "num_channels": 8, "max_epochs": 100, "final_time": 30.0, "test_ps": 0.5,
         "stability_ps": 1.0, "stability_replicas": 4}  # fmt: skip


def reference_trajectory(path: str, ps: float, seed: int, minimum) -> None:  # noqa: ANN001
    """Ethanol's test set: 500 K Langevin MD of GFN2-xTB itself (module docstring)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from mlip.data.graph import Structure
    from mlip.data.writer import write_mlip_hdf5
    from mlip.labelling import make_labeller

    if os.path.exists(path):
        return
    atoms = minimum.copy()
    atoms.calc = make_labeller(SPEC).calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=500, friction=0.01 / units.fs, rng=rng)
    dyn.run(2000)  # 1 ps equilibration
    frames = []
    for _ in range(int(round(ps * 2000 / 20))):
        dyn.run(20)
        s = Structure.from_atoms(atoms.copy())  # not a view of positions MD moves on
        s.energy, s.forces = float(atoms.get_potential_energy()), atoms.get_forces().copy()
        frames.append(s)
    write_mlip_hdf5(path, {"ethanol_500K": frames}, f"{SPEC} (tblite), ASE Langevin 500 K")


def random_md_data(path: str, valid: str | None, reference: str, count: int, seed: int,
                   valid_count: int, hessian_fraction: float = 0.0,
                   group: str = "ethanol") -> None:  # fmt: skip
    """``count`` conformers drawn at random from the reference 500 K MD (``group`` of
    ``reference``), and
    ``valid_count`` others of it (the validation set on which recipes are chosen).

    E + F only when ``hessian_fraction`` is 0; otherwise ``ceil(hessian_fraction * count)``
    of the conformers are drawn from those of the reference MD that carry a Hessian (kept)
    and the rest from those without, as the loop labels Hessians on that fraction. The
    validation draw is the same either way; ``valid`` None: not written (it exists)."""
    from mlip.data.hdf5 import H5Dataset
    from mlip.data.writer import write_mlip_hdf5

    dataset = H5Dataset(reference, [group])
    order = np.random.default_rng(seed).permutation(len(dataset))
    part, valid_part = order[:count], order[count : count + valid_count]
    if hessian_fraction > 0:
        has = dataset.hessian_mask
        pool = order[~np.isin(order, valid_part)]
        with_h = min(int(has.sum()), math.ceil(hessian_fraction * count))
        part = np.concatenate([pool[has[pool]][:with_h], pool[~has[pool]][: count - with_h]])
    for out, indices, keep in ((path, part, hessian_fraction > 0), (valid, valid_part, False)):
        if out is None:
            continue
        structures = dataset.get_many(np.sort(indices).tolist())
        for s in structures:
            s.hessian = s.hessian if keep else None
        write_mlip_hdf5(out, {group: structures}, SPEC, overwrite=True)
    dataset.close()


def train_from_scratch(data: str, out: str, train: dict, committee: int, seed: int):  # noqa: ANN201
    """A committee trained from scratch on every conformer of ``data`` (10 % validation)."""
    from mlip.data.hdf5 import H5Dataset
    from mlip.model import load_model
    from mlip.train.committee import CommitteeConfig, train_committee
    from mlip.train.config import load_config

    dataset = H5Dataset(data)
    n, hessians = len(dataset), int(dataset.hessian_mask.sum())
    dataset.close()
    valid = max(1, round(0.1 * n))
    # with Hessian labels the trainer's own Hessian defaults, as in mlip learn
    base = {} if hessians else {"loss.hessian_weight": 0.0}
    config = load_config(None, {**base, **train, "data.paths": [data],
                                "data.train_size": n - valid, "data.valid_size": valid,
                                "data.test_size": 0, "train.out": out, "train.seed": seed,
                                "train.progress": False, "train.resume": True})  # fmt: skip
    if not os.path.exists(os.path.join(out, "model.pt")):
        train_committee(config, CommitteeConfig(committee))
    return load_model(os.path.join(out, "model.pt"))


def test_errors(model, test: str, group: str | None = None) -> dict:  # noqa: ANN001
    """The committee's errors and calibration on every frame of ``test`` (of ``group``)."""
    from mlip.data.hdf5 import H5Dataset
    from mlip.train.calibration import committee_calibration

    dataset = H5Dataset(test, None if group is None else [group])
    return committee_calibration(model, dataset.iterate(range(len(dataset))), 32)


def label_energies(learn_dir: str, valid: str, minimum_energy: float) -> list[dict]:
    """How far above the minimum the labels lie, round by round, beside the validation
    frames (the distribution the labels should follow): median, 95th percentile and
    largest of E - E_min (eV) of ``learn_dir/round_k/labels.h5``; the last row is the
    validation set. A selection that labels the hot tail shows here, not in a MAE."""
    from mlip.data.formats import read_mlip

    def row(name: str, energies: list[float]) -> dict:
        e = np.asarray(energies) - minimum_energy
        return {"labels": name, "n": int(e.size), "median_eV": float(np.median(e)),
                "p95_eV": float(np.percentile(e, 95)), "max_eV": float(e.max())}  # fmt: skip

    rows, r = [], 0
    while os.path.isdir(os.path.join(learn_dir, f"round_{r}")):
        path = os.path.join(learn_dir, f"round_{r}", "labels.h5")
        if os.path.exists(path):
            energies = [s.energy for g in read_mlip(path) for s in g.structures]
            if energies:
                rows.append(row(f"round {r}", energies))
        r += 1
    rows.append(row("validation", [s.energy for g in read_mlip(valid) for s in g.structures]))
    return rows


def _margin(value: str) -> float | None:
    """An energy margin option (eV): a number or ``none``."""
    return None if value.lower() == "none" else float(value)


def stability_run(model, minimum, args, slug: str, run_stability) -> dict:  # noqa: ANN001
    """``run_stability``'s summary at 500 K, saved to OUT/stability_SLUG.json and reused by
    a rerun with the same settings (a stopped benchmark resumes without redoing it)."""
    path = os.path.join(args.molecule_out, f"stability_{slug}.json")
    settings = {"replicas": args.stability_replicas, "ps": args.stability_ps, "seed": args.seed}
    if os.path.exists(path):
        with open(path) as handle:
            saved = json.load(handle)
        if saved["settings"] == settings:
            return saved["summary"]

    def report(line: str) -> None:  # one line per simulated ps: a long run shows progress
        print(f"{slug} stability: {line}", flush=True)

    run = run_stability(model.eval(), minimum, args.stability_replicas, 500.0,
                        ps=args.stability_ps, seed=args.seed, report=report)  # fmt: skip
    with open(path + ".tmp", "w") as handle:
        json.dump({"settings": settings, "summary": run.summary()}, handle, indent=1)
    os.replace(path + ".tmp", path)
    return run.summary()


def molecule_data(name: str, args: argparse.Namespace) -> dict:
    """Where a molecule's reference data lie: the file, its MD group (random frames and
    validation), the minimum's spec and the test set ((file, group); ethanol: made)."""
    from common import molecule_reference

    path, _ = molecule_reference(name, args.data_dir, args.molecule_dir)
    if name == "ethanol":
        test = (os.path.join(args.out, name, "test_500K.h5"), None)
    else:
        test = (path, f"{name}_test")
    return {"reference": path, "group": name, "minimum": f"{path}:{name}_minimum:0",
            "test": test}  # fmt: skip


def run_molecule(name: str, args: argparse.Namespace) -> dict:
    """Steps 1-4 of the module docstring for one molecule, in ``OUT/NAME``."""
    from md_stability import run_stability

    from mlip.data.spec import parse_structure_spec, read_conformer, read_frames
    from mlip.learn import LearnConfig, Learner
    from mlip.learn.config import ROUND_TRAINING
    from mlip.learn.report import format_table
    from mlip.model import load_model

    data = molecule_data(name, args)
    out = args.molecule_out = os.path.join(args.out, name)
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    minimum = read_frames(data["minimum"])[0].to_atoms()
    # a round's training: only what differs from the loop's own (the final training
    # keeps these keys, so a round default passed on would change it)
    chosen = {"model.num_channels": args.num_channels, "train.max_epochs": args.max_epochs,
              "data.batch_size": args.batch_size}  # fmt: skip
    train = {k: v for k, v in chosen.items() if v != ROUND_TRAINING[k]}
    learn_out = os.path.join(out, "learn")
    config = LearnConfig(
        start=(data["minimum"],), calculator=SPEC, out=learn_out,
        temperature=tuple(args.temperature), replicas=args.replicas, md_steps=args.md_steps,
        budget=args.budget, per_round=args.per_round, rattles=args.rattles,
        rattle_std=args.rattle_std, rattle_max_std=args.rattle_max_std,
        min_force_std=args.min_force_std, max_force_std=args.max_force_std,
        stop_force_std=args.stop_force_std, diversity=args.diversity,
        selection=args.selection, explore_from=args.explore_from,
        hessian_fraction=args.hessian_fraction, final_time=args.final_time,
        final_epochs=args.final_epochs,
        final_energy_margin=args.final_energy_margin,
        committee_energy_margin=args.committee_energy_margin,
        committee=args.committee, train=train, seed=args.seed, progress=True,
        resume=os.path.exists(os.path.join(learn_out, "state.json")),
    )  # fmt: skip
    state = Learner(config).run()
    scratch = config.final_training()  # the random baselines train as the loop ends
    learn_s = time.perf_counter() - start
    labels = Learner(config.replace(resume=True)).labels()

    test, test_group = data["test"]
    if test_group is None:
        reference_trajectory(test, args.test_ps, args.seed + 99, minimum)
    random_path = os.path.join(out, "random_md.h5")
    valid = os.path.join(out, "valid_500K.h5")
    random_md_data(random_path, valid, data["reference"], labels, args.seed, args.valid_frames,
                   group=data["group"])  # fmt: skip
    final = FINAL
    models = {
        "learned, loop's last committee (fine-tuned)": load_model(
            os.path.join(learn_out, state["committee"])),
        final: load_model(os.path.join(learn_out, "model.pt")),
    }  # fmt: skip
    if args.hessian_fraction > 0:  # the same number of labels and of Hessians, at random
        random_h = os.path.join(out, "random_md_hessians.h5")
        # the same validation draw, written above already
        random_md_data(random_h, None, data["reference"], labels, args.seed, args.valid_frames,
                       args.hessian_fraction, group=data["group"])  # fmt: skip
        title = f"random 500 K MD, {args.hessian_fraction:g} with Hessians, from scratch"
        models[title] = train_from_scratch(random_h, os.path.join(out, "random_scratch_h"),
                                           scratch, args.committee, args.seed)  # fmt: skip
    models[RANDOM] = train_from_scratch(
        random_path, os.path.join(out, "random_scratch"), scratch, args.committee, args.seed
    )
    results = {title: test_errors(model, test, test_group) for title, model in models.items()}
    validation = {title: test_errors(model, valid) for title, model in models.items()}
    # the stability run is the learned committee's (the question)
    stability = {}
    if args.stability_ps > 0:
        stability[final] = stability_run(models[final], minimum, args, "learned", run_stability)
    print(f"\n{name}: round table (mlip learn):")
    print(format_table(state["rows"]))
    frames = int(next(iter(results.values()))["num_structures"])
    print(f"\n{name}: {labels} labels of {SPEC}; test: {test} ({frames} frames of an "
          "independent 500 K xTB trajectory)\n")  # fmt: skip
    print("| committee | valid F MAE (meV/A) | test F MAE (meV/A) | test E MAE (meV/atom) | "
          f"Spearman(std, error) | {args.stability_ps:g} ps 500 K intact |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for title, m in results.items():
        s = stability.get(title)
        intact = f"{s['stable']}/{s['replicas']}" if s else ""
        print(f"| {title} | {validation[title]['forces_mae_mean']:.1f} | "
              f"{m['forces_mae_mean']:.1f} | {m['energy_per_atom_mae_mean']:.2f} | "
              f"{m['spearman_rms']:.2f} | {intact} |")  # fmt: skip
    print(f"(valid: {args.valid_frames} other frames of the reference MD, {valid})")
    minimum_energy = float(read_conformer(parse_structure_spec(data["minimum"])).energy)
    energies = label_energies(learn_out, valid, minimum_energy)
    print("\nlabels' energy above the minimum (eV), beside the validation frames:")
    print("| labels | n | median | 95th pct | max |\n| --- | ---: | ---: | ---: | ---: |")
    for e in energies:
        print(f"| {e['labels']} | {e['n']} | {e['median_eV']:.2f} | {e['p95_eV']:.2f} | "
              f"{e['max_eV']:.2f} |")  # fmt: skip
    summary = {"molecule": name, "atoms": len(minimum), "labels": labels,
               "spent": sum(int(r.get("new_labels") or 0) + int(r.get("failed") or 0)
                            for r in state["rows"]),
               "rounds": max(int(r["round"]) for r in state["rows"]),
               "finished": state["finished"], "rows": state["rows"],
               "final": state.get("final") or {}, "test": results,
               "valid": validation, "stability": stability, "label_energies": energies,
               "learn_wall_s": learn_s, "wall_s": time.perf_counter() - start}  # fmt: skip
    with open(os.path.join(out, "active_learning.json"), "w") as handle:
        json.dump(summary, handle, indent=1, default=str)
    return summary


RANDOM = "random 500 K MD, from scratch"
FINAL = "learned, final committee (mlip learn's model.pt)"


def summary_table(summaries: list[dict], stability_ps: float) -> str:
    """One row a molecule: labels spent, rounds, the loop's end, the labels the final
    training kept (``mlip learn --final-energy-margin``), test F MAE of the final committee
    against as many random 500 K frames (same training), the stability."""
    lines = ["| molecule | atoms | labels spent | rounds | loop ended | final training's labels "
             "| test F MAE learned (meV/A) | random 500 K frames | learned / random | valid F MAE "
             f"learned / random | {stability_ps:g} ps 500 K intact |",
             "| --- | ---: | ---: | ---: | --- " + "| ---: " * 6 + "|"]  # fmt: skip
    for s in summaries:
        learned, random = s["test"][FINAL]["forces_mae_mean"], s["test"][RANDOM]["forces_mae_mean"]
        v_learned, v_random = (s["valid"][k]["forces_mae_mean"] for k in (FINAL, RANDOM))
        valid = f"{v_learned:.1f} / {v_random:.1f}"
        st = s["stability"].get(FINAL)
        intact = f"{st['stable']}/{st['replicas']}" if st else "not run"
        lines.append(f"| {s['molecule']} | {s['atoms']} | {s['spent']} | {s['rounds']} | "
                     f"{s['finished']} | {s.get('final', {}).get('labels', '')} | "
                     f"{learned:.1f} | {random:.1f} | {learned / random:.2f} | "
                     f"{valid} | {intact} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from mlip.learn.config import ROUND_TRAINING, LearnConfig

    D = LearnConfig((), "", "")  # mlip learn's defaults: the benchmark's, defined once
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/al")
    p.add_argument("--molecules", nargs="+", default=["ethanol"],
                   help="ethanol, or NAME of benchmarks/learn_molecules.py")  # fmt: skip
    p.add_argument("--data-dir", default=DATA_DIR,
                   help=f"folder of {REFERENCE_FILE} (default: %(default)s)")  # fmt: skip
    p.add_argument("--molecule-dir", default=MOLECULE_DIR,
                   help="folder of NAME_xtb.h5 (default: %(default)s)")  # fmt: skip
    p.add_argument("--short", action="store_true", help="the small version (SHORT)")
    p.add_argument("--budget", type=int, default=D.budget, help="labels at most")
    p.add_argument("--per-round", type=int, default=D.per_round)
    p.add_argument("--rattles", type=int, default=D.rattles, help="round 0 labels of the minimum")
    p.add_argument("--rattle-std", type=float, default=D.rattle_std, help="A")
    p.add_argument("--rattle-max-std", type=float, default=D.rattle_max_std, help="A")
    p.add_argument("--temperature", type=float, nargs="+", default=[500.0], help="K")
    p.add_argument("--md-steps", type=int, default=D.md_steps, help="per round (0.5 fs)")
    p.add_argument("--replicas", type=int, default=D.replicas)
    p.add_argument("--committee", type=int, default=D.committee)
    p.add_argument("--num-channels", type=int, default=ROUND_TRAINING["model.num_channels"])
    p.add_argument(
        "--max-epochs",
        type=int,
        default=ROUND_TRAINING["train.max_epochs"],
        help="per member and round",
    )
    p.add_argument(
        "--final-time",
        type=float,
        default=D.final_time,
        help="s a member: the loop's final training and the random baselines'",
    )
    p.add_argument(
        "--final-epochs",
        type=int,
        default=D.final_epochs,
        help="epochs a member at most of those trainings (default: none)",
    )
    p.add_argument(
        "--final-energy-margin",
        type=_margin,
        default=D.final_energy_margin,
        help="eV; mlip learn's --final-energy-margin (none: the final training keeps every label)",
    )
    p.add_argument(
        "--committee-energy-margin",
        type=_margin,
        default=D.committee_energy_margin,
        help="eV; mlip learn's --committee-energy-margin (none: every label)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=ROUND_TRAINING["data.batch_size"],
        help="conformers per step (few labels)",
    )
    p.add_argument("--selection", choices=("uncertain", "window"), default=D.selection,
                   help="mlip learn's selection rule")  # fmt: skip
    p.add_argument("--explore-from", choices=("seeds", "last"), default=D.explore_from,
                   help="mlip learn's start of each round's MD")  # fmt: skip
    p.add_argument(
        "--valid-frames",
        type=int,
        default=500,
        help="validation frames: others of the reference MD (recipes chosen on them)",
    )
    p.add_argument(
        "--hessian-fraction",
        type=float,
        default=0.0,
        help="mlip learn's Hessian labels (finite differences) on this fraction of each "
        "round; a random baseline with this fraction of Hessians is then trained too",
    )
    p.add_argument("--diversity", type=float, default=D.diversity,
                   help="A: mlip learn's least RMS distance difference between labels")  # fmt: skip
    p.add_argument("--min-force-std", type=float, default=D.min_force_std, help="eV/A")
    p.add_argument(
        "--max-force-std", type=float, default=D.max_force_std, help="eV/A: labelled at most"
    )
    p.add_argument(
        "--stop-force-std", type=float, default=D.stop_force_std, help="eV/A: MD stops above"
    )
    p.add_argument("--test-ps", type=float, default=5.0,
                   help="ethanol's test trajectory, ps (100 frames/ps)")  # fmt: skip
    p.add_argument("--stability-ps", type=float, default=20.0, help="0: no stability run")
    p.add_argument("--stability-replicas", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.short:
        for key, value in SHORT.items():
            setattr(args, key, value)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    for name in args.molecules:
        molecule_data(name, args)  # every molecule's data before the first run
    start = time.perf_counter()
    summaries = [run_molecule(name, args) for name in args.molecules]
    print(
        f"\n{SPEC}, budget {args.budget}, seed {args.seed}; test: independent 500 K xTB "
        "trajectories; random: as many frames of the reference 500 K MD, same training\n"
    )
    print(summary_table(summaries, args.stability_ps))
    with open(os.path.join(args.out, "active_learning.json"), "w") as handle:
        json.dump({"molecules": {s["molecule"]: s for s in summaries}, "settings": vars(args)},
                  handle, indent=1, default=str)  # fmt: skip
    print(f"\nwall {(time.perf_counter() - start) / 60:.1f} min; {args.out}/active_learning.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
