"""Does the Hessian term pay for itself? E+F against E+F+H at N conformers, all with Hessians.

The same default command a user types, ``mlip train --data FILE --group G`` (with
``--split-file`` for the sets below), is run with each label set:

* ``ef``  energies + forces                ``--hessian-weight 0``
* ``efh`` energies + forces + Hessians     the defaults (the Hessian term is on)
* ``e``   energies only                    ``--forces-weight 0 --hessian-weight 0``

under two protocols: ``plateau`` (no budget: the run stops at a validation plateau,
the default early stopping) and ``time`` (``--max-time`` = ``--minutes``, the same wall
time for every label set). Extra ``mlip train`` options go after ``--``.

Sets (all draws from ``numpy.random.default_rng(--seed)``, in this order):

1. the conformers carrying a Hessian are permuted; the last ``--n-valid`` form the
   validation set of every run, the first N the training set of size N (``--sizes``,
   nested sets);
2. the test set: ``--n-test`` conformers drawn from those without a Hessian;
3. ``--large-sizes``: training sets drawn from all remaining conformers, for the label
   sets without the Hessian term only.

Each trained (best EMA) model is evaluated in float64: test force and energy MAE, and
at the reference minimum (``MOLECULE_minimum``) the Hessian element MAE and the
harmonic frequencies against the reference (MAE over all modes, over the modes below
1000 cm^-1, the largest error; modes matched in sorted order), and the full-Hessian MAE
and the frequency MAE (all modes, modes below 1000 cm^-1) of the validation conformers'
own Hessians (the recipe is chosen on these validation figures).

    python benchmarks/sobolev.py --molecule ethanol --parallel 2 --out runs/sobolev_ethanol
    python benchmarks/sobolev.py --molecule aspirin --sizes 10 25 50 --n-valid 25
    python benchmarks/sobolev.py --sizes 25 --protocols time --minutes 1 -- --num-channels 16

Prints a markdown table, writes OUT/sobolev.json and a plot (OUT/sobolev.png).
Rerunning with the same options and ``--out`` reuses finished runs (each run keeps its
own ``result.json``). Units: eV, Angstrom; meV/A, meV/atom, meV/A^2, cm^-1.
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
from common import DATA, conformer_frequency_errors, frequency_errors

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {"e": "E", "ef": "E+F", "efh": "E+F+H"}
MODE_ARGS = {
    "e": ["--forces-weight", "0", "--hessian-weight", "0"],
    "ef": ["--hessian-weight", "0"],
    "efh": [],
}
PROTOCOLS = ("plateau", "time")


@dataclass
class Options:
    """What to run. Sizes are conformer counts; ``minutes`` is the ``time`` budget."""

    data: str  # mlip-hdf5 file
    group: str = "ethanol"
    minimum_group: str = "ethanol_minimum"
    sizes: list[int] = field(default_factory=lambda: [10, 25, 50, 100, 250])
    large_sizes: list[int] = field(default_factory=list)
    modes: list[str] = field(default_factory=lambda: ["ef", "efh"])
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    minutes: float = 5.0
    n_valid: int = 50
    n_test: int = 500
    seed: int = 0
    relax: bool = False
    threads: int = 2  # torch threads of an in-process run (1 per subprocess)
    parallel: int = 1  # > 1: that many runs at once as subprocesses
    subprocess: bool = False  # run one at a time as subprocesses too
    out: str = "runs/sobolev"
    train_args: list[str] = field(default_factory=list)  # further mlip train options


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
    """One JSON-serialisable run description per (mode, protocol, N); efh only on the
    Hessian-carrying sizes."""
    for mode in options.modes:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes are {list(MODES)}")
    for protocol in options.protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; protocols are {list(PROTOCOLS)}")
    separate = options.parallel > 1 or options.subprocess
    threads = 1 if separate else options.threads  # one thread per subprocess
    specs = []
    for protocol in options.protocols:
        budget = ["--max-time", str(options.minutes * 60.0)] if protocol == "time" else []
        for mode in options.modes:
            sizes = list(options.sizes) + ([] if mode == "efh" else list(options.large_sizes))
            for n in sizes:
                name = f"{mode}_{protocol}_n{n}"
                specs.append(
                    {
                        "name": name,
                        "mode": mode,
                        "labels": MODES[mode],
                        "protocol": protocol,
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
                        "train_args": MODE_ARGS[mode] + budget + list(options.train_args),
                    }
                )
    return specs


# -- one run --------------------------------------------------------------------------


def train_argv(spec: dict[str, Any], sets_path: str, out: str) -> list[str]:
    """The ``mlip train`` command line of one run."""
    return [
        "train",
        "--data", spec["data"], "--group", spec["group"],
        "--split-file", sets_path, "--seed", str(spec["seed"]),
        "--out", out, "--no-progress", "--no-eval", "--set", "train.tensorboard=false",
        *spec["train_args"],
    ]  # fmt: skip


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one run, evaluate it and write ``DIR/result.json``."""
    from mlip.cli import main as mlip_main
    from mlip.data.hdf5 import H5Dataset
    from mlip.fileio import atomic_write_text
    from mlip.model import load_model
    from mlip.train.evaluate import evaluate

    torch.set_num_threads(spec["threads"])
    os.makedirs(spec["dir"], exist_ok=True)
    sets_path = os.path.join(spec["dir"], "sets.json")
    sets = {name: spec[name] for name in ("train", "valid", "test")}
    atomic_write_text(sets_path, json.dumps(sets))
    out = os.path.join(spec["dir"], "train")
    argv = train_argv(spec, sets_path, out)
    print("mlip " + " ".join(argv), flush=True)
    start = time.perf_counter()
    if mlip_main(argv) != 0:
        raise RuntimeError("mlip train failed")
    wall = time.perf_counter() - start
    with open(os.path.join(out, "metrics.csv")) as handle:
        rows = handle.read().strip().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    progress = dict(zip(header, last, strict=True))
    dataset = H5Dataset(spec["data"], [spec["group"]])
    model = load_model(os.path.join(out, "model.pt"), dtype=torch.float64)
    test = evaluate(model, dataset.get_many(spec["test"]), 50, "cpu", torch.float64, False)
    valid_structures = dataset.get_many(spec["valid"])
    valid = evaluate(model, valid_structures, 10, "cpu", torch.float64, True)
    valid_freq = conformer_frequency_errors(model, valid_structures)
    result = {
        "name": spec["name"],
        "mode": spec["mode"],
        "labels": spec["labels"],
        "protocol": spec["protocol"],
        "n_train": spec["n_train"],
        "hessian_pool": spec["hessian_pool"],
        "epochs": float(progress["epoch"]),
        "steps": int(progress["step"]),
        "train_s": float(progress["time_s"]),
        "wall_s": wall,
        "test_forces_mae": test.metrics["forces_mae"],
        "test_energy_mae": test.metrics["energy_per_atom_mae"],
        "test_count": int(test.metrics["num_structures"]),
        "valid_hessian_mae": valid.metrics.get("hessian_mae"),
        "valid_forces_mae": valid.metrics["forces_mae"],
        "valid_freq_mae": valid_freq["freq_mae"],
        "valid_freq_mae_soft": valid_freq["freq_mae_soft"],
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
    keys = ("name", "mode", "labels", "protocol", "n_train")
    return {**{k: spec[k] for k in keys}, "error": reason, "log_tail": tail}


def run_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one spec here, its output into DIR/log.txt; a failure becomes an error row."""
    with open(os.path.join(spec["dir"], "log.txt"), "w") as log:
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
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

COLUMNS = (
    ("epochs", "epochs", 0),
    ("train_s", "time (s)", 0),
    ("test_forces_mae", "F MAE (meV/A)", 1),
    ("test_energy_mae", "E MAE (meV/atom)", 2),
    ("hessian_mae_minimum", "H MAE at min (meV/A^2)", 0),
    ("valid_hessian_mae", "H MAE valid (meV/A^2)", 0),
    ("freq_mae", "freq MAE (cm^-1)", 1),
    ("freq_mae_soft", "freq MAE < 1000 (cm^-1)", 1),
    ("freq_max_error", "max freq error (cm^-1)", 1),
)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def format_table(results: list[dict[str, Any]]) -> str:
    """Markdown table: one row per (protocol, N, labels)."""
    head = ["N", "labels", "protocol"] + [title for _, title, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * 1 + ":---|" * 2 + "---:|" * 9]
    order = sorted(results, key=lambda r: (r["protocol"], r["n_train"], r["mode"]))
    for r in order:
        cells = [str(r["n_train"]), r["labels"], r["protocol"]]
        if "error" in r:
            cells += [f"failed: {r['error']}"] + [""] * (len(COLUMNS) - 1)
        else:
            cells += [_cell(r.get(key), digits) for key, _, digits in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: str) -> str:
    """Log-log panels (force, Hessian and frequency MAE vs N), a line per labels/protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("test_forces_mae", "test force MAE [meV/A]"),
        ("hessian_mae_minimum", "Hessian MAE at the minimum [meV/A$^2$]"),
        ("freq_mae", "frequency MAE [cm$^{-1}$]"),
        ("freq_mae_soft", "frequency MAE, modes < 1000 cm$^{-1}$"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 3.8), dpi=120)
    for ax, (key, label) in zip(axes, panels, strict=True):
        for protocol in PROTOCOLS:
            for mode, labels in MODES.items():
                rows = sorted(
                    (r["n_train"], r[key])
                    for r in results
                    if r["mode"] == mode and r["protocol"] == protocol and "error" not in r
                )
                if rows:
                    n, y = zip(*rows, strict=True)
                    style = "o-" if protocol == "plateau" else "s--"
                    ax.loglog(n, y, style, label=f"{labels}, {protocol}")
        sizes = sorted({r["n_train"] for r in results})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training conformers N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_benchmark(options: Options, plot_path: str | None = None) -> dict[str, Any]:
    """Draw the sets, run every (mode, protocol, N), write OUT/sobolev.json (and plot)."""
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
        "units": {
            "forces": "meV/A",
            "energy": "meV/atom",
            "hessian": "meV/A^2",
            "frequencies": "cm^-1",
        },
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
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50, 100, 250])
    p.add_argument("--large-sizes", type=int, nargs="*", default=[],
                   help="sizes drawn from all conformers, modes e and ef only")  # fmt: skip
    p.add_argument("--modes", nargs="+", default=["ef", "efh"], choices=list(MODES))
    p.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    p.add_argument("--minutes", type=float, default=5.0, help="budget of the 'time' protocol")
    p.add_argument("--n-valid", type=int, default=50)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--relax", action="store_true", help="frequencies at the model's minimum")
    p.add_argument("--threads", type=int, default=2, help="torch threads (in-process runs)")
    p.add_argument("--parallel", type=int, default=1, help="runs at once (subprocesses)")
    p.add_argument("--out", default=None, help="output folder (default runs/sobolev_HHMMSS)")
    p.add_argument("--plot", default=None, help="plot file (default OUT/sobolev.png)")
    p.add_argument("--run-spec", help=argparse.SUPPRESS)  # internal: one run (subprocess)
    p.add_argument("train_args", nargs="*", help="further mlip train options, after --")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_spec:
        with open(args.run_spec) as handle:
            run_one(json.load(handle))
        return 0
    out = args.out or f"runs/sobolev_{time.strftime('%H%M%S')}"
    options = Options(
        data=os.path.normpath(os.path.join(args.data_dir, f"{args.molecule}_xtb.h5")),
        group=args.molecule,
        minimum_group=f"{args.molecule}_minimum",
        sizes=args.sizes,
        large_sizes=args.large_sizes,
        modes=args.modes,
        protocols=args.protocols,
        minutes=args.minutes,
        n_valid=args.n_valid,
        n_test=args.n_test,
        seed=args.seed,
        relax=args.relax,
        threads=args.threads,
        parallel=args.parallel,
        out=out,
        train_args=args.train_args,
    )
    plot_path = args.plot or os.path.join(out, "sobolev.png")
    payload = run_benchmark(options, plot_path)
    print()
    print(format_table(payload["results"]))
    print(f"\nwritten: {out}/sobolev.json, {plot_path}")
    return 1 if any("error" in r for r in payload["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
