"""Sobolev learning curve: test errors vs training-set size for E, E+F and E+F+H labels.

Why derivative labels matter: the same model is trained on N conformers of ethanol
(GFN2-xTB, ``ethanol_xtb.h5``) with three label sets, on the same wall-clock budget
per run (``--minutes``, training time including the per-epoch validation):

* ``e``   energies only          (loss weights E 1, F 0,   H 0)
* ``ef``  energies + forces      (E 1, F 100, H 0: configs/accuracy.yaml)
* ``efh`` energies + forces + Hessians (E 1, F 100, H ``--hessian-weight``, K probes)

Protocol (all draws from ``numpy.random.default_rng(--seed)``, in this order):

1. the conformers carrying a Hessian (300 of 3000) are permuted; the last ``--n-valid``
   (50) form the validation set of every run, the first N the training set of size N
   (``--sizes``, default 25 50 100 250; nested sets);
2. the test set: ``--n-test`` (500) conformers drawn from those without a Hessian, so
   it is disjoint from every training and validation set;
3. ``--large-sizes`` (default 1000): training sets drawn from all remaining conformers
   (not valid, not test), for the modes without a Hessian term only (e, ef).

Each run trains on the full data file with an explicit split (``data.split_file``:
DIR/sets.json holds its train, valid and test indices), so no data is copied. The
modes without a Hessian term neither train on nor validate with Hessian-vector
products. The best (EMA) model is evaluated on the test set
(:func:`mlip.train.evaluate.evaluate`: force MAE meV/A, energy MAE meV/atom) and by the
harmonic frequencies (cm^-1) at the reference minimum ``ethanol_minimum``: the model's
exact Hessian at the reference geometry (or at the model's own minimum with
``--relax``) against the reference Hessian, modes matched in sorted order
(:meth:`mlip.vib.HarmonicResult.compare`).

    python benchmarks/sobolev.py --minutes 3 --parallel 2 --out runs/sobolev
    python benchmarks/sobolev.py --sizes 25 50 --large-sizes --modes ef efh --minutes 1

Prints a markdown table, writes OUT/sobolev.json and a 3-panel log-log plot
(``--plot``, default OUT/sobolev.png). Rerunning with the same options and ``--out``
reuses finished runs (each run keeps its own ``result.json``). Units: eV, Angstrom.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data")
MODES = {"e": "E", "ef": "E+F", "efh": "E+F+H"}


ACCURACY_CONFIG = os.path.join(HERE, "..", "configs", "accuracy.yaml")  # model, optimiser


@dataclass
class Options:
    """What to run. Sizes are conformer counts; ``minutes`` is the budget per run."""

    data: str  # mlip-hdf5 file
    group: str = "ethanol"
    minimum_group: str = "ethanol_minimum"
    sizes: list[int] = field(default_factory=lambda: [25, 50, 100, 250])
    large_sizes: list[int] = field(default_factory=lambda: [1000])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    minutes: float = 3.0
    max_epochs: int = 100_000
    n_valid: int = 50
    n_test: int = 500
    seed: int = 0
    hessian_weight: float = 100.0
    hessian_probes: int = 2
    relax: bool = False
    threads: int = 2  # torch threads of an in-process run (1 per subprocess)
    parallel: int = 1  # > 1: that many runs at once as subprocesses
    subprocess: bool = False  # run one at a time as subprocesses too
    device: str = "cpu"
    dtype: str = "float64"
    out: str = "runs/sobolev"
    overrides: dict[str, Any] = field(default_factory=dict)  # extra dotted config keys


# -- protocol -------------------------------------------------------------------------


def draw_sets(
    hessian_mask: np.ndarray,
    sizes: list[int],
    large_sizes: list[int],
    n_valid: int,
    n_test: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Validation, test and training index sets of the protocol (module docstring).

    Returns ``{"valid": idx, "test": idx, "train": {N: idx}}`` (global conformer
    indices). ValueError when a size does not fit the data.
    """
    rng = np.random.default_rng(seed)
    everything = np.arange(len(hessian_mask))
    hessian = np.flatnonzero(hessian_mask)
    capacity = len(hessian) - n_valid
    for n in sizes:
        if not 1 <= n <= capacity:
            raise ValueError(
                f"size {n}: the Hessian-carrying pool holds {len(hessian)} conformers, "
                f"{n_valid} of them for validation, so sizes must be 1..{capacity}"
            )
    perm = rng.permutation(hessian)
    valid = np.sort(perm[capacity:])
    others = np.flatnonzero(~hessian_mask)
    if n_test > len(others):
        raise ValueError(f"n_test {n_test} exceeds the {len(others)} conformers without Hessian")
    test = np.sort(rng.choice(others, n_test, replace=False))
    rest = rng.permutation(np.setdiff1d(everything, np.concatenate([valid, test])))
    train = {n: np.sort(perm[:n]) for n in sizes}
    for n in large_sizes:
        if not 1 <= n <= len(rest):
            raise ValueError(f"large size {n}: only {len(rest)} conformers outside valid/test")
        train[n] = np.sort(rest[:n])
    return {"valid": valid, "test": test, "train": train}


def make_specs(options: Options, sets: dict[str, Any]) -> list[dict[str, Any]]:
    """One JSON-serialisable run description per (mode, N); efh only on Hessian sizes."""
    for mode in options.modes:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes are {list(MODES)}")
    separate = options.parallel > 1 or options.subprocess
    threads = 1 if separate else options.threads  # one thread per subprocess
    specs = []
    for mode in options.modes:
        weights = {"loss.energy_weight": 1.0, "loss.forces_weight": 100.0}
        weights["loss.hessian_weight"] = options.hessian_weight if mode == "efh" else 0.0
        if mode == "e":
            weights["loss.forces_weight"] = 0.0
        sizes = list(options.sizes) + ([] if mode == "efh" else list(options.large_sizes))
        for n in sizes:
            name = f"{mode}_n{n}"
            specs.append(
                {
                    "name": name,
                    "mode": mode,
                    "labels": MODES[mode],
                    "n_train": int(n),
                    "hessian_pool": n in options.sizes,
                    "train": sets["train"][n].tolist(),
                    "valid": sets["valid"].tolist(),
                    "test": sets["test"].tolist(),
                    "data": os.path.abspath(options.data),
                    "group": options.group,
                    "minimum_group": options.minimum_group,
                    "relax": options.relax,
                    "threads": threads,
                    "seed": options.seed,
                    "dir": os.path.abspath(os.path.join(options.out, name)),
                    "config": os.path.abspath(ACCURACY_CONFIG),
                    "overrides": {
                        **weights,
                        "loss.hessian_probes": options.hessian_probes,
                        "train.max_time": options.minutes * 60.0,
                        "train.max_epochs": options.max_epochs,
                        "train.device": options.device,
                        "train.dtype": options.dtype,
                        **options.overrides,
                    },
                }
            )
    return specs


# -- one run --------------------------------------------------------------------------


def write_sets(spec: dict[str, Any], path: str) -> str:
    """The run's train/valid/test indices as a split file for ``data.split_file``."""
    from mlip.fileio import atomic_write_text

    sets = {name: spec[name] for name in ("train", "valid", "test")}
    atomic_write_text(path, json.dumps(sets))
    return path


def frequency_errors(model: torch.nn.Module, data: str, group: str, relax: bool) -> dict:
    """Harmonic frequencies (cm^-1) of the model vs the reference Hessian of ``group``.

    The model's exact Hessian (float64) is taken at the reference geometry, or at the
    model's own minimum with ``relax`` (BFGS + Newton steps, fmax 1e-4 eV/A).
    """
    from mlip.calculator import MLIPCalculator
    from mlip.vib import harmonic_analysis, read_structure
    from mlip.vib import relax as relax_atoms

    atoms, reference_hessian = read_structure(f"{data}:{group}")
    if reference_hessian is None:
        raise ValueError(f"{data}: group {group!r} carries no reference Hessian")
    start = atoms.get_positions()  # a copy: relax moves atoms.positions in place
    reference = harmonic_analysis(reference_hessian, atoms.get_masses(), start)
    calculator = MLIPCalculator(model, dtype="float64")
    extra: dict[str, Any] = {}
    if relax:
        outcome = relax_atoms(atoms, calculator)
        shift = np.linalg.norm(atoms.positions - start, axis=1).max()
        extra = {"relax_converged": outcome.converged, "relax_max_shift_A": float(shift)}
    hessian = calculator.get_hessian(atoms)
    predicted = harmonic_analysis(hessian, atoms.get_masses(), atoms.positions)
    comparison = predicted.compare(reference)
    return {
        "freq_mae": comparison.mae,
        "freq_max_error": comparison.max_error,
        "num_imaginary": int(predicted.imaginary.sum()),
        **extra,
    }


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one run of the curve, evaluate it and write ``DIR/result.json``."""
    from mlip.data.hdf5 import H5Dataset
    from mlip.fileio import atomic_write_text
    from mlip.model import load_model
    from mlip.train import run_training
    from mlip.train.config import load_config
    from mlip.train.evaluate import evaluate

    torch.set_num_threads(spec["threads"])
    os.makedirs(spec["dir"], exist_ok=True)
    dataset = H5Dataset(spec["data"], [spec["group"]])
    sets = write_sets(spec, os.path.join(spec["dir"], "sets.json"))
    out = os.path.join(spec["dir"], "train")
    config = load_config(
        spec["config"],
        {
            **spec["overrides"],
            "data.paths": [spec["data"]],
            "data.groups": [spec["group"]],
            "data.split_file": sets,
            "train.seed": spec["seed"],
            "train.out": out,
            "train.evaluate": False,
            "train.progress": False,
            "train.tensorboard": False,
        },
    )
    summary = run_training(config)
    device = config.train.device if config.train.device != "auto" else "cpu"
    model = load_model(os.path.join(out, "model.pt"), device=device, dtype=torch.float64)
    test = evaluate(model, dataset.get_many(spec["test"]), 50, device, torch.float64, False)
    result = {
        "name": spec["name"],
        "mode": spec["mode"],
        "labels": spec["labels"],
        "n_train": spec["n_train"],
        "hessian_pool": spec["hessian_pool"],
        "epochs": summary["epochs"],
        "steps": summary["steps"],
        "train_s": summary["elapsed_s"],
        "stop_reason": summary["stop_reason"],
        "test_forces_mae": test.metrics["forces_mae"],
        "test_energy_mae": test.metrics["energy_per_atom_mae"],
        "test_count": int(test.metrics["num_structures"]),
        **frequency_errors(model, spec["data"], spec["minimum_group"], spec["relax"]),
    }
    atomic_write_text(os.path.join(spec["dir"], "result.json"), json.dumps(result, indent=1))
    return result


# -- many runs ------------------------------------------------------------------------


def _prepare(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A finished result of the same spec, or None after clearing the run folder."""
    folder = spec["dir"]
    spec_path, result_path = os.path.join(folder, "spec.json"), os.path.join(folder, "result.json")
    if os.path.exists(spec_path):
        with open(spec_path) as handle:
            same = json.load(handle) == spec
        if same and os.path.exists(result_path):
            with open(result_path) as handle:
                return json.load(handle)
        shutil.rmtree(folder)  # a folder of this script (it holds spec.json)
    elif os.path.isdir(folder) and os.listdir(folder):
        raise ValueError(f"{folder} exists and is not a run of this benchmark; choose --out")
    os.makedirs(folder, exist_ok=True)
    with open(spec_path, "w") as handle:
        json.dump(spec, handle)
    return None


def _failure(spec: dict[str, Any], reason: str) -> dict[str, Any]:
    log = os.path.join(spec["dir"], "log.txt")
    tail = ""
    if os.path.exists(log):
        with open(log) as handle:
            tail = handle.read()[-2000:]
    keys = ("name", "mode", "labels", "n_train")
    return {**{k: spec[k] for k in keys}, "error": reason, "log_tail": tail}


def run_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one spec here, its output into DIR/log.txt; a failure becomes an error row."""
    with open(os.path.join(spec["dir"], "log.txt"), "w") as log:
        try:
            with contextlib.redirect_stdout(log):
                return run_one(spec)
        except Exception as err:  # noqa: BLE001 (one failed run must not stop the curve)
            print(f"{type(err).__name__}: {err}", file=log)
    return _failure(spec, "run failed")


def run_all(specs: list[dict[str, Any]], parallel: int, use_subprocess: bool) -> list[dict]:
    """Run every spec (reusing finished ones); ``parallel`` > 1 runs subprocesses at once.

    Each subprocess gets ``OMP_NUM_THREADS=1`` and writes its own ``result.json``, which
    the parent reads back; a run that fails yields a row with an ``error``.
    """
    results: dict[str, dict] = {}
    pending = []
    for spec in specs:
        done = _prepare(spec)
        if done is not None:
            print(f"{spec['name']}: reusing {spec['dir']}/result.json")
            results[spec["name"]] = done
        else:
            pending.append(spec)
    if parallel <= 1 and not use_subprocess:
        for spec in pending:
            print(f"{spec['name']}: training ({spec['dir']})", flush=True)
            results[spec["name"]] = run_in_process(spec)
    else:
        _run_subprocesses(pending, max(parallel, 1), results)
    return [results[spec["name"]] for spec in specs]


def _run_subprocesses(pending: list[dict], parallel: int, results: dict[str, dict]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    root = os.path.dirname(HERE)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    queue = list(pending)
    running: list[tuple[subprocess.Popen, dict, Any]] = []
    try:
        while queue or running:
            while queue and len(running) < parallel:
                spec = queue.pop(0)
                spec_path = os.path.join(spec["dir"], "spec.json")
                log = open(os.path.join(spec["dir"], "log.txt"), "w")  # noqa: SIM115
                command = [sys.executable, os.path.abspath(__file__), "--run-spec", spec_path]
                print(f"{spec['name']}: training in a subprocess ({spec['dir']})", flush=True)
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
                running.append((process, spec, log))
            time.sleep(0.2)
            for item in [r for r in running if r[0].poll() is not None]:
                process, spec, log = item
                running.remove(item)
                log.close()
                result_path = os.path.join(spec["dir"], "result.json")
                if process.returncode == 0 and os.path.exists(result_path):
                    with open(result_path) as handle:
                        results[spec["name"]] = json.load(handle)
                else:
                    reason = f"subprocess exited with status {process.returncode}"
                    results[spec["name"]] = _failure(spec, reason)
    finally:
        for process, _, log in running:  # interrupted: stop only our own children
            process.terminate()
            process.wait()
            log.close()


# -- report ---------------------------------------------------------------------------


def _cell(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def format_table(results: list[dict[str, Any]]) -> str:
    """Markdown table: one row per (labels, N); errors in meV/A, meV/atom, cm^-1."""
    lines = [
        "| N | labels | epochs | F MAE (meV/A) | E MAE (meV/atom) | freq MAE (cm^-1) |",
        "|---:|:---|---:|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['n_train']} | {r['labels']} | failed: {r['error']} | | | |")
            continue
        cells = [r["n_train"], r["labels"], _cell(r["epochs"], 1)]
        cells += [_cell(r["test_forces_mae"]), _cell(r["test_energy_mae"])]
        cells.append(_cell(r["freq_mae"], 1))
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: str) -> str:
    """Three log-log panels (force, energy, frequency MAE vs N), one line per label set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("test_forces_mae", "test force MAE [meV/A]"),
        ("test_energy_mae", "test energy MAE [meV/atom]"),
        ("freq_mae", "frequency MAE [cm$^{-1}$]"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), dpi=120)
    for ax, (key, label) in zip(axes, panels, strict=True):
        for mode, labels in MODES.items():
            rows = sorted(
                (r["n_train"], r[key]) for r in results if r["mode"] == mode and "error" not in r
            )
            if rows:
                n, y = zip(*rows, strict=True)
                ax.loglog(n, y, "o-", label=labels)
        sizes = sorted({r["n_train"] for r in results})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training conformers N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_benchmark(options: Options, plot_path: str | None = None) -> dict[str, Any]:
    """Draw the sets, run every (mode, N), write OUT/sobolev.json (and the plot)."""
    from mlip.data.hdf5 import H5Dataset

    dataset = H5Dataset(options.data, [options.group])
    sets = draw_sets(
        dataset.hessian_mask,
        options.sizes,
        options.large_sizes,
        options.n_valid,
        options.n_test,
        options.seed,
    )
    dataset.close()
    os.makedirs(options.out, exist_ok=True)
    specs = make_specs(options, sets)
    results = run_all(specs, options.parallel, options.subprocess)
    payload = {
        "options": dataclasses.asdict(options),
        "units": {"forces": "meV/A", "energy": "meV/atom", "frequencies": "cm^-1"},
        "valid": sets["valid"].tolist(),
        "test": sets["test"].tolist(),
        "results": results,
    }
    with open(os.path.join(options.out, "sobolev.json"), "w") as handle:
        json.dump(payload, handle, indent=1)
    if plot_path:
        plot(results, plot_path)
    return payload


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--molecule", default="ethanol", help="group of DATA_DIR/MOLECULE_xtb.h5")
    p.add_argument("--data-dir", default=DATA)
    p.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 250])
    p.add_argument("--large-sizes", type=int, nargs="*", default=[1000],
                   help="sizes drawn from all conformers, modes e and ef only")  # fmt: skip
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--minutes", type=float, default=3.0, help="wall-clock budget per run")
    p.add_argument("--max-epochs", type=int, default=100_000)
    p.add_argument("--n-valid", type=int, default=50)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hessian-weight", type=float, default=100.0)
    p.add_argument("--hessian-probes", type=int, default=2)
    p.add_argument("--relax", action="store_true", help="frequencies at the model's minimum")
    p.add_argument("--threads", type=int, default=2, help="torch threads (in-process runs)")
    p.add_argument("--parallel", type=int, default=1, help="runs at once (subprocesses)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--out", default=None, help="output folder (default runs/sobolev_HHMMSS)")
    p.add_argument("--plot", default=None, help="plot file (default OUT/sobolev.png)")
    p.add_argument("--set", action="append", default=[], help="extra config KEY=VALUE")
    p.add_argument("--run-spec", help=argparse.SUPPRESS)  # internal: one run (subprocess)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_spec:
        with open(args.run_spec) as handle:
            run_one(json.load(handle))
        return 0
    from mlip.train.config import parse_assignment

    out = args.out or f"runs/sobolev_{time.strftime('%H%M%S')}"
    options = Options(
        data=os.path.normpath(os.path.join(args.data_dir, f"{args.molecule}_xtb.h5")),
        group=args.molecule,
        minimum_group=f"{args.molecule}_minimum",
        sizes=args.sizes,
        large_sizes=args.large_sizes,
        modes=args.modes,
        minutes=args.minutes,
        max_epochs=args.max_epochs,
        n_valid=args.n_valid,
        n_test=args.n_test,
        seed=args.seed,
        hessian_weight=args.hessian_weight,
        hessian_probes=args.hessian_probes,
        relax=args.relax,
        threads=args.threads,
        parallel=args.parallel,
        device=args.device,
        dtype=args.dtype,
        out=out,
        overrides=dict(parse_assignment(item) for item in args.set),
    )
    payload = run_benchmark(options, args.plot or os.path.join(out, "sobolev.png"))
    print()
    print(format_table(payload["results"]))
    print(f"\nwritten: {out}/sobolev.json, {args.plot or os.path.join(out, 'sobolev.png')}")
    return 1 if any("error" in r for r in payload["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
