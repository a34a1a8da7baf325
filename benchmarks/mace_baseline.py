"""MACE measured beside mlip in the same invocation, through MACE's own environment.

mace-torch pins e3nn 0.4.4 (mlip needs e3nn >= 0.5), so MACE runs in a virtual
environment of its own, given to the benchmarks as ``--mace-python PATH`` (that
environment's interpreter). This module is the mlip side: it writes the data MACE reads,
runs MACE's command-line tools as a user types them and reads their results back;
``mace_side.py`` is what runs inside MACE's environment.

Training (``accuracy.py``): the train/valid/test split of the mlip run (its
``split.json``) written as extended XYZ (``REF_energy`` eV, ``REF_forces`` eV/A), then
``mace_run_train`` with :data:`MACE_SETTINGS` (MACE's small-molecule recipe: 32 channels,
max_L 1, correlation 3, r_max 5 A, batch 5, lr 0.01, AMSGrad, EMA 0.99, float64, E0s
averaged over the training set) for the same wall-clock budget as mlip: the clock starts
at MACE's "Started training" line (data loading and statistics are not counted, as mlip's
``--max-time`` does not count them) and the run is stopped when the budget is spent. MACE
checkpoints its EMA weights at each validation improvement (``--keep_checkpoints``); a
second ``mace_run_train --restart_latest`` with ``--max_num_epochs`` at that checkpoint's
epoch trains nothing more and writes the model. ``mace_eval_configs`` then predicts the
test frames in float64, and the errors are computed here with mlip's definitions (energy
MAE per atom, force MAE over components).

Setting up the environment (CPU torch from the local wheel first, so that pip does not
fetch a CUDA build):

    python3 -m venv /path/mace-venv
    /path/mace-venv/bin/pip install torch==2.13.0 && /path/mace-venv/bin/pip install mace-torch
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIDE = os.path.join(HERE, "mace_side.py")
NAME = "mace"
#: MACE's settings for small molecules (rMD17-style data), as its documentation and paper
#: train them; the budget is wall-clock, so there is no epoch count or stage two
MACE_SETTINGS = [
    "--model", "MACE", "--num_channels", "32", "--max_L", "1", "--correlation", "3",
    "--r_max", "5.0", "--batch_size", "5", "--valid_batch_size", "32", "--lr", "0.01",
    "--amsgrad", "--ema", "--ema_decay", "0.99", "--default_dtype", "float64",
    "--E0s", "average", "--error_table", "PerAtomMAE", "--plot", "False",
]  # fmt: skip
STARTED = "Started training"
EPOCH = re.compile(r"Epoch (\d+):")


class MaceError(RuntimeError):
    """MACE's environment or one of its commands failed; the message names the log."""


def environment(threads: int) -> dict[str, str]:
    """The environment of a MACE process: ``threads`` OpenMP/MKL threads."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def versions(python: str) -> dict[str, str]:
    """MACE's, e3nn's and torch's versions in the environment of ``python``."""
    try:
        done = subprocess.run(
            [python, SIDE, "versions"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise MaceError(
            f"--mace-python {python}: cannot import mace there ({detail.strip()[-300:]}); "
            "make the environment as benchmarks/mace_baseline.py says"
        ) from None
    return json.loads(done.stdout)


def write_extxyz(path: str, structures: Sequence[Any], name: str | None = None) -> None:
    """mlip Structures as extended XYZ with MACE's label keys (``REF_energy`` eV,
    ``REF_forces`` eV/A, ``REF_stress`` eV/A^3 where present)."""
    import ase.io

    frames = []
    for s in structures:
        atoms = s.to_atoms()
        atoms.info["REF_energy"] = float(s.energy)
        if s.forces is not None:
            atoms.arrays["REF_forces"] = np.asarray(s.forces, dtype=np.float64)
        if s.stress is not None:
            atoms.info["REF_stress"] = np.asarray(s.stress, dtype=np.float64)
        if name is not None:
            atoms.info["name"] = name
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def write_split(run: str, out: str) -> dict[str, str]:
    """The train/valid/test conformers of the mlip run ``run`` (its ``split.json``, over
    the files and groups it records) as ``OUT/{train,valid,test}.xyz``."""
    from mlip.data.hdf5 import H5Dataset
    from mlip.train.split import load_split

    split, meta = load_split(os.path.join(run, "split.json"))
    dataset = H5Dataset(meta["paths"], meta["groups"])
    if len(dataset) != meta["num_conformers"]:
        raise MaceError(f"{run}/split.json indexes {meta['num_conformers']} conformers, "
                        f"its data holds {len(dataset)}")  # fmt: skip
    os.makedirs(out, exist_ok=True)
    files = {}
    try:
        for key in ("train", "valid", "test"):
            files[key] = os.path.join(out, f"{key}.xyz")
            write_extxyz(files[key], dataset.get_many(split[key]))
    finally:
        dataset.close()
    return files


def train_arguments(files: dict[str, str], workdir: str, seed: int) -> list[str]:
    """``mace_run_train``'s arguments for the split ``files`` in ``workdir``."""
    return [
        "--name", NAME, "--work_dir", workdir, "--seed", str(seed), "--device", "cpu",
        "--train_file", files["train"], "--valid_file", files["valid"],
        "--test_file", files["test"], "--energy_key", "REF_energy",
        "--forces_key", "REF_forces", "--keep_checkpoints", *MACE_SETTINGS,
    ]  # fmt: skip


def train(
    python: str,
    files: dict[str, str],
    workdir: str,
    minutes: float,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Train MACE for ``minutes`` of training (after its start-up) and write its model.

    Returns the model path, the epochs run, the epoch of the kept (best validation, EMA)
    checkpoint and the minutes of training and in all. Raises :class:`MaceError` naming
    the log when MACE fails or saves no checkpoint within the budget.
    """
    os.makedirs(workdir, exist_ok=True)
    log_path = os.path.join(workdir, "mace_train.log")
    command = [python, "-m", "mace.cli.run_train", *train_arguments(files, workdir, seed)]
    print("+ " + " ".join(command + ["--max_num_epochs", "1000000"]), flush=True)
    began = time.monotonic()
    started: list[float] = []
    epochs: list[int] = []
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command + ["--max_num_epochs", "1000000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment(threads),
            cwd=workdir,
        )

        def pump() -> None:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if STARTED in line and not started:
                    started.append(time.monotonic())
                found = EPOCH.search(line)
                if found:
                    epochs.append(int(found.group(1)))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        while process.poll() is None:
            if started and time.monotonic() - started[0] >= 60.0 * minutes:
                break
            time.sleep(0.5)
        stopped = process.poll() is None
        if stopped:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        ended = time.monotonic()
        reader.join(10)
    if not started or (not stopped and process.returncode != 0):
        raise MaceError(f"mace_run_train failed (exit {process.returncode}); see {log_path}")
    epoch = _last_good_checkpoint(os.path.join(workdir, "checkpoints"), log_path)
    final_log = os.path.join(workdir, "mace_final.log")
    _run(
        [*command, "--restart_latest", "--max_num_epochs", str(epoch)],
        final_log,
        threads,
        workdir,
    )
    model = os.path.join(workdir, f"{NAME}.model")
    if not os.path.exists(model):
        raise MaceError(f"mace_run_train wrote no {model}; see {final_log}")
    return {
        "model": model,
        "epochs": (max(epochs) + 1) if epochs else 0,
        "best_epoch": epoch,
        "train_minutes": (ended - started[0]) / 60.0,
        "wall_minutes": (ended - began) / 60.0,
        "stopped_by_budget": stopped,
    }


def _last_good_checkpoint(folder: str, log_path: str) -> int:
    """The epoch of the newest checkpoint that loads; newer unreadable ones (a stop
    while writing) are removed so that ``--restart_latest`` takes the good one."""
    import torch

    found = []
    for path in glob.glob(os.path.join(folder, f"{NAME}_run-*_epoch-*.pt")):
        match = re.search(r"_epoch-(\d+)\.pt$", path)
        if match:
            found.append((int(match.group(1)), path))
    for epoch, path in sorted(found, reverse=True):
        try:
            torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 (a half-written file: any unpickling error)
            os.remove(path)
            continue
        return epoch
    raise MaceError(
        f"MACE saved no checkpoint within the budget (is it shorter than one epoch?); "
        f"see {log_path}"
    )


def _run(command: list[str], log_path: str, threads: int, cwd: str) -> None:
    print("+ " + " ".join(command), flush=True)
    with open(log_path, "w") as log:
        done = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment(threads), cwd=cwd
        )
    if done.returncode != 0:
        raise MaceError(f"{' '.join(command[:3])} failed (exit {done.returncode}); see {log_path}")


def evaluate(python: str, model: str, test: str, workdir: str, threads: int = 1) -> dict:
    """Test errors of the MACE ``model`` on the frames of ``test`` (extended XYZ with
    ``REF_*`` labels), predicted by ``mace_eval_configs`` in float64: energy MAE
    (meV/atom), force MAE over components (meV/A) and the frame count."""
    import ase.io

    predicted = os.path.join(workdir, "test_predicted.xyz")
    _run(
        [python, "-m", "mace.cli.eval_configs", "--configs", test, "--model", model,
         "--output", predicted, "--device", "cpu", "--default_dtype", "float64"],
        os.path.join(workdir, "mace_eval.log"),
        threads,
        workdir,
    )  # fmt: skip
    return test_errors(ase.io.read(test, ":"), ase.io.read(predicted, ":"))


def test_errors(reference: Sequence[Any], predicted: Sequence[Any]) -> dict[str, float]:
    """Energy MAE per atom (meV/atom) and force MAE over components (meV/A) of MACE's
    predictions (``MACE_energy``, ``MACE_forces``) against ``REF_*`` labels."""
    if len(reference) != len(predicted):
        raise MaceError(f"{len(predicted)} predictions for {len(reference)} test frames")
    energy, forces = [], []
    for ref, pred in zip(reference, predicted, strict=True):
        n = len(ref)
        energy.append(abs(pred.info["MACE_energy"] - ref.info["REF_energy"]) / n)
        forces.append(np.abs(pred.arrays["MACE_forces"] - ref.arrays["REF_forces"]).ravel())
    return {
        "energy_mae": 1000.0 * float(np.mean(energy)),
        "forces_mae": 1000.0 * float(np.mean(np.concatenate(forces))),
        "test_count": len(reference),
    }


def hessian(python: str, model: str, structure: Any, workdir: str) -> np.ndarray:
    """MACE's Hessian (eV/A^2, (3N, 3N)) of ``model`` at the geometry of the mlip
    Structure ``structure``."""
    path = os.path.join(workdir, "minimum.xyz")
    write_extxyz(path, [structure])
    out = os.path.join(workdir, "minimum_hessian.npy")
    _run(
        [python, SIDE, "hessian", "--model", model, "--structure", path, "--out", out],
        os.path.join(workdir, "mace_hessian.log"),
        1,
        workdir,
    )
    return np.load(out)


def timings(
    python: str, model: str, structures: dict[str, Any], workdir: str, repeats: int, threads: int
) -> dict:
    """MACE's ms per energy+forces call and per Hessian (``mace_side.py time``) of each
    ``ase.Atoms`` of ``structures`` (name -> atoms)."""
    import ase.io

    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "structures.xyz")
    frames = []
    for name, atoms in structures.items():
        atoms = atoms.copy()
        atoms.info["name"] = name
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    out = os.path.join(workdir, "timings.json")
    _run(
        [python, SIDE, "time", "--model", model, "--structures", path,
         "--repeats", str(repeats), "--threads", str(threads), "--out", out],
        os.path.join(workdir, "mace_time.log"),
        threads,
        workdir,
    )  # fmt: skip
    with open(out) as handle:
        return json.load(handle)


def timing_model(python: str, data: str, workdir: str, threads: int) -> str:
    """A MACE model of :data:`MACE_SETTINGS` for timing only: one epoch on 20 conformers
    of ``data`` (the shipped ethanol subset: H, C, O), since the cost of a call does not
    depend on the weights."""
    from mlip.data.hdf5 import H5Dataset

    os.makedirs(workdir, exist_ok=True)
    dataset = H5Dataset(data, ["ethanol"])
    try:
        files = {}
        for key, rows in (("train", range(0, 15)), ("valid", range(15, 20))):
            files[key] = os.path.join(workdir, f"{key}.xyz")
            write_extxyz(files[key], dataset.get_many(rows))
    finally:
        dataset.close()
    files["test"] = files["valid"]
    args = train_arguments(files, workdir, 0)
    _run(
        [python, "-m", "mace.cli.run_train", *args, "--max_num_epochs", "1"],
        os.path.join(workdir, "mace_train.log"),
        threads,
        workdir,
    )
    return os.path.join(workdir, f"{NAME}.model")


if __name__ == "__main__":
    print(json.dumps(versions(sys.argv[1] if len(sys.argv) > 1 else sys.executable)))
