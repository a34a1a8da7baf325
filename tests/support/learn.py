"""The ``mlip learn`` command line of the learn tests: EMT on a 4-atom Cu cell, a tiny
committee and few epochs, and the round table it writes."""

from __future__ import annotations

import csv
from pathlib import Path

import ase.io
from ase.build import bulk


def learn_args(tmp_path: Path, out: Path, *extra: str) -> list[str]:
    seed = tmp_path / "cu4.xyz"
    if not seed.exists():
        ase.io.write(seed, bulk("Cu", "fcc", a=3.61, cubic=True))
    return ["learn", "--start", str(seed), "--calculator", "emt", "--out", str(out),
            "--temperature", "300", "1200", "--replicas", "2", "--md-steps", "40",
            "--sample-every", "5", "--per-round", "3", "--rattles", "5", "--committee", "2",
            "--num-channels", "4", "--num-layers", "1", "--l-max", "1", "--max-epochs", "2",
            "--min-force-std", "1e-6", "--diversity", "0.01", "--hessian-fraction", "0.25",
            "--explore-from", "last", "--final-epochs", "0",
            "--no-progress", *extra]  # fmt: skip


def rows(out: Path) -> list[dict]:
    return list(csv.DictReader(open(out / "rounds.csv")))
