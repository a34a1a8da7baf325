"""Atoms per second per training epoch of ``mlip train``, this checkout against another.

Used by ``benchmarks/training_throughput.py --systems ...``. Each run is the command a
user types (``python -m mlip.cli train --data FILE --train-size N --valid-size 100
--max-epochs E``, plus any extra options), in a fresh process; the rate is read from
the run's ``metrics.csv``: training atoms x epochs / training seconds between the end of
the first epoch and the end of the last (the first epoch, with its warm-up, is left
out; validation, which every epoch ends with, is included). A baseline revision is
checked out into a temporary git worktree and run the same way, its runs alternating
with this checkout's so that a drift of the machine's speed hits both alike.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import h5py
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: system -> (file, groups or None for all): the training sets of the accuracy benchmarks
SYSTEMS = {
    "cu": ("cu_emt.h5", None),
    "ethanol": ("ethanol_xtb.h5", ["ethanol"]),
    "aspirin": ("aspirin_xtb.h5", ["aspirin"]),
}


@dataclass
class EpochRate:
    """One run: ``label`` (checkout), system, epochs timed, seconds, atoms per second, and
    the width the run trained (its ``config.yaml``: a revision's default, or the width its
    trainer chose)."""

    label: str
    system: str
    epochs: int
    seconds: float
    atoms_per_epoch: int
    channels: int | None = None

    @property
    def rate(self) -> float:
        return self.epochs * self.atoms_per_epoch / self.seconds


def mean_atoms(path: str, groups: list[str] | None) -> float:
    """Mean atoms per conformer over the selected groups of an mlip HDF5 file."""
    with h5py.File(path, "r") as handle:
        names = groups or list(handle)
        sizes = [(len(handle[g]["energy"]), len(handle[g]["atomic_numbers"])) for g in names]
    total = sum(m for m, _ in sizes)
    return sum(m * n for m, n in sizes) / total


def run_epochs(
    checkout: str,
    data_dir: str,
    system: str,
    train_size: int,
    epochs: int,
    threads: int,
    extra: list[str],
    label: str,
) -> EpochRate:
    """Train ``epochs`` epochs with ``checkout``'s code; the rate of epochs 2..E."""
    filename, groups = SYSTEMS[system]
    data = os.path.join(data_dir, filename)
    with tempfile.TemporaryDirectory(prefix="epochs_") as out:
        argv = [sys.executable, "-m", "mlip.cli", "train", "--data", data]
        argv += ["--group", *groups] if groups else []
        argv += ["--train-size", str(train_size), "--valid-size", "100"]
        argv += ["--max-epochs", str(epochs), "--out", out, "--no-progress", *extra]
        env = dict(os.environ, PYTHONPATH=checkout, OMP_NUM_THREADS=str(threads))
        subprocess.run(argv, cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "metrics.csv")) as handle:
            rows = list(csv.DictReader(handle))
        with open(os.path.join(out, "config.yaml")) as handle:
            channels = (yaml.safe_load(handle).get("model") or {}).get("num_channels")
    if len(rows) < 2:
        raise SystemExit(
            f"{system}: fewer than two validations in {epochs} epochs; train "
            "on more conformers (validation every epoch from 100 steps on)"
        )
    first, last = rows[0], rows[-1]
    done = round(float(last["epoch"]) - float(first["epoch"]))
    seconds = float(last["time_s"]) - float(first["time_s"])
    atoms = round(train_size * mean_atoms(data, groups))
    return EpochRate(label, system, done, seconds, atoms, channels)


def baseline_checkout(revision: str) -> tempfile.TemporaryDirectory:
    """A temporary git worktree of ``revision`` (removed with the returned object)."""
    holder = tempfile.TemporaryDirectory(prefix="baseline_")
    subprocess.run(
        ["git", "-C", ROOT, "worktree", "add", "--detach", "--force", holder.name, revision],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return holder


def remove_checkout(holder: tempfile.TemporaryDirectory) -> None:
    subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", holder.name], check=False)
    holder.cleanup()


def compare(
    systems: list[str],
    baseline: str | None,
    data_dir: str,
    train_size: int,
    epochs: int,
    threads: int,
    repeats: int,
    extra: list[str],
) -> list[EpochRate]:
    """Runs of this checkout (and of ``baseline``), alternating, ``repeats`` of each."""
    holder = baseline_checkout(baseline) if baseline else None
    checkouts = [("this", ROOT)] + ([(baseline, holder.name)] if holder else [])
    rates = []
    try:
        for system in systems:
            for _ in range(repeats):
                for label, path in checkouts:
                    rate = run_epochs(
                        path, data_dir, system, train_size, epochs, threads, extra, label
                    )
                    print(f"  {system} {label}: {rate.rate:.0f} atoms/s, {rate.channels} channels",
                          flush=True)  # fmt: skip
                    rates.append(rate)
    finally:
        if holder is not None:
            remove_checkout(holder)
    return rates


def format_rates(rates: list[EpochRate]) -> str:
    """Median atoms/s per system and checkout, and this checkout over the baseline."""
    labels = list(dict.fromkeys(r.label for r in rates))
    lines = [
        "| system | atoms / epoch | "
        + " | ".join(f"{x}: atoms/s (s/epoch, channels)" for x in labels)
        + (" | speed-up |" if len(labels) > 1 else " |"),
        "|:---|---:|" + "---:|" * (len(labels) + (len(labels) > 1)),
    ]  # fmt: skip
    for system in dict.fromkeys(r.system for r in rates):
        cells, medians = [], []
        for label in labels:
            mine = [r for r in rates if r.system == system and r.label == label]
            rate = statistics.median(r.rate for r in mine)
            per_epoch = statistics.median(r.seconds / r.epochs for r in mine)
            medians.append(rate)
            widths = "/".join(str(w) for w in sorted({r.channels for r in mine}, key=str))
            cells.append(f"{rate:.0f} ({per_epoch:.1f}, {widths})")
        atoms = next(r.atoms_per_epoch for r in rates if r.system == system)
        ratio = f" | {medians[0] / medians[1]:.2f}x" if len(medians) > 1 else ""
        lines.append(f"| {system} | {atoms} | " + " | ".join(cells) + ratio + " |")
    return "\n".join(lines)


def spread(rates: list[EpochRate]) -> float:
    """Largest relative spread (max/min - 1) of the repeats of one system and checkout."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rates:
        groups.setdefault((r.system, r.label), []).append(r.rate)
    return max((max(v) / min(v) - 1.0 for v in groups.values()), default=float("nan"))
