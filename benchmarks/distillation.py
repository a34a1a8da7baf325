"""Distillation: a fast specialised mlip model from a universal potential (SevenNet-0).

The commands a user types, with a universal potential as the labeller:

1. geometries: the conformers of the shipped ``datasets/ethanol_small.h5`` (500 K
   GFN2-xTB MD; only the geometries are used), ``--train`` for training, the last
   ``--test`` for testing, written as extended XYZ;
2. ``mlip label GEOMETRIES.xyz OUT.h5 --calculator sevenn:7net-0`` on them, with
   ``--hessian`` (central finite differences of the teacher's forces) on the first
   ``--hessians`` training conformers and on the teacher's own minimum (the shipped
   minimum relaxed by the teacher, ASE BFGS);
3. ``mlip train --data ... --max-time`` with the defaults;
4. the student against the teacher: test force MAE (meV/A) and energy MAE (meV/atom),
   harmonic frequencies at the teacher's minimum (the student's exact Hessian against
   the teacher's finite-difference one; MAE over all modes, below 1000 cm^-1, largest
   error), and the cost of one energy + forces call of each, both ASE calculators on
   the same molecule and thread count (median of ``--calls``), measured in this run.

    pip install sevenn     # or pip install 'mlip[sevenn]'
    python benchmarks/distillation.py --out runs/distill --minutes 5

Units: eV, Angstrom, amu; frequencies cm^-1; times ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from common import ROOT, SOFT_MODE_CUTOFF, frequency_errors

SHIPPED = os.path.join(ROOT, "datasets", "ethanol_small.h5")


def write_geometries(path: str, structures: list) -> None:
    import ase.io

    ase.io.write(path, [s.to_atoms() for s in structures], format="extxyz")


def teacher_minimum(spec: str, start, path: str, fmax: float) -> None:  # noqa: ANN001
    """The shipped minimum relaxed by the teacher (BFGS to ``fmax`` eV/A), as XYZ."""
    import ase.io
    from ase.optimize import BFGS

    from mlip.labelling import make_labeller

    if os.path.exists(path):
        return
    atoms = start.copy()
    atoms.calc = make_labeller(spec).calculator
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=500)
    atoms.calc = None
    ase.io.write(path + ".tmp.xyz", atoms, format="extxyz")
    os.replace(path + ".tmp.xyz", path)


def call_ms(calculator, atoms, calls: int) -> float:  # noqa: ANN001
    """Median ms of an energy + forces call (a new geometry each call, after one warm-up)."""
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(0)
    times = []
    for k in range(calls + 1):
        atoms.positions += 0.001 * rng.standard_normal(atoms.positions.shape)
        start = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        if k:
            times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/distill")
    p.add_argument("--teacher", default="sevenn:7net-0", help="calculator spec of the teacher")
    p.add_argument("--train", type=int, default=250, help="training conformers")
    p.add_argument("--test", type=int, default=50, help="test conformers (the last ones)")
    p.add_argument("--hessians", type=int, default=25, help="training conformers with Hessians")
    p.add_argument("--minutes", type=float, default=5.0, help="mlip train --max-time, minutes")
    p.add_argument("--calls", type=int, default=20, help="timed calls per calculator")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from mlip.calculator import MLIPCalculator
    from mlip.cli import main as mlip
    from mlip.data.formats import read_mlip
    from mlip.data.spec import read_frames
    from mlip.labelling import make_labeller
    from mlip.model import load_model

    os.makedirs(args.out, exist_ok=True)
    path = lambda name: os.path.join(args.out, name)  # noqa: E731
    conformers = read_frames(f"{SHIPPED}:ethanol")
    if args.train + args.test > len(conformers) or args.hessians > args.train:
        p.error(f"{SHIPPED} holds {len(conformers)} conformers; need --train + --test <= that "
                "and --hessians <= --train")  # fmt: skip
    write_geometries(path("hessian.xyz"), conformers[: args.hessians])
    write_geometries(path("train.xyz"), conformers[args.hessians : args.train])
    write_geometries(path("test.xyz"), conformers[len(conformers) - args.test :])
    minimum = read_frames(f"{SHIPPED}:ethanol_minimum")[0].to_atoms()
    teacher_minimum(args.teacher, minimum, path("minimum.xyz"), fmax=1e-3)

    start = time.perf_counter()
    labels = {"hessian": True, "train": False, "test": False, "minimum": True}
    for name, hessian in labels.items():
        command = ["label", path(f"{name}.xyz"), path(f"teacher_{name}.h5"),
                   "--calculator", args.teacher, "--no-progress"]  # fmt: skip
        command += ["--hessian"] if hessian else []
        print("mlip " + " ".join(command), flush=True)
        if mlip(command) != 0:
            return 1
    label_s = time.perf_counter() - start
    student = path("student")
    train = ["train", "--data", path("teacher_train.h5"), path("teacher_hessian.h5"),
             "--train-size", "0.9", "--valid-size", "0.1", "--test-size", "0",
             "--max-time", f"{60 * args.minutes:g}", "--out", student, "--no-progress"]  # fmt: skip
    if os.path.exists(os.path.join(student, "last.ckpt")):
        train.append("--resume")
    print("mlip " + " ".join(train), flush=True)
    if not os.path.exists(os.path.join(student, "eval.json")) and mlip(train) != 0:
        return 1

    model = load_model(os.path.join(student, "model.pt"))
    calculator = MLIPCalculator(model, dtype="float64")
    (test,) = read_mlip(path("teacher_test.h5"))
    force_errors, energy_errors = [], []
    for s in test.structures:
        atoms = s.to_atoms()
        atoms.calc = calculator
        force_errors.append(np.abs(atoms.get_forces() - s.forces).ravel())
        energy_errors.append((atoms.get_potential_energy() - s.energy) / len(atoms))
    energy_errors = np.asarray(energy_errors)

    (minimum_group,) = read_mlip(path("teacher_minimum.h5"))
    freq = frequency_errors(model, path("teacher_minimum.h5"), minimum_group.name)
    atoms = minimum_group.structures[0].to_atoms()

    teacher_ms = call_ms(make_labeller(args.teacher).calculator, atoms, args.calls)
    student_ms = call_ms(calculator, atoms, args.calls)
    student32_ms = call_ms(MLIPCalculator(model, dtype="float32"), atoms, args.calls)
    result = {
        "teacher": args.teacher,
        "labels": args.train,
        "hessian_labels": args.hessians,
        "label_wall_s": label_s,
        "test_forces_mae": 1000.0 * float(np.concatenate(force_errors).mean()),
        "test_energy_mae_per_atom": 1000.0 * float(np.abs(energy_errors).mean()),
        "test_energy_offset_per_atom": 1000.0 * float(energy_errors.mean()),
        **freq,
        "teacher_ms": teacher_ms,
        "student_ms_float64": student_ms,
        "student_ms_float32": student32_ms,
        "threads": args.threads,
    }
    print(f"\n{args.teacher} -> mlip (defaults, {args.minutes:g} min): {args.train} training "
          f"labels, {args.hessians} of them with finite-difference Hessians; test: "
          f"{len(test.structures)} conformers and the teacher's minimum (its finite-difference "
          f"Hessian); labelling took {label_s:.0f} s\n")  # fmt: skip
    print("| quantity | student vs teacher |")
    print("| --- | ---: |")
    print(f"| test force MAE (meV/A) | {result['test_forces_mae']:.1f} |")
    print(f"| test energy MAE (meV/atom) | {result['test_energy_mae_per_atom']:.2f} |")
    modes = f"{freq['freq_mae']:.1f} / {freq['freq_mae_soft']:.1f} / {freq['freq_max_error']:.1f}"
    print(f"| frequencies at the teacher's minimum: MAE / <{SOFT_MODE_CUTOFF:g} / max (cm^-1) "
          f"| {modes} |")  # fmt: skip
    print(f"| imaginary modes (student) | {freq['num_imaginary']} |")
    print(f"\n| one energy + forces call, ethanol, {args.threads} thread(s) | ms | vs teacher |")
    print("| --- | ---: | ---: |")
    print(f"| teacher {args.teacher} | {teacher_ms:.1f} | 1 |")
    for name, ms in (("mlip, float64", student_ms), ("mlip, float32", student32_ms)):
        print(f"| {name} | {ms:.1f} | {teacher_ms / ms:.1f}x faster |")
    with open(path("distillation.json"), "w") as handle:
        json.dump(result, handle, indent=1)
    print(f"\n{path('distillation.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
