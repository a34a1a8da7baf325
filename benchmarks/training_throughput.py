"""Training throughput (conformers per second) with and without the Hessian term.

Times real optimiser steps of :class:`mlip.train.trainer.Trainer` (``train_step``:
forward, forces, K Hessian-vector probes when the Hessian term is on, loss, backward,
gradient clipping, Adam, learning-rate schedule, EMA) on ethanol (GFN2-xTB,
``ethanol_xtb.h5``) for batch sizes 5 and 16, float32 and float64, with the Hessian
term (weight 100, K = ``--probes`` probes) and without it (weight 0). Every timed batch
holds only conformers that carry a reference Hessian, the worst case for the Hessian
term; the same batches are used without it. The model is that of
benchmarks/accuracy.py's SETTINGS. Each row: ``--warmup`` untimed steps, then
``--steps`` timed ones; throughput = steps x batch / time.

    python benchmarks/training_throughput.py                  # CPU, about 30 s
    python benchmarks/training_throughput.py --device cuda --steps 50

The issue expects the Hessian term to cost less than 2x per step.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data")


def _accuracy_settings() -> dict[str, Any]:
    """The model/optimiser SETTINGS of benchmarks/accuracy.py (a sibling script)."""
    spec = importlib.util.spec_from_file_location("_accuracy", os.path.join(HERE, "accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SETTINGS)


@dataclass
class Row:
    """One measurement: seconds per optimiser step and conformers per second."""

    dtype: str
    batch_size: int
    hessian: bool
    steps: int
    seconds: float

    @property
    def step_ms(self) -> float:
        return 1000.0 * self.seconds / self.steps

    @property
    def rate(self) -> float:
        """Conformers per second."""
        return self.steps * self.batch_size / self.seconds


def build_trainer(
    data: str,
    group: str,
    dtype: str,
    hessian: bool,
    probes: int,
    pool: int,
    out: str,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
):  # noqa: ANN201 (-> Trainer)
    """A Trainer on ``pool`` training conformers; Hessian weight 100 or 0."""
    from mlip.train.config import load_config
    from mlip.train.trainer import Trainer

    config = load_config(
        None,
        {
            **_accuracy_settings(),
            "data.paths": [data],
            "data.groups": [group],
            "data.train_size": pool,
            "data.valid_size": 1,
            "data.test_size": 0,
            "loss.hessian_weight": 100.0 if hessian else 0.0,
            "loss.hessian_probes": probes,
            "train.dtype": dtype,
            "train.device": device,
            "train.out": out,
            "train.progress": False,
            "train.tensorboard": False,
            **(overrides or {}),
        },
    )
    return Trainer(config)


def time_steps(trainer, batch_size: int, steps: int, warmup: int) -> float:  # noqa: ANN001
    """Seconds for ``steps`` train steps on Hessian-carrying batches, after ``warmup``."""
    train = trainer.split["train"]
    with_hessian = train[trainer.dataset.hessian_mask[train]]
    if len(with_hessian) < batch_size:
        raise ValueError(
            f"only {len(with_hessian)} training conformers carry a Hessian, fewer than the "
            f"batch size {batch_size}; give a larger --pool"
        )
    count = len(with_hessian) // batch_size
    batches = [with_hessian[k * batch_size : (k + 1) * batch_size] for k in range(count)]
    for k in range(warmup):
        trainer.train_step(batches[k % count])
    synchronize = torch.cuda.synchronize if trainer.device.type == "cuda" else lambda: None
    synchronize()
    start = time.perf_counter()
    for k in range(steps):
        trainer.train_step(batches[(warmup + k) % count])
    synchronize()
    return time.perf_counter() - start


def measure(
    data: str,
    group: str = "ethanol",
    batch_sizes: tuple[int, ...] = (5, 16),
    dtypes: tuple[str, ...] = ("float32", "float64"),
    probes: int = 2,
    steps: int = 20,
    warmup: int = 3,
    pool: int = 600,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
) -> list[Row]:
    """All rows: per dtype and Hessian term one Trainer (same seed), every batch size."""
    rows = []
    for dtype in dtypes:
        for hessian in (False, True):
            with tempfile.TemporaryDirectory(prefix="throughput_") as out:
                trainer = build_trainer(
                    data, group, dtype, hessian, probes, pool, out, device, overrides
                )
                for batch_size in batch_sizes:
                    seconds = time_steps(trainer, batch_size, steps, warmup)
                    rows.append(Row(dtype, batch_size, hessian, steps, seconds))
                trainer.dataset.close()
    return rows


def ratios(rows: list[Row]) -> dict[tuple[str, int], float]:
    """Step time with the Hessian term over step time without, per (dtype, batch size)."""
    times = {(r.dtype, r.batch_size, r.hessian): r.seconds / r.steps for r in rows}
    return {
        (d, b): times[(d, b, True)] / times[(d, b, False)]
        for (d, b, h) in times
        if h and (d, b, False) in times
    }


def format_table(rows: list[Row]) -> str:
    """Markdown table of every row, then the with/without-Hessian ratios."""
    lines = [
        "| dtype | batch | Hessian term | ms / step | conformers / s |",
        "|:---|---:|:---|---:|---:|",
    ]
    for r in rows:
        term = "yes" if r.hessian else "no"
        lines.append(f"| {r.dtype} | {r.batch_size} | {term} | {r.step_ms:.1f} | {r.rate:.1f} |")
    lines += ["", "| dtype | batch | step time with / without Hessian term |", "|:---|---:|---:|"]
    for (dtype, batch), ratio in ratios(rows).items():
        lines.append(f"| {dtype} | {batch} | {ratio:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", default=DATA)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[5, 16])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                   choices=["float32", "float64"])  # fmt: skip
    p.add_argument("--probes", type=int, default=2, help="Hessian probes K per conformer")
    p.add_argument("--steps", type=int, default=20, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    pool_help = "training conformers of the Trainer (about 10%% carry a Hessian)"
    p.add_argument("--pool", type=int, default=600, help=pool_help)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = measure(
        os.path.join(args.data_dir, "ethanol_xtb.h5"),
        batch_sizes=tuple(args.batch_sizes),
        dtypes=tuple(args.dtypes),
        probes=args.probes,
        steps=args.steps,
        warmup=args.warmup,
        pool=args.pool,
        device=args.device,
    )
    total = time.perf_counter() - start
    print(f"ethanol, {args.device}, {torch.get_num_threads()} thread(s), K = {args.probes}, "
          f"{args.steps} timed steps per row ({total:.0f} s in all)")  # fmt: skip
    print(format_table(rows))
    worst = max(ratios(rows).values(), default=float("nan"))
    verdict = "under" if worst < 2.0 else "NOT under"
    print(f"\nlargest cost of the Hessian term: {worst:.2f}x ({verdict} the expected 2x)")
    return 0 if np.isfinite(worst) else 1


if __name__ == "__main__":
    sys.exit(main())
