"""Training checkpoints, written atomically (:mod:`mlip.fileio`).

Every file is written to a temporary file in the same directory, flushed and fsynced,
then moved over the target with ``os.replace`` (atomic on POSIX), so a crash or a kill
at any moment leaves either the old or the new file, never a torn one.

A checkpoint (``last.ckpt``) holds everything needed to continue a run exactly: model,
EMA, optimizer and scheduler states, the position in the epoch, and the states of all
random streams (torch, CUDA, numpy, python ``random``, the data-order and the probe
generators). It loads with ``torch.load(weights_only=True)``: only tensors and plain
Python values, no pickled code.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from mlip.errors import CheckpointError
from mlip.fileio import atomic_torch_save
from mlip.train.config import TrainConfig, flatten, incompatible_keys

CHECKPOINT_FORMAT = "mlip-train-checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("format", "version", "config", "model", "optimizer", "scheduler", "progress")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a checkpoint dict (see :func:`load_checkpoint`) atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    atomic_torch_save(payload, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint; :class:`CheckpointError` naming the file if missing or corrupt."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for torn/garbage files
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an mlip training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')!r}, supported {CHECKPOINT_VERSION}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return state


# -- random streams -------------------------------------------------------------------


def resume_state(path: str, config: TrainConfig, verbose: bool = True) -> dict | None:
    """The checkpoint at ``path`` to resume ``config``'s run from, or None for a new run.

    Without ``train.resume`` an existing checkpoint is an error (a run is not overwritten);
    with it, a missing one starts a new run (said when ``verbose``) and one whose config
    differs in a key that changes the run raises :class:`CheckpointError` naming the keys.
    """
    exists = os.path.exists(path)
    out = os.path.dirname(path) or "."
    if not config.train.resume:
        if exists:
            raise ValueError(
                f"{out} already holds a run ({os.path.basename(path)}); pass --resume to "
                "continue it or choose another --out"
            )
        return None
    if not exists:
        if verbose:
            print(f"no checkpoint in {out}: starting a new run")
        return None
    state = load_checkpoint(path, map_location="cpu")
    bad = incompatible_keys(state["config"], config.to_dict())
    if bad:
        saved = TrainConfig.from_dict(state["config"], "checkpoint").to_dict()
        old, new = flatten(saved), flatten(config.to_dict())
        details = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in bad)
        raise CheckpointError(
            f"{path}: cannot resume, the config differs from the checkpoint's in {details}"
        )
    return state


def trainer_state(trainer: Any) -> dict[str, Any]:
    """Everything a :class:`~mlip.train.trainer.Trainer` needs to continue exactly: the
    model, best (EMA) weights, EMA, optimiser, schedule and statistics, the position in
    the run and the random streams (global, data order, Hessian probes). Typed ``Any``:
    the trainer imports this module, so importing it here would be a cycle."""
    t = trainer
    return {
        "config": t.config.to_dict(),
        "model": t.model.state_dict(),
        "best_model": t.best_state,
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.schedule.state_dict(),
        "statistics": t.statistics.to_dict() if t.statistics is not None else None,
        "progress": {
            "epoch": t.epoch,
            "batch_in_epoch": t.batch_in_epoch,
            "step": t.step,
            "epoch_order": None if t.epoch_order is None else torch.from_numpy(t.epoch_order),
            "best_loss": t.best_loss,
            "best_epoch": t.best_epoch,
            "bad_validations": t.bad_validations,
            "stage": t.stage,
            "elapsed": t.elapsed,
            "pending_losses": list(t.pending_losses),
        },
        "rng": {
            "global": capture_global_rng(),
            "data_order": generator_state(t.order_rng),
            "probes": generator_state(t.probes.generator),
        },
    }


def restore_trainer(trainer: Any, state: dict[str, Any], where: str) -> None:
    """Load :func:`trainer_state` ``state`` (read from ``where``) into ``trainer``; a
    state that does not fit its model or config raises :class:`CheckpointError`."""
    t = trainer
    try:
        t.model.load_state_dict(state["model"])
        t.optimizer.load_state_dict(state["optimizer"])
        t.schedule.load_state_dict(state["scheduler"])
        if t.ema is not None:
            t.ema.load_state_dict(state["ema"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{where}: does not match this model/config ({err})") from err
    t.best_state = state.get("best_model")
    p = state["progress"]
    t.epoch, t.batch_in_epoch, t.step = p["epoch"], p["batch_in_epoch"], p["step"]
    t.epoch_order = None if p["epoch_order"] is None else p["epoch_order"].numpy()
    t.best_loss, t.best_epoch, t.elapsed = p["best_loss"], p["best_epoch"], p["elapsed"]
    t.pending_losses = list(p["pending_losses"])
    t.bad_validations = int(p["bad_validations"])
    t.stage = int(p["stage"])
    restore_global_rng(state["rng"]["global"])
    set_generator_state(t.order_rng, state["rng"]["data_order"])
    set_generator_state(t.probes.generator, state["rng"]["probes"])


def capture_global_rng() -> dict[str, Any]:
    """States of torch (CPU and CUDA), numpy's global and python's ``random`` streams."""
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global stream, if used)
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_global_rng`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            npy["name"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_state(generator: np.random.Generator) -> dict[str, Any]:
    """A numpy Generator's state as plain values (the 128-bit PCG64 words as strings)."""
    return _stringify(generator.bit_generator.state)


def set_generator_state(generator: np.random.Generator, state: dict[str, Any]) -> None:
    generator.bit_generator.state = _unstringify(state)


def _stringify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return f"int:{value}"
    return value


def _unstringify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unstringify(v) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("int:"):
        return int(value[4:])
    return value
