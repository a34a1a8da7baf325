"""``mlip learn``: from a few structures and a labeller to a trusted committee, in rounds.

Round 0 labels ``rattles`` copies of each seed (the seed itself and Gaussian rattles of
``rattle_std`` A, growing to ``rattle_max_std``) and trains the first committee. Each
later round

1. explores: batched MD of the seeds at every temperature with the current committee
   (:mod:`mlip.learn.explore`), frames above ``min_force_std`` are candidates;
2. selects at most ``per_round`` of them (and no more than the budget left) inside the
   trust window [``min_force_std``, ``max_force_std``], most uncertain first, then, if
   the window does not fill the round, above it, nearest first, no near-duplicates
   (:mod:`mlip.learn.select`); when MD was cut short (a system stopped above the stop
   threshold or exploded) or found nothing new, rattles of its candidates (of the seeds
   if it has none) fill the round (:func:`fallback_rattles`): a first committee too
   unsure for its MD to get anywhere still learns where that MD went;
3. labels them with the calculator (:mod:`mlip.labelling`; Hessians on
   ``hessian_fraction`` of them) and adds them to ``OUT/data.h5``;
4. retrains the committee on every label (:mod:`mlip.train.committee`), from the
   previous committee with ``finetune``.

It stops when the budget (labeller calls: labels and failures) is spent, when a round's
MD finds no frame above ``min_force_std`` over its full length on every system, none
stopped or exploded (converged) or after ``max_rounds``: :data:`NORMAL_ENDS`. Any other
end (no new frame, not even a rattle) is warned about and noted in the round table.
With ``final_time`` the committee is then trained once more, from scratch on every
label with mlip train's own recipe under that time budget (``final/committee``): a
committee fine-tuned round after round on a growing set ends less accurate than one
trained on the whole set at once (measured on ethanol with xTB labels:
docs/benchmarks/active_learning.md), less round 0's rattles above the
energies of the MD rounds' labels (``final_energy_margin``; the rattles teach the first
committees enough for their MD to run, but a final model trained on them is less
accurate where MD goes: same page). Output ``OUT``: ``model.pt`` (the final
committee, else the last round's),
``data.h5`` (every label, one group per seed), ``rounds.csv`` and ``rounds.png`` (the
per-round table, :mod:`mlip.learn.report`), ``round_<k>/`` (candidates, selection,
labels, committee run), ``config.json`` and ``state.json`` (the phase reached:
``--resume`` continues a stopped loop where it stopped, each phase's files written
atomically).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from typing import Any

import ase.io
import numpy as np
from ase import Atoms

from mlip.data.formats import read_mlip
from mlip.data.spec import read_frames
from mlip.data.writer import Group, write_mlip_hdf5
from mlip.errors import CheckpointError
from mlip.fileio import atomic_path, atomic_write_text
from mlip.labelling import LabelConfig, label_structures, make_labeller
from mlip.learn.config import RESUMABLE, LearnConfig
from mlip.learn.explore import Exploration, explore
from mlip.learn.report import format_table, plot_rounds, write_table
from mlip.learn.select import (
    DIVERSITY_KEY,
    GROUP_KEY,
    STD_KEY,
    below_md_energies,
    descriptor,
    distance,
    labels_digest,
    select_frames,
    without_md_outliers,
)

#: the reasons a loop ends normally (``state["finished"]`` starts with one of them)
NORMAL_ENDS = ("budget spent", "converged", "max_rounds")


def _std(atoms: Atoms) -> float:
    return float(atoms.info.get(STD_KEY, 0.0))


def fallback_rattles(sources: list[Atoms], count: int, config: LearnConfig,
                     labelled: dict[str, list[np.ndarray]], chosen: list[Atoms],
                     seed: int) -> list[Atoms]:  # fmt: skip
    """``count`` Gaussian rattles of ``sources`` (in turn, least uncertain first), each at
    least ``diversity`` (A) from ``labelled`` and ``chosen`` frames of its group: the std
    starts at max(``rattle_std``, ``diversity``) and grows 1.5-fold on a near-duplicate
    (at most 8 tries a frame). Returns fewer only if no try is diverse enough."""
    rng = np.random.default_rng(seed)
    known = {k: list(v) for k, v in labelled.items()}
    for atoms in chosen:
        known.setdefault(str(atoms.info.get(GROUP_KEY)), []).append(descriptor(atoms))
    ordered = sorted(sources, key=_std)
    out: list[Atoms] = []
    for k in range(count):
        source = ordered[k % len(ordered)]
        group = str(source.info.get(GROUP_KEY))
        std = max(config.rattle_std, config.diversity)
        for _ in range(8):
            frame = Atoms(source.numbers, source.positions, cell=source.cell, pbc=source.pbc)
            frame.positions += rng.normal(0.0, std, frame.positions.shape)
            d = descriptor(frame)
            if all(distance(d, other) >= config.diversity for other in known.get(group, [])):
                frame.info.update({GROUP_KEY: group, "rattle_std": std})
                known.setdefault(group, []).append(d)
                out.append(frame)
                break
            std *= 1.5
    return out


def _seeds(config: LearnConfig) -> list[tuple[str, Atoms]]:
    """(group, atoms) of every seed: group ``seed<k>_<formula>``."""
    seeds = []
    for spec in config.start:
        for structure in read_frames(spec):
            atoms = structure.to_atoms()
            seeds.append((f"seed{len(seeds)}_{atoms.get_chemical_formula()}", atoms))
    return seeds


def _write_frames(path: str, frames: list[Atoms]) -> None:
    with atomic_path(path) as temp:
        ase.io.write(str(temp), frames, format="extxyz")


def rattle_stds(config: LearnConfig) -> np.ndarray:
    """Round 0's Gaussian std (A) of each of a seed's ``rattles`` copies: 0 for the seed
    itself, then ``rattle_std``, growing evenly to ``rattle_max_std`` if set."""
    n = config.rattles - 1
    top = config.rattle_std if config.rattle_max_std is None else config.rattle_max_std
    return np.concatenate([[0.0], np.linspace(config.rattle_std, top, n)]) if n else np.zeros(1)


def _rattles(seeds: list[tuple[str, Atoms]], config: LearnConfig) -> list[Atoms]:
    rng = np.random.default_rng(config.seed)
    stds = rattle_stds(config)
    frames = []
    for group, atoms in seeds:
        for k in range(config.rattles):
            frame = atoms.copy()
            if k:
                frame.positions += rng.normal(0.0, stds[k], frame.positions.shape)
            frame.info[GROUP_KEY] = group
            frames.append(frame)
    return frames


class Learner:
    """The state of one ``mlip learn`` run (module docstring); :meth:`run` drives it."""

    def __init__(self, config: LearnConfig) -> None:
        self.config = config.check()
        self.out = config.out
        self.path = lambda *names: os.path.join(self.out, *names)  # noqa: E731
        self.labeller = make_labeller(config.calculator)
        self.seeds = _seeds(config)
        for group, atoms in self.seeds:
            self.labeller.check_elements(atoms.numbers, f"seed {group}")
        first = len(self.seeds) * config.rattles
        if config.budget < first:
            raise ValueError(
                f"budget {config.budget} is smaller than the first round: {first} labels "
                f"({config.rattles} rattles of {len(self.seeds)} seed(s)); raise --budget or "
                "lower --rattles"
            )
        if config.budget == first:
            warnings.warn("the budget is spent by round 0: no MD round will run", stacklevel=2)
        self.state = self._start()

    # -- state ----------------------------------------------------------------------
    def _start(self) -> dict[str, Any]:
        state_path, config_path = self.path("state.json"), self.path("config.json")
        if os.path.exists(state_path):
            if not self.config.resume:
                raise FileExistsError(
                    f"{self.out} already holds an mlip learn run; pass --resume to continue "
                    "it or choose another --out"
                )
            with open(config_path) as handle:
                saved = json.load(handle)
            now = self.config.to_dict()
            differing = sorted(k for k in now if k not in RESUMABLE and saved.get(k) != now[k])
            if differing:
                raise CheckpointError(
                    f"{config_path}: cannot resume with other settings: "
                    + "; ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in differing)
                )
            with open(state_path) as handle:
                state = json.load(handle)
            before = json.dumps(state)
            state = self._reopen(state)
            if json.dumps(state) != before:
                self._save(state)
            return state
        os.makedirs(self.out, exist_ok=True)
        atomic_write_text(config_path, json.dumps(self.config.to_dict(), indent=1))
        state = {"round": 0, "phase": "select", "rows": [], "finished": None}
        self._save(state)
        return state

    def _reopen(self, state: dict[str, Any]) -> dict[str, Any]:
        """A finished run goes on when its budget or max_rounds was raised on resume, and
        its final training is (re)done when its budget (``final_time``, ``final_epochs``),
        ``final_energy_margin`` or the labels that margin now leaves in changed (a run of
        an earlier rule: their digest is compared; a run of before the digest was kept,
        how many were left out)."""
        self.state = state
        finished = str(state.get("finished") or "")
        stopped_by_limit = finished == "budget spent" or finished.startswith("max_rounds")
        if state["phase"] in ("done", "final") and stopped_by_limit and "pending" not in state:
            if self.spent() < self.config.budget and state["round"] <= self.config.max_rounds:
                state["phase"], state["finished"] = "select", None
                self._drop_final()  # the committee of fewer labels
                return state
        if state["phase"] in ("done", "final"):
            final = state.get("final") or {}
            trained = "labels" in final
            # a run of before the margin existed trained its final committee on every label
            margin = self.config.final_energy_margin
            budget = (final.get("time"), final.get("epochs"))
            changed = budget != (self.config.final_time, self.config.final_epochs) or (
                final.get("energy_margin") != margin
            )
            if not changed and trained and margin is not None:
                # the same margin under another rule (one finished before MD outliers were
                # left out): the labels it leaves in now decide
                kept, dropped, outliers = self._labels_below(margin, state["round"])
                if "labels_digest" in final:
                    changed = final["labels_digest"] != labels_digest(kept)
                else:
                    before = (final.get("left_out") or 0, final.get("md_outliers") or 0)
                    changed = before != (dropped, outliers)
            if self.config.final and changed:
                if trained:
                    self._drop_final()
                state["phase"] = "final"
            elif not self.config.final:
                self._drop_final()
                state["phase"] = "done"
        return state

    def _drop_final(self) -> None:
        """Forget the final committee: ``model.pt`` is the last round's again."""
        if self.state.pop("final", None) is not None or os.path.exists(self.path("final")):
            shutil.rmtree(self.path("final"), ignore_errors=True)
            last = self.state.get("committee")
            if last:
                self._publish(self.path(last))

    def _publish(self, model: str) -> None:
        """``OUT/model.pt``: a copy of ``model``, replaced atomically."""
        shutil.copyfile(model, self.path(".model.pt"))
        os.replace(self.path(".model.pt"), self.path("model.pt"))

    def _end(self, reason: str) -> None:
        """The loop is over (``reason``); the final training follows if there is one. An
        end other than :data:`NORMAL_ENDS` with budget left is warned about."""
        self.state["finished"] = reason
        if not reason.startswith(NORMAL_ENDS):
            left = self.config.budget - self.spent()
            warnings.warn(f"mlip learn stopped early, {left} of {self.config.budget} labels "
                          f"unspent and the committee not converged: {reason}",
                          stacklevel=2)  # fmt: skip
        self.state["phase"] = "final" if self.config.final else "done"

    def _save(self, state: dict[str, Any] | None = None) -> None:
        atomic_write_text(self.path("state.json"), json.dumps(state or self.state, indent=1))

    def spent(self) -> int:
        """Labeller calls so far (labels and failures): what the budget counts."""
        rows = self.state["rows"] + [self.state.get("pending") or {}]
        return sum(int(r.get("new_labels") or 0) + int(r.get("failed") or 0) for r in rows)

    def labels(self, data: str | None = None) -> int:
        """Labels in ``data`` (default ``data.h5``)."""
        data = data or self.path("data.h5")
        if not os.path.exists(data):
            return 0
        return sum(len(g.structures) for g in read_mlip(data))

    # -- phases ---------------------------------------------------------------------
    def _select(self, r: int) -> None:
        """Round r: the frames to label, in ``round_r/selected.extxyz``."""
        folder = self.path(f"round_{r}")
        os.makedirs(folder, exist_ok=True)
        row: dict[str, Any] = {"round": r}
        start = time.perf_counter()
        if r == 0:
            frames = _rattles(self.seeds, self.config)
        else:
            committee = self._committee(r - 1)
            found = explore(committee, self.seeds, self.config, r, self._starts(r))
            row.update(found.row())
            if found.candidates:
                _write_frames(os.path.join(folder, "candidates.extxyz"), found.candidates)
            if found.last:  # where the next round continues (explore_from "last")
                _write_frames(os.path.join(folder, "md_last.extxyz"), found.last)
            left = self.config.budget - self.spent()
            c = self.config
            quota = min(c.per_round, left)
            labelled = self._descriptors()
            frames = select_frames(found.candidates, quota, c.diversity, labelled,
                                   rule=c.selection, window=(c.min_force_std, c.max_force_std),
                                   seed=c.seed + 1000 * r,
                                   relax_to=c.diversity_relax)  # fmt: skip
            row["above_window"] = sum(_std(a) > c.max_force_std for a in frames)
            row["relaxed"] = sum(a.info.get(DIVERSITY_KEY, c.diversity) < c.diversity
                                 for a in frames)  # fmt: skip
            if self._converged(found):
                row["note"] = (f"converged: largest force std {row['md_largest_std']:.3g} "
                               f"< {c.min_force_std} eV/A over {c.md_steps} steps")  # fmt: skip
            elif len(frames) < quota and (not frames or found.cut_short):
                # MD that did not get far found too few new frames: rattles of where it
                # went (else of the seeds) fill the round, so the loop still learns
                extra = fallback_rattles(found.candidates or self._seed_frames(),
                                         quota - len(frames), c, labelled, frames,
                                         seed=c.seed + 1000 * r + 1)  # fmt: skip
                row["rattled"] = len(extra)
                frames += extra
        if frames:
            _write_frames(os.path.join(folder, "selected.extxyz"), frames)
        row["wall_s"] = time.perf_counter() - start
        self.state["pending"] = row
        self.state["phase"] = "label"
        if not frames:
            self._end(row.get("note") or "no new frame to label, not even a rattle")
        self._save()

    def _seed_frames(self) -> list[Atoms]:
        frames = []
        for group, atoms in self.seeds:
            frame = atoms.copy()
            frame.info[GROUP_KEY] = group
            frames.append(frame)
        return frames

    def _converged(self, found: Exploration) -> bool:
        """No frame above ``min_force_std`` over a full-length MD of every system."""
        full = self.config.md_steps * self.config.timestep
        return (not found.candidates and not found.exploded and not found.stopped
                and all(t >= full - 1e-6 for t in found.reached.values()))  # fmt: skip

    def _starts(self, r: int) -> dict[str, Atoms] | None:
        """Round r's continued systems: the previous round's last frames (``explore_from``
        "last"), or None (every system at its seed)."""
        path = self.path(f"round_{r - 1}", "md_last.extxyz")
        if self.config.explore_from != "last" or not os.path.exists(path):
            return None
        return {a.info["system"]: a for a in ase.io.read(path, index=":")}

    def _descriptors(self) -> dict[str, list[np.ndarray]]:
        out: dict[str, list[np.ndarray]] = {}
        if os.path.exists(self.path("data.h5")):
            for group in read_mlip(self.path("data.h5")):
                out[group.name] = [descriptor(s.to_atoms()) for s in group.structures]
        return out

    def _label(self, r: int) -> None:
        start = time.perf_counter()
        folder = self.path(f"round_{r}")
        selected = os.path.join(folder, "selected.extxyz")
        n = len(ase.io.read(selected, index=":"))
        fraction = self.config.hessian_fraction
        rng = np.random.default_rng(self.config.seed + 31 * r)
        count = min(n, math.ceil(fraction * n)) if fraction > 0 else 0
        chosen = frozenset(int(i) for i in rng.choice(n, count, replace=False))
        result = label_structures(
            LabelConfig(selected, os.path.join(folder, "labels.h5"), self.config.calculator,
                        hessian=chosen, fd_step=self.config.fd_step, workers=self.config.workers,
                        progress=False),
            labeller=self.labeller if self.config.workers == 1 else None,
        )  # fmt: skip
        if result.failed:
            print(f"round {r}: {len(result.failed)} of {n} labels failed (skipped)")
        self._merge(r)
        pending = self.state["pending"]
        pending.update(new_labels=result.labelled, failed=len(result.failed),
                       hessians=self._hessians(),
                       wall_s=pending.get("wall_s", 0.0) + time.perf_counter() - start)  # fmt: skip
        self.state["phase"] = "train"
        self._save()

    def _round_labels(self, rounds: range) -> dict[str, list]:
        """The labels of ``rounds``: group (seed) -> structures, in round order."""
        groups: dict[str, list] = {}
        for k in rounds:
            path = self.path(f"round_{k}", "labels.h5")
            if os.path.exists(path):
                for group in read_mlip(path):
                    groups.setdefault(group.name, []).extend(group.structures)
        return groups

    def _write(self, path: str, groups: dict[str, list]) -> None:
        write_mlip_hdf5(path, [Group(n, s) for n, s in groups.items()], self.config.calculator,
                        overwrite=True)  # fmt: skip

    def _merge(self, r: int) -> None:
        """``data.h5``: the labels of rounds 0..r, one group per seed."""
        groups = self._round_labels(range(r + 1))
        if groups:
            self._write(self.path("data.h5"), groups)

    def _data_below(
        self, margin: float | None, last: int, folder: str
    ) -> tuple[str, int, int, str | None]:
        """The labels of rounds 0..``last`` for a training (path, round 0's rattles left
        out, MD labels left out, :func:`labels_digest` of the labels kept or None):
        ``data.h5``, or with a ``margin`` (eV) ``FOLDER/data.h5``, the same less round 0's
        rattles above the energy range of the MD rounds' labels
        (:func:`below_md_energies`) and less the MD labels far above the others
        (:func:`without_md_outliers`)."""
        if margin is None:
            return self.path("data.h5"), 0, 0, None
        kept, dropped, outliers = self._labels_below(margin, last)
        path = self.path(folder, "data.h5")
        os.makedirs(self.path(folder), exist_ok=True)
        self._write(path, kept)
        return path, dropped, outliers, labels_digest(kept)

    def _labels_below(self, margin: float, last: int) -> tuple[dict[str, list], int, int]:
        """The labels of :meth:`_data_below` by seed, round 0's rattles and MD labels left
        out."""
        first = self._round_labels(range(1))
        later = self._round_labels(range(1, last + 1))
        kept, dropped = below_md_energies(first, later, margin)
        later, outliers = without_md_outliers(later)
        for name, structures in later.items():
            kept.setdefault(name, []).extend(structures)
        return kept, dropped, outliers

    def _final_data(self) -> tuple[str, int, int, str | None]:
        """The final training's labels (``final_energy_margin``; :meth:`_data_below`)."""
        return self._data_below(self.config.final_energy_margin, self.state["round"], "final")

    def _hessians(self) -> int:
        if not os.path.exists(self.path("data.h5")):
            return 0
        return sum(s.hessian is not None for g in read_mlip(self.path("data.h5"))
                   for s in g.structures)  # fmt: skip

    def _committee(self, r: int):  # noqa: ANN202
        from mlip.fields import resolve_device
        from mlip.model import load_model

        return load_model(self.path(f"round_{r}", "committee", "model.pt"),
                          device=resolve_device(self.config.device))  # fmt: skip

    def train_config(self, r: int | None, data: str | None = None):  # noqa: ANN201
        """The :class:`~mlip.train.config.TrainConfig` of round r (None: the final
        training, from scratch with :meth:`LearnConfig.final_training`'s keys): every label
        of ``data`` (default ``data.h5``), a random validation split."""
        from mlip.train.config import load_config

        data = data or self.path("data.h5")
        n = self.labels(data)
        valid = max(1, round(self.config.valid_fraction * n)) if n > 1 else 0
        if n - valid < 1:
            raise ValueError(f"round {r}: {n} label(s) cannot be split into train and valid")
        # with Hessian labels the trainer's own Hessian defaults (weight, probes); without
        # them the term is off, so no probe is drawn
        base = {} if self.config.hessian_fraction > 0 else {"loss.hessian_weight": 0.0}
        out = self.path("final" if r is None else f"round_{r}", "committee")
        fixed = {"data.paths": [data], "data.groups": None,
                 "data.train_size": n - valid, "data.valid_size": valid, "data.test_size": 0,
                 "train.out": out, "train.seed": self.config.seed + (r or 0),
                 "train.progress": False, "train.resume": True,
                 "train.device": self.config.device}  # fmt: skip
        if self.config.finetune and r is not None and r > 0:
            fixed["model.init_from"] = self.path(f"round_{r - 1}", "committee", "model.pt")
        keys = self.config.training() if r is not None else self.config.final_training()
        return load_config(None, {**base, **keys, **fixed})

    def _fit(self, r: int | None, data: str | None = None) -> dict[str, Any]:
        """Train the committee of round r (None: the final one) on ``data`` (default
        ``data.h5``); its labels and validation errors (meV/atom, meV/A) for the table."""
        from mlip.train.committee import CommitteeConfig, train_committee

        members = CommitteeConfig(self.config.committee, self.config.bootstrap)
        config = self.train_config(r, data)
        valid = train_committee(config, members).get("eval", {}).get("valid", {})
        labels = config.data.train_size + config.data.valid_size  # train_config counted them
        return {"labels": labels, "valid_energy_mae": valid.get("energy_per_atom_mae"),
                "valid_forces_mae": valid.get("forces_mae")}  # fmt: skip

    def _train(self, r: int) -> None:
        start = time.perf_counter()
        margin = self.config.committee_energy_margin if r > 0 else None
        data, dropped, outliers, _ = self._data_below(margin, r, f"round_{r}")
        fit = self._fit(r, data)
        row = self.state.pop("pending")
        row.update(**fit, wall_s=row.get("wall_s", 0.0) + time.perf_counter() - start)
        if dropped or outliers:
            row["left_out"], row["md_outliers"] = dropped, outliers
        self.state["committee"] = os.path.join(f"round_{r}", "committee", "model.pt")
        self._publish(self.path(self.state["committee"]))
        self.state["rows"].append(row)
        self._report()
        spent = self.spent() >= self.config.budget
        last = r >= self.config.max_rounds
        self.state["round"], self.state["phase"] = r + 1, "select"
        if spent or last:
            self._end("budget spent" if spent else f"max_rounds {r} reached")
        self._save()

    def _final(self) -> None:
        """The final committee: from scratch on every label (module docstring); ``mlip
        learn`` prints its line (:func:`describe_final`) with the run's summary."""
        start = time.perf_counter()
        data, dropped, outliers, digest = self._final_data()
        fit = self._fit(None, data)
        self._publish(self.path("final", "committee", "model.pt"))
        self.state["final"] = {"time": self.config.final_time,
                               "epochs": self.config.final_epochs,
                               "energy_margin": self.config.final_energy_margin,
                               "left_out": dropped, "md_outliers": outliers, **fit,
                               "wall_s": time.perf_counter() - start}  # fmt: skip
        if digest is not None:
            self.state["final"]["labels_digest"] = digest
        self.state["phase"] = "done"
        self._save()

    def _report(self, extra: dict | None = None) -> None:
        rows = self.state["rows"] + ([extra] if extra else [])
        write_table(self.path("rounds.csv"), rows)
        plot_rounds(self.path("rounds.png"), rows)
        if self.config.progress:
            print(format_table(rows))

    def run(self) -> dict[str, Any]:
        """Run (or continue) the loop to its end; returns the state (rows, finished)."""
        while self.state["phase"] != "done":
            r, phase = self.state["round"], self.state["phase"]
            if phase == "select":
                self._select(r)
            elif phase == "label":
                self._label(r)
            elif phase == "train":
                self._train(r)
            elif phase == "final":
                self._final()
        pending = self.state.pop("pending", None)
        if pending is not None:  # a round whose MD found nothing to label
            pending["labels"] = self.labels()
            pending["note"] = self.state["finished"]
            self.state["rows"].append(pending)
            self._save()
            self._report()
        return self.state


def describe_final(final: dict[str, Any]) -> str:
    """One line on the final committee of ``state["final"]``."""
    left_out, outliers = final.get("left_out"), final.get("md_outliers")
    rattles = (f", {left_out} of round 0's rattles above the MD's energies left out"
               if left_out else "")  # fmt: skip
    if outliers:
        rattles += f", {outliers} MD label(s) far above the others left out"
    budget = f"{final['time']:g} s a member" if final.get("time") else ""
    if final.get("epochs") is not None:
        budget += f"{', at most ' if budget else ''}{final['epochs']} epochs"
    return (f"final committee (from scratch, {budget}, {final['labels']} "
            f"labels{rattles}): valid F MAE {final['valid_forces_mae']:.1f} meV/A, E MAE "
            f"{final['valid_energy_mae']:.3g} meV/atom")  # fmt: skip


def run_learning(config: LearnConfig) -> dict[str, Any]:
    """``mlip learn``: run or resume the loop of ``config`` (module docstring)."""
    return Learner(config).run()
