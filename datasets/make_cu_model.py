"""Train the tiny copper model ``datasets/cu_tiny.pt`` shipped for examples and tests.

An mlip model (8 channels, l <= 1, one interaction layer, r_max 4.5 A: first and
second neighbour shells of fcc Cu; interaction range 4.5 A) trained for a few minutes
on ``datasets/cu_small.h5`` (EMT copper: 60 strained 32-atom cells with stress and 30
cells with a vacancy), one CPU thread, fixed seed. Small enough to ship (< 200 kB) and
to run ``mlip phonons`` on a 3x3x3 supercell of the primitive cell in seconds; not an
accurate potential (its EMT errors are printed at the end).

    python datasets/make_cu_model.py [--minutes 3] [--out datasets/cu_tiny.pt] [--force]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

#: the architecture and recipe of the shipped model (the rest: mlip train's defaults)
SETTINGS = {
    "model.num_channels": 8,
    "model.l_max": 1,
    "model.hidden_l_max": 1,
    "model.num_layers": 1,
    "model.r_max": 4.5,
    "model.radial_hidden": 16,
    "model.readout_hidden": 8,
    "data.train_size": 0.9,
    "data.valid_size": 0.1,
    "data.test_size": 0,
    "loss.hessian_weight": 1.0,
    "train.seed": 0,
    "train.device": "cpu",
    "train.progress": False,
    "train.tensorboard": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training time budget")
    parser.add_argument("--data", default=str(HERE / "cu_small.h5"))
    parser.add_argument("--out", default=str(HERE / "cu_tiny.pt"))
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    args = parser.parse_args()
    if os.path.exists(args.out) and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force to replace it")

    from mlip.fileio import atomic_path
    from mlip.train import run_training
    from mlip.train.config import load_config

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as run:
        values = {
            **SETTINGS,
            "data.paths": [args.data],
            "train.max_time": 60.0 * args.minutes,
            "train.out": run,
        }
        result = run_training(load_config(None, values))
        print(f"{result['epochs']:.0f} epochs, best validation loss {result['best_loss']:.4g}")
        with atomic_path(args.out) as temp:
            shutil.copyfile(os.path.join(run, "model.pt"), temp)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
