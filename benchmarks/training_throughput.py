"""Training throughput (conformers per second) with and without the Hessian term.

Times real optimiser steps of :class:`mlip.train.trainer.Trainer` (``train_step``:
forward, forces, K Hessian-vector probes on the conformers that carry a Hessian when
the Hessian term is on, loss, backward, gradient clipping, Adam, learning-rate
schedule, EMA) on ethanol (GFN2-xTB, ``ethanol_xtb.h5``) for batch sizes 5 and 16,
float32 and float64, with the Hessian term (default weight, K = each of ``--probes``) and
without it (weight 0). Two kinds of batches (``--batches``):

* ``worst``: every conformer of the batch carries a reference Hessian (the worst case
  for the Hessian term);
* ``mixed``: the batches of training epochs over all training conformers, of which
  about 10% carry a Hessian, as the trainer forms them (``Trainer._epoch_order``): with
  the Hessian term on, batches hold only conformers with a Hessian or only conformers
  without, so about 10% of the steps pay for the probes; without it, plain shuffles.

The worst-case batches are the same with and without the Hessian term; the mixed ones
are epochs of the same sizes and label shares. The model and loss are the defaults of
``mlip train``. Each row: ``--warmup`` untimed steps, then ``--steps`` timed ones;
throughput = steps x batch / time. Timings of a machine shared with other jobs are
noisy; rerun the rows you quote.

    python benchmarks/training_throughput.py                  # CPU, about 2 min
    python benchmarks/training_throughput.py --device cuda --steps 50 --probes 1 2

The issue expects the Hessian term to cost less than 2x per step.

With ``--systems``, it times whole epochs of the ``mlip train`` command instead: atoms
per second per epoch on Cu (dense periodic cells), ethanol and aspirin, for this
checkout and, with ``--baseline REV``, for another git revision in the same invocation
(:mod:`epoch_timing`); extra ``mlip train`` options go after ``--``:

    python benchmarks/training_throughput.py --systems cu ethanol --baseline 10846f0 \
        --threads 2 -- --num-channels 64
"""

from __future__ import annotations

import argparse
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


@dataclass
class Row:
    """One measurement: seconds per optimiser step and conformers per second.

    ``batches`` is ``"worst"`` or ``"mixed"``, ``probes`` the K of the Hessian term (0
    without it), ``hessian_share`` the fraction of timed conformers carrying a Hessian.
    """

    dtype: str
    batch_size: int
    batches: str
    hessian: bool
    probes: int
    steps: int
    seconds: float
    hessian_share: float

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
    """A Trainer of the default recipe on ``pool`` training conformers; the Hessian term
    at its default weight or off."""
    from mlip.train.config import TrainConfig, load_config
    from mlip.train.trainer import Trainer

    weight = TrainConfig().loss.hessian_weight if hessian else 0.0
    config = load_config(
        None,
        {
            "data.paths": [data],
            "data.groups": [group],
            "data.train_size": pool,
            "data.valid_size": 1,
            "data.test_size": 0,
            "loss.hessian_weight": weight,
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


def make_batches(
    trainer,  # noqa: ANN001 (Trainer)
    kind: str,
    batch_size: int,
    count: int,
) -> list[np.ndarray]:
    """``count`` batches of training conformers: ``worst`` (all with a Hessian, cycled)
    or ``mixed`` (consecutive epochs in the trainer's own order, full batches only)."""
    train = trainer.split["train"]
    if kind == "mixed":
        batches: list[np.ndarray] = []
        while len(batches) < count:
            order = trainer._epoch_order(train, batch_size)
            full = len(order) // batch_size
            batches.extend(order[: full * batch_size].reshape(full, batch_size))
        return batches[:count]
    if kind != "worst":
        raise ValueError(f"batch kind must be 'worst' or 'mixed', got {kind!r}")
    with_hessian = train[trainer.dataset.hessian_mask[train]]
    if len(with_hessian) < batch_size:
        raise ValueError(
            f"only {len(with_hessian)} training conformers carry a Hessian, fewer than the "
            f"batch size {batch_size}; give a larger --pool"
        )
    distinct = len(with_hessian) // batch_size
    return [with_hessian[(k % distinct) * batch_size :][:batch_size] for k in range(count)]


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_steps(  # noqa: ANN001
    trainer, batches: list[np.ndarray], warmup: int, clock: str = "wall"
) -> float:
    """Seconds for the train steps on ``batches[warmup:]``, after ``warmup`` untimed ones.

    ``clock="cpu"``: this process's CPU seconds (with one torch thread the same as wall
    time on a quiet machine, and hardly changed by other jobs sharing the cores)."""
    for batch in batches[:warmup]:
        trainer.train_step(batch)
    synchronize = torch.cuda.synchronize if trainer.device.type == "cuda" else lambda: None
    synchronize()
    now = CLOCKS[clock]
    start = now()
    for batch in batches[warmup:]:
        trainer.train_step(batch)
    synchronize()
    return now() - start


def measure(
    data: str,
    group: str = "ethanol",
    batch_sizes: tuple[int, ...] = (5, 16),
    dtypes: tuple[str, ...] = ("float32", "float64"),
    probes: tuple[int, ...] = (1, 2),
    kinds: tuple[str, ...] = ("worst", "mixed"),
    steps: int = 20,
    warmup: int = 3,
    pool: int = 600,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
    clock: str = "wall",
) -> list[Row]:
    """All rows: per dtype one Trainer without the Hessian term and one per K (same seed);
    every batch kind and size, the same batches for each Trainer."""
    rows = []
    for dtype in dtypes:
        for k in (0, *probes):
            with tempfile.TemporaryDirectory(prefix="throughput_") as out:
                trainer = build_trainer(
                    data, group, dtype, k > 0, max(k, 1), pool, out, device, overrides
                )
                mask = trainer.dataset.hessian_mask
                for kind in kinds:
                    for batch_size in batch_sizes:
                        batches = make_batches(trainer, kind, batch_size, warmup + steps)
                        seconds = time_steps(trainer, batches, warmup, clock)
                        share = float(np.mean(mask[np.concatenate(batches[warmup:])]))
                        rows.append(Row(dtype, batch_size, kind, k > 0, k, steps, seconds, share))
                trainer.dataset.close()
    return rows


def ratios(rows: list[Row]) -> dict[tuple[str, int, str, int], float]:
    """Step time with the Hessian term over step time without, per (dtype, batch size,
    batch kind, K)."""
    base = {(r.dtype, r.batch_size, r.batches): r.seconds / r.steps for r in rows if not r.hessian}
    return {
        (r.dtype, r.batch_size, r.batches, r.probes): (r.seconds / r.steps)
        / base[(r.dtype, r.batch_size, r.batches)]
        for r in rows
        if r.hessian and (r.dtype, r.batch_size, r.batches) in base
    }


def format_table(rows: list[Row]) -> str:
    """Markdown table of every row, then the with/without-Hessian ratios."""
    lines = [
        "| dtype | batch | batches | Hessian share | K | ms / step | conformers / s |",
        "|:---|---:|:---|---:|---:|---:|---:|",
    ]
    for r in rows:
        k = str(r.probes) if r.hessian else "off"
        lines.append(
            f"| {r.dtype} | {r.batch_size} | {r.batches} | {r.hessian_share:.0%} | {k} "
            f"| {r.step_ms:.1f} | {r.rate:.1f} |"
        )
    lines += [
        "",
        "| dtype | batch | batches | K | step time with / without Hessian term |",
        "|:---|---:|:---|---:|---:|",
    ]
    for (dtype, batch, kind, k), ratio in ratios(rows).items():
        lines.append(f"| {dtype} | {batch} | {kind} | {k} | {ratio:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", default=DATA)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[5, 16])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                   choices=["float32", "float64"])  # fmt: skip
    p.add_argument("--probes", type=int, nargs="+", default=[1, 2],
                   help="Hessian probes K per conformer (one row set per K)")  # fmt: skip
    p.add_argument("--batches", nargs="+", default=["worst", "mixed"],
                   choices=["worst", "mixed"], help="batch kinds (see above)")  # fmt: skip
    p.add_argument(
        "--steps",
        type=int,
        default=50,
        help="timed steps per row (mixed: about 10%% of them probed)",
    )
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    pool_help = "training conformers of the Trainer (about 10%% carry a Hessian)"
    p.add_argument("--pool", type=int, default=600, help=pool_help)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    clock_help = "wall time, or this process's CPU time (one thread on a shared machine)"
    p.add_argument("--clock", choices=list(CLOCKS), default="wall", help=clock_help)
    p.add_argument(
        "--systems",
        nargs="+",
        choices=["cu", "ethanol", "aspirin"],
        help="time epochs of mlip train on these systems instead (see above)",
    )
    p.add_argument("--baseline", help="git revision to time beside this checkout")
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (the first untimed)")
    p.add_argument("--train-size", type=int, default=1000, help="training conformers")
    p.add_argument("--repeats", type=int, default=2, help="runs per system and checkout")
    p.add_argument("extra", nargs="*", help="further mlip train options (after --)")
    args = p.parse_args(argv)
    if args.systems:
        return epoch_rates(args)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = measure(
        os.path.join(args.data_dir, "ethanol_xtb.h5"),
        batch_sizes=tuple(args.batch_sizes),
        dtypes=tuple(args.dtypes),
        probes=tuple(args.probes),
        kinds=tuple(args.batches),
        steps=args.steps,
        warmup=args.warmup,
        pool=args.pool,
        device=args.device,
        clock=args.clock,
    )
    total = time.perf_counter() - start
    print(f"ethanol, {args.device}, {torch.get_num_threads()} thread(s), K = {args.probes}, "
          f"{args.steps} timed steps per row, {args.clock} clock "
          f"({total:.0f} s in all)")  # fmt: skip
    print(format_table(rows))
    found = ratios(rows)
    for kind in args.batches:
        worst = max((v for key, v in found.items() if key[2] == kind), default=float("nan"))
        verdict = "under" if worst < 2.0 else "NOT under"
        print(f"largest cost of the Hessian term, {kind} batches: {worst:.2f}x "
              f"({verdict} the expected 2x)")  # fmt: skip
    return 0 if found and all(np.isfinite(v) for v in found.values()) else 1


def epoch_rates(args: argparse.Namespace) -> int:
    """The ``--systems`` mode: atoms per second per epoch, this checkout and a baseline."""
    from epoch_timing import compare, format_rates, spread

    print(f"mlip train epochs: {args.systems}, {args.train_size} conformers, "
          f"{args.epochs} epochs a run, {args.threads} thread(s), extra {args.extra}")  # fmt: skip
    rates = compare(args.systems, args.baseline, args.data_dir, args.train_size,
                    args.epochs, args.threads, args.repeats, args.extra)  # fmt: skip
    print(format_rates(rates))
    print(f"largest spread between repeats: {spread(rates):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
