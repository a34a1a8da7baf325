"""Train a committee: K members one after another on one split, written as one model file.

``mlip train --committee K [--bootstrap]`` trains K members with the config of a single
run (same data, same train/valid/test split) and seeds ``train.seed + k`` (initial
weights, data order, probes). With ``bootstrap`` each member trains on the distinct
conformers of a draw with replacement from the training split (about 63 % of it; the
duplicates of a classical bootstrap are not weighted). The members share one reading of
the data (one :class:`~mlip.train.data.StructureSource`).

Run directory ``OUT``: ``member_<k>/`` (a complete run directory per member: its
``model.pt``, ``last.ckpt``, ``metrics.csv``...), ``model.pt`` (the committee,
:class:`mlip.committee.Committee`, readable by :func:`mlip.model.load_model` and
:class:`mlip.calculator.MLIPCalculator`), ``committee.json`` (size, bootstrap, finished
members), ``config.yaml``, ``split.json`` and, at the end, ``eval.json`` with the
committee's errors and its calibration (:mod:`mlip.train.calibration`). ``--resume``
keeps the finished members and continues the unfinished one from its ``last.ckpt``.

Fine-tuning (``model.init_from``): from a committee file, member k starts from its
member k (k modulo its size); from a single model, every member starts from it (then
only the data order and bootstrap make them differ).
"""

from __future__ import annotations

import copy
import json
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mlip.committee import Committee, is_committee
from mlip.data.hdf5 import H5Dataset
from mlip.errors import CheckpointError
from mlip.fields import option
from mlip.fileio import atomic_write_text
from mlip.train.config import TrainConfig, save_config
from mlip.train.data import StructureSource
from mlip.train.split import load_split, make_split, read_split_file, save_split

STATE_FILE = "committee.json"


@dataclass(frozen=True)
class CommitteeConfig:
    """``size``: members K (>= 1); ``bootstrap``: each member on a bootstrap draw."""

    size: int = option(
        4,
        "train a committee of K members (seeds seed..seed+K-1, one split) into one model "
        "file with force/energy uncertainties",
        flag="--committee",
        metavar="K",
    )
    bootstrap: bool = option(
        False, "a committee whose members train on bootstrap draws (of 4 without --committee)"
    )

    def check(self) -> CommitteeConfig:
        if self.size < 1:
            raise ValueError(f"committee size must be >= 1, got {self.size}")
        return self


def member_seed(seed: int, k: int) -> int:
    """The seed of member k."""
    return int(seed) + k


def _run_directory(config: TrainConfig) -> str:
    out = config.train.out
    if not out:
        if config.train.resume:
            raise ValueError("--resume needs the run directory (--out DIR)")
        out = os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    return out


def _read_state(path: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not a readable committee state ({err})") from err


def _initial_members(init_from: str | None, size: int) -> list[torch.nn.Module] | None:
    if not init_from:
        return None
    from mlip.model import load_model

    if not os.path.exists(init_from):
        raise CheckpointError(f"model.init_from: model file not found: {init_from}")
    model = load_model(init_from)
    if is_committee(model):
        return [copy.deepcopy(model.members[k % model.num_members]) for k in range(size)]
    warnings.warn(
        f"model.init_from {init_from} is a single model: every member starts from it",
        stacklevel=3,
    )
    return [copy.deepcopy(model) for _ in range(size)]


def train_committee(
    config: TrainConfig, committee: CommitteeConfig, callbacks: list | None = None
) -> dict[str, Any]:
    """Train the committee of ``config`` (see the module docstring); returns a summary
    with ``out``, ``members`` (each member's fit summary) and, when evaluated, ``eval``."""
    from mlip.train import evaluate
    from mlip.train.calibration import committee_calibration, format_calibration
    from mlip.train.trainer import Trainer

    committee.check()
    out = _run_directory(config)
    state_path = os.path.join(out, STATE_FILE)
    resume = config.train.resume and os.path.exists(state_path)
    if os.path.exists(state_path) and not config.train.resume:
        raise ValueError(
            f"{out} already holds a committee ({STATE_FILE}); pass --resume to continue it "
            "or choose another --out"
        )
    state = {"size": committee.size, "bootstrap": committee.bootstrap, "done": []}
    if resume:
        saved = _read_state(state_path)
        if (saved.get("size"), saved.get("bootstrap")) != (committee.size, committee.bootstrap):
            raise CheckpointError(
                f"{state_path}: cannot resume a committee of {saved.get('size')} members "
                f"(bootstrap {saved.get('bootstrap')}) as {committee.size} (bootstrap "
                f"{committee.bootstrap})"
            )
        state = saved
    dataset = H5Dataset(config.data.paths, config.data.groups)
    split_path = os.path.join(out, "split.json")
    if resume:
        split, _ = load_split(split_path)
    elif config.data.split_file:
        split = read_split_file(config.data.split_file, len(dataset))
    else:
        d = config.data
        split = make_split(len(dataset), d.train_size, d.valid_size, d.test_size, config.train.seed)
    initial = _initial_members(config.model.init_from, committee.size)
    cached = np.concatenate([split["train"], split["valid"]])
    source = StructureSource(dataset, cached if config.data.cache else None)
    if not resume and initial is None:  # one auto width for every member
        from mlip.train.distributed import resolve_device
        from mlip.train.recipe import resolve_width

        device = resolve_device(config.train.device)
        choice = resolve_width(config, source, split["train"], dataset.elements, device,
                               getattr(torch, config.train.dtype))  # fmt: skip
        if choice is not None and config.train.progress:
            print(f"width: {choice.describe()}")
    os.makedirs(out, exist_ok=True)
    if not resume:
        meta = {"paths": config.data.paths, "groups": config.data.groups,
                "num_conformers": len(dataset), "seed": config.train.seed}  # fmt: skip
        save_split(split_path, split, meta)
        base = copy.deepcopy(config)
        base.train.out = out
        save_config(base, os.path.join(out, "config.yaml"))
        atomic_write_text(state_path, json.dumps(state, indent=1))
    rng = np.random.default_rng(config.train.seed + 7)
    draws = [
        np.unique(rng.choice(split["train"], len(split["train"]), replace=True))
        for _ in range(committee.size)
    ]
    members, summaries = [], []
    for k in range(committee.size):
        member_out = os.path.join(out, f"member_{k}")
        if k in state["done"]:
            from mlip.model import load_model

            members.append(load_model(os.path.join(member_out, "model.pt")))
            continue
        member_split = dict(split)
        if committee.bootstrap:
            member_split["train"] = draws[k]
        os.makedirs(member_out, exist_ok=True)
        split_file = os.path.join(member_out, "member_split.json")
        if not os.path.exists(split_file):
            save_split(split_file, member_split, {"member": k, "bootstrap": committee.bootstrap})
        member_config = copy.deepcopy(config)
        member_config.train.seed = member_seed(config.train.seed, k)
        member_config.train.out = member_out
        member_config.train.evaluate = False
        member_config.train.resume = os.path.exists(os.path.join(member_out, "last.ckpt"))
        member_config.data.split_file = split_file
        if config.train.progress:
            print(f"committee member {k + 1}/{committee.size} -> {member_out}")
        model = None if initial is None else initial[k]
        trainer = Trainer(member_config, model=model, callbacks=callbacks, source=source)
        summaries.append(trainer.fit())
        members.append(trainer.best_model().double())
        state["done"].append(k)
        atomic_write_text(state_path, json.dumps(state, indent=1))
    model = Committee(members).double().eval()
    model.save(os.path.join(out, "model.pt"))
    result: dict[str, Any] = {"out": out, "members": summaries}
    if config.train.evaluate:
        dtype = torch.float64
        batch = config.data.valid_batch_size
        results = evaluate.evaluate_splits(model, dataset, split, batch, "cpu", dtype)
        calibration = {
            name: committee_calibration(model, dataset.iterate(idx), batch, "cpu", dtype)
            for name, idx in split.items()
            if len(idx)
        }
        print(evaluate.report(results))
        print(format_calibration(calibration))
        evaluate.write_json(
            results,
            os.path.join(out, "eval.json"),
            {"run": out, "model": "model.pt", "committee": committee.size},
            extra={"calibration": calibration},
        )
        evaluate.parity_plots(results, os.path.join(out, "plots"))
        result["eval"] = evaluate.summary(results)
        result["calibration"] = calibration
    dataset.close()
    return result


def committee_state(out: str | None) -> CommitteeConfig | None:
    """The committee of a run directory (its ``committee.json``), None if it holds none."""
    if not out:
        return None
    path = os.path.join(out, STATE_FILE)
    if not os.path.exists(path):
        return None
    state = _read_state(path)
    return CommitteeConfig(int(state["size"]), bool(state["bootstrap"]))
