"""The training loop: Sobolev loss, EMA, schedules, checkpoints, exact resume, data parallel.

One optimiser step takes a global batch of ``data.batch_size`` training conformers
(split across data-parallel ranks, see :mod:`mlip.train.distributed`), evaluates the
loss of :mod:`mlip.loss` with fresh Hessian probes (each rank evaluates its conformers
with a reference Hessian and the others as two sub-batches, so only the former pay for
the Hessian-vector products), clips the gradient norm, steps the optimiser, the
learning-rate schedule and the EMA. After every ``train.valid_every``-th epoch (by default
every epoch, or every few for training sets of fewer than 100 batches), the
last epoch, and when a time limit or a signal stops the run, the EMA weights are
validated and the best are written to ``model.pt``; the full state goes to ``last.ckpt``
after every epoch (with the step losses since the last validation), both atomically.
The plateau schedule steps at validations, so its patience counts validations. A resumed run
continues from ``last.ckpt`` with the same data order, probes and random streams, so it
reproduces the uninterrupted run.

Run directory: ``model.pt`` (best validation loss, EMA weights), ``last.ckpt``,
``config.yaml`` (resolved config), ``split.json``, ``metrics.csv`` and, at the end,
``eval.json`` with ``plots/`` (parity plots).
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mlip.allocator import keep_freed_memory
from mlip.data.hdf5 import H5Dataset
from mlip.errors import CheckpointError
from mlip.fileio import atomic_torch_save
from mlip.loss import TERMS, ProbeSampler, SobolevLoss, hessian_response_rms
from mlip.progress import Progress
from mlip.train import checkpoint as ckpt
from mlip.train import distributed
from mlip.train.config import MIN_STEPS_BETWEEN_VALIDATIONS, TrainConfig, save_config
from mlip.train.data import StructureSource, check_labels
from mlip.train.initial_model import build_model, load_initial_model
from mlip.train.metrics import ErrorStats, MetricsLog, accumulate_errors, progress_postfix
from mlip.train.optim import EMA, LRSchedule, build_optimizer, resolve_kind
from mlip.train.recipe import resolve_width
from mlip.train.refit import atomic_energy_shifts
from mlip.train.signals import StopOnSignal
from mlip.train.split import check_split, load_split, make_split, read_split_file, save_split
from mlip.train.statistics import DatasetStatistics, compute_statistics
from mlip.train.step import BatchLoss, hessian_grouped_order

VALID_PROBE_SEED = 20240901  # fixed probes for validation: comparable across epochs
ENERGY_LENGTH = 1.0  # A: the energy term's scale is the force RMS times this length


class Trainer:
    """Train a model on the config's data. ``model=None`` builds :func:`build_model`.

    ``callbacks`` are called as ``callback(trainer, row)`` after each validation with the
    row written to ``metrics.csv``. ``source``: a :class:`StructureSource` over the
    config's data to read from instead of opening (and caching) the files again.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: torch.nn.Module | None = None,
        context: distributed.DistContext | None = None,
        callbacks: list[Callable[[Trainer, dict], None]] | None = None,
        source: StructureSource | None = None,
    ) -> None:
        self.config = config
        self.context = context or distributed.setup(config.train.device)
        self.device = self.context.device
        self.dtype = getattr(torch, config.train.dtype)
        self.callbacks = list(callbacks or [])
        keep_freed_memory()  # every step reallocates the same large per-edge buffers
        self.out = self._run_directory()
        seed = config.train.seed
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002 (seed the legacy global stream too)
        torch.manual_seed(seed)
        resume_state = self._resume_state()

        # ``source``: conformers already read (the members of a committee share one)
        if source is not None:
            self.dataset = source.dataset
        else:
            self.dataset = H5Dataset(config.data.paths, config.data.groups)
        self.split = self._split(resume_state is not None)
        check_labels(
            self.dataset,
            config.loss.forces_weight,
            config.loss.hessian_weight,
            self.split["train"],
            config.data.allow_missing_labels,
        )
        if source is None:
            cached = np.concatenate([self.split["train"], self.split["valid"]])
            source = StructureSource(self.dataset, cached if config.data.cache else None)
        self.source = source

        init_from = config.model.init_from
        if model is None and init_from:
            model = load_initial_model(init_from, self.dataset.elements)
        self.width_choice = None
        if model is None:  # an auto width is chosen before the config is written
            self.width_choice = resolve_width(
                config, source, self.split["train"], self.dataset.elements, self.device,
                self.dtype, self.context,
            )  # fmt: skip
        self.model = model if model is not None else build_model(config, self.dataset.elements)
        self.r_max = float(self.model.r_max)
        self.statistics = self._statistics()
        if not init_from:  # a fine-tuned model keeps the statistics its weights were fit with
            self._apply_statistics()  # also on resume: restores values kept outside state_dict
        self.model.to(self.device, self.dtype)
        self.context.broadcast_parameters(self.model)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

        self.loss_scales = self._loss_scales()
        weights = {t: getattr(config.loss, f"{t}_weight") for t in TERMS}
        if config.loss.normalize:
            weights = {t: w / self.loss_scales.get(t, 1.0) ** 2 for t, w in weights.items()}
        self.loss = SobolevLoss(**{f"{t}_weight": w for t, w in weights.items()},
                                huber_delta=config.loss.huber_delta)  # fmt: skip
        self.probes = ProbeSampler(config.loss.hessian_probes, config.loss.probe_kind, seed + 1)
        self.batch_loss = BatchLoss(self.model, self.loss, self.probes, self.source, self.r_max,
                                    self.dtype, self.device, config.loss.hessian_every,
                                    config.loss.hessian_probes)  # fmt: skip
        self.order_rng = np.random.default_rng(seed + 2)
        opt = config.optim
        self.optimizer = build_optimizer(
            self.params, opt.optimizer, opt.lr, opt.weight_decay, opt.amsgrad
        )
        self.steps_per_epoch = -(-len(self.split["train"]) // config.data.batch_size)
        run = config.train
        self.valid_every = run.valid_every or -(
            -MIN_STEPS_BETWEEN_VALIDATIONS // self.steps_per_epoch
        )
        self.has_budget = run.max_time is not None or run.max_epochs is not None
        self.schedule = LRSchedule(
            self.optimizer,
            resolve_kind(opt.scheduler, self.has_budget),
            warmup_steps=round(opt.warmup_epochs * self.steps_per_epoch),
            min_lr=opt.min_lr,
            patience=opt.plateau_patience,
            factor=opt.plateau_factor,
        )
        self.ema = EMA(self.model, opt.ema_decay) if opt.ema_decay > 0 else None
        # position in the run
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.epoch_order: np.ndarray | None = None
        self.best_loss, self.best_epoch = float("inf"), -1.0
        self.bad_validations = 0  # validations since the best (early stopping)
        self.stage = 1  # 2 once the stage-two energy weight applies
        self.best_state: dict[str, torch.Tensor] | None = None
        self.pending_losses: list[float] = []  # step losses since the last validation
        self.elapsed = 0.0
        self._session: tuple[float, float] | None = None  # (clock at fit start, elapsed then)
        self._stop_signal = False  # set to stop after the current step (as SIGINT/SIGTERM do)
        if resume_state is not None:
            self._restore(resume_state)
        # files only once every input is checked: a bad input leaves nothing behind
        if self.context.is_main:
            os.makedirs(self.out, exist_ok=True)
            if self._new_split is not None:
                save_split(self.path("split.json"), *self._new_split)
            save_config(config, os.path.join(self.out, "config.yaml"))
        self.context.barrier()

    # -- setup ----------------------------------------------------------------------
    def _run_directory(self) -> str:
        out = self.config.train.out
        if not out:
            if self.config.train.resume:
                raise ValueError("--resume needs the run directory (--out DIR)")
            out = [os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))]
            if self.context.enabled:
                torch.distributed.broadcast_object_list(out, src=0)
            out = self.config.train.out = out[0]
        return out

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def _resume_state(self) -> dict | None:
        return ckpt.resume_state(self.path("last.ckpt"), self.config, self.context.is_main)

    def _split(self, resuming: bool) -> dict[str, np.ndarray]:
        meta = {
            "paths": self.config.data.paths,
            "groups": self.config.data.groups,
            "num_conformers": len(self.dataset),
            "seed": self.config.train.seed,
        }
        path = self.path("split.json")
        self._new_split = None
        if resuming and os.path.exists(path):
            split, saved = load_split(path)
            if saved.get("num_conformers") != len(self.dataset):
                raise CheckpointError(
                    f"{path}: split of {saved.get('num_conformers')} "
                    f"conformers, the data has {len(self.dataset)}"
                )
            check_split(split, len(self.dataset), path)
            return split
        d = self.config.data
        if d.split_file:
            split = read_split_file(d.split_file, len(self.dataset))
            meta["split_file"] = os.path.abspath(d.split_file)
        else:
            split = make_split(
                len(self.dataset), d.train_size, d.valid_size, d.test_size, self.config.train.seed
            )
        self._new_split = (split, meta)  # written with the run's other files
        return split

    def _statistics(self) -> DatasetStatistics:
        """Statistics of (up to ``train.stats_max_structures``) training conformers."""
        train = self.split["train"]
        limit = self.config.train.stats_max_structures
        if len(train) > limit:
            train = np.random.default_rng(self.config.train.seed).choice(train, limit, False)
        elements = getattr(self.model, "atomic_numbers", None) or self.dataset.elements
        return compute_statistics(
            self.source.iterate(train),
            list(elements),
            self.r_max,
            self.config.model.atomic_energies,
        )

    def _apply_statistics(self) -> None:
        stats = self.statistics
        for setter, value in (
            ("set_atomic_energies", stats.atomic_energies),
            ("set_scale", stats.scale),
            ("set_avg_num_neighbors", stats.avg_num_neighbors),
            ("set_shortest_distances", stats.shortest_distances),
        ):
            if hasattr(self.model, setter):
                getattr(self.model, setter)(value)

    def _loss_scales(self) -> dict[str, float]:
        """The label scale of each term (see :class:`~mlip.train.config.LossConfig`):
        the RMS of the training labels of forces (eV/A), stress (eV/A^3) and reference
        H v (eV/A^2); the per-atom energy against the force RMS times 1 A (eV/atom), or
        its own RMS without forces."""
        stats, loss = self.statistics, self.config.loss
        energy = stats.force_rms * ENERGY_LENGTH if stats.force_rms else stats.energy_residual_rms
        scales = {"energy": energy, "forces": stats.force_rms, "stress": stats.stress_rms}
        if loss.hessian_weight > 0:
            with_hessian = self.split["train"][self.dataset.hessian_mask[self.split["train"]]]
            scales["hessian"] = hessian_response_rms(
                self.source.get(with_hessian[:200]), loss.hessian_probes, loss.probe_kind
            )
        return {t: float(v) for t, v in scales.items() if v is not None and v > 0}

    # -- one step -------------------------------------------------------------------
    @property
    def active_terms(self) -> list[str]:
        return self.batch_loss.active_terms

    def _global_counts(self, counts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stacked = torch.stack([counts[t].detach().to(self.dtype) for t in self.active_terms])
        self.context.all_reduce(stacked)
        return dict(zip(self.active_terms, stacked, strict=True))

    def train_step(self, global_indices: np.ndarray) -> float:
        """One optimiser step on a global batch; returns the batch loss."""
        self.model.train()
        step_seed = self.probes.next_seed()
        local = self.context.shard(global_indices)
        self.optimizer.zero_grad(set_to_none=True)
        _, sums, counts = self.batch_loss(local, step_seed, training=True, step=self.step)
        loss = self.loss.combine(sums, self._global_counts(counts))
        if loss.requires_grad:
            loss.backward()
        self.context.all_reduce_gradients(self.params)
        if self.config.optim.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.optim.clip_grad)
        self.optimizer.step()
        self.schedule.step(self._progress(self.step + 1))
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return float(self.context.all_reduce(loss.detach().clone()))

    # -- validation -----------------------------------------------------------------
    def validate(self, indices: np.ndarray | None = None) -> dict[str, float]:
        """Validation loss and MAE/RMSE with the EMA weights (errors in meV units)."""
        # not under torch.no_grad: derivatives.compute(stress=True) needs grad mode on
        indices = self.split["valid"] if indices is None else indices
        local = self.context.shard(indices)
        stats = ErrorStats()
        totals = {t: torch.zeros((), dtype=torch.float64) for t in self.active_terms}
        counts = {t: torch.zeros((), dtype=torch.float64) for t in self.active_terms}
        size = self.config.data.valid_batch_size
        self.model.eval()
        with self.ema.averaged() if self.ema is not None else contextlib.nullcontext():
            for start in range(0, len(local), size):
                chunk = local[start : start + size]
                parts, sums, cnt = self.batch_loss(chunk, VALID_PROBE_SEED, False)
                for t in self.active_terms:
                    totals[t] += float(sums[t])
                    counts[t] += float(cnt[t])
                for batch, pred, probes in parts:
                    accumulate_errors(stats, pred, batch, probes)
        stats.reduce(self.context)
        packed = torch.stack([*totals.values(), *counts.values()]).to(self.device)
        self.context.all_reduce(packed)
        n = len(self.active_terms)
        loss = self.loss.combine(
            dict(zip(self.active_terms, packed[:n], strict=True)),
            dict(zip(self.active_terms, packed[n:], strict=True)),
        )
        return {"loss": float(loss), **stats.summary()}

    # -- the loop -------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until the budget (max_epochs, max_time), a validation plateau (without a
        budget) or SIGINT/SIGTERM; returns the run summary."""
        cfg = self.config.train
        train = self.split["train"]
        size = self.config.data.batch_size
        log = None
        if self.context.is_main:
            log = MetricsLog(
                self.path("metrics.csv"),
                self.epochs_done() if self.step > 0 else None,
                cfg.tensorboard,
            )
        bar = Progress(
            None if cfg.max_epochs is None else cfg.max_epochs * self.steps_per_epoch,
            "step",
            initial=self.step,
            enabled=cfg.progress and self.context.is_main,
        )  # a bar on a terminal, else a line per validation
        stop_flag = StopOnSignal().install()
        self._session = (time.monotonic(), self.elapsed)
        stop_reason = "max_epochs"
        try:
            while cfg.max_epochs is None or self.epoch < cfg.max_epochs:
                if self.epoch_order is None:
                    self.epoch_order = self._epoch_order(train)
                total = "" if cfg.max_epochs is None else f"/{cfg.max_epochs}"
                bar.set_description(f"epoch {self.epoch + 1}{total}")
                stop = False
                while self.batch_in_epoch < self.steps_per_epoch and not stop:
                    b = self.batch_in_epoch
                    batch = self.epoch_order[b * size : (b + 1) * size]
                    self.pending_losses.append(self.train_step(batch))
                    self.batch_in_epoch += 1
                    bar.update(1)
                    self.elapsed = self._elapsed_now()
                    timed_out = cfg.max_time is not None and self.elapsed >= cfg.max_time
                    stop = self.context.any(timed_out or self._stop_signal or stop_flag.set)
                    if stop:
                        stop_reason = "max_time" if timed_out else "signal"
                complete = self.batch_in_epoch >= self.steps_per_epoch
                if stop or not complete or self._validation_due():
                    row = self._end_of_period(log)
                    bar.report(**progress_postfix(row))
                    for callback in self.callbacks:
                        callback(self, row)
                    if not stop and self._stage_two_due():
                        self._enter_stage_two()
                    elif not stop and self._plateau_reached():
                        stop, stop_reason = True, "plateau"
                else:
                    self._next_epoch()
                if stop:
                    break
        finally:
            self._session = None
            bar.close()
            stop_flag.uninstall()
            if log is not None:
                log.close()
        shifts = {}
        if self.config.train.refit_atomic_energies and self.context.is_main:
            shifts = self.refit_atomic_energies(self.config.train.stats_max_structures)
            if shifts:
                self._save_best_model()
        return {
            "stop_reason": stop_reason,
            "atomic_energy_shifts": shifts,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs_done(),
            "steps": self.step,
            "elapsed_s": self.elapsed,
        }

    def _epoch_order(self, train: np.ndarray, size: int | None = None) -> np.ndarray:
        """A shuffled order of the training conformers; with the Hessian term on, batches
        homogeneous in the Hessian label (:func:`~mlip.train.step.hessian_grouped_order`)."""
        order = self.order_rng.permutation(train)
        if self.loss.weights["hessian"] <= 0:
            return order
        size = size or self.config.data.batch_size
        return hessian_grouped_order(order, self.dataset.hessian_mask[order], size,
                                     self.order_rng)  # fmt: skip

    def _elapsed_now(self) -> float:
        """Training seconds so far, this invocation included while :meth:`fit` runs."""
        if self._session is None:
            return self.elapsed
        start, before = self._session
        return before + time.monotonic() - start

    def _progress(self, step: int) -> float:
        """Fraction of the budget used after ``step`` steps: the larger of the step and
        the time fractions (the time averaged over ranks, so that every rank uses the
        same lr); 0 without a budget."""
        cfg = self.config.train
        fraction = 0.0
        if cfg.max_epochs is not None:
            fraction = step / (cfg.max_epochs * self.steps_per_epoch)
        if cfg.max_time is not None:
            value = torch.tensor([self._elapsed_now() / cfg.max_time], dtype=torch.float64)
            if self.context.world_size > 1:
                value = value.to(self.device)
                self.context.all_reduce(value)
                value /= self.context.world_size
            fraction = max(fraction, float(value))
        return min(fraction, 1.0)

    def _stage_two_due(self) -> bool:
        """Stage two starts at ``loss.stage_two_start`` of the budget, or without a budget
        at the first validation plateau."""
        start = self.config.loss.stage_two_start
        if self.stage != 1 or start is None:
            return False
        if self.has_budget:
            return self.schedule.progress >= start
        return self._plateau_reached()

    def _enter_stage_two(self) -> None:
        """Raise the energy weight; the best model is tracked anew (the validation loss
        changes its meaning)."""
        self.stage = 2
        self._apply_stage()
        self.best_loss, self.bad_validations = float("inf"), 0
        if self.context.is_main and self.config.train.progress:
            print(f"stage two at epoch {self.epochs_done():.2f}: energy weight "
                  f"{self.config.loss.stage_two_energy_weight:g}")  # fmt: skip

    def _apply_stage(self) -> None:
        """The loss weights of the current stage."""
        if self.stage == 2:
            loss = self.config.loss
            scale = self.loss_scales.get("energy", 1.0) if loss.normalize else 1.0
            self.loss.weights["energy"] = loss.stage_two_energy_weight / scale**2

    def _plateau_reached(self) -> bool:
        """Early stopping: no budget, and ``train.patience`` validations without a new best."""
        return not self.has_budget and self.bad_validations >= self.config.train.patience

    def epochs_done(self) -> float:
        """Completed epochs, fractional inside an epoch."""
        return self.epoch + self.batch_in_epoch / self.steps_per_epoch

    def _validation_due(self) -> bool:
        """Whether the epoch now ending validates: every ``valid_every``-th and the last."""
        done = self.epoch + 1
        last = self.config.train.max_epochs is not None and done >= self.config.train.max_epochs
        return done % self.valid_every == 0 or last

    def _end_of_period(self, log: MetricsLog | None) -> dict:
        """Validate, track the best model, log, advance the epoch, write the checkpoint."""
        valid = self.validate()
        complete = self.batch_in_epoch >= self.steps_per_epoch
        if complete:
            self.schedule.epoch_end(valid["loss"])
        improved = valid["loss"] < self.best_loss
        self.bad_validations = 0 if improved else self.bad_validations + 1
        if improved:
            self.best_loss, self.best_epoch = valid["loss"], self.epochs_done()
            self.best_state = self._averaged_state()
            if self.context.is_main:
                self._save_model()
        losses = self.pending_losses
        row = {
            "epoch": round(self.epochs_done(), 6),
            "step": self.step,
            "time_s": round(self.elapsed, 3),
            "lr": self.schedule.lr,
            "stage": self.stage,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            **{f"valid_{k}": v for k, v in valid.items() if not k.endswith("_count")},
        }
        self.pending_losses = []
        if log is not None:
            log.write(row)
        if complete:
            self._next_epoch()
        else:
            self._save_checkpoint()
        return row

    def _next_epoch(self) -> None:
        """Advance to the next epoch and write the checkpoint."""
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_order = None
        self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        if self.context.is_main:
            ckpt.save_checkpoint(self.path("last.ckpt"), self.state_dict())
        self.context.barrier()

    def _averaged_state(self) -> dict[str, torch.Tensor]:
        with self.ema.averaged() if self.ema is not None else contextlib.nullcontext():
            return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _save_model(self) -> None:
        """model.pt: the best (EMA) weights, written atomically."""
        with self.ema.averaged() if self.ema is not None else contextlib.nullcontext():
            self._write_model(self.model)

    def _write_model(self, model: torch.nn.Module) -> None:
        """model.pt, atomically: the model's own format where it has one."""
        if hasattr(model, "save"):
            model.save(self.path("model.pt"))
        else:
            atomic_torch_save(model, self.path("model.pt"))

    def refit_atomic_energies(self, max_structures: int = 5000) -> dict[int, float]:
        """Shift the best model's E0 (eV per element) by the least-squares fit of its
        energy residuals on the training set (at most ``max_structures`` conformers,
        :mod:`mlip.train.refit`); returns the shifts, ``{}`` where the model has no E0 or
        no energies."""
        if self.best_state is None or "atomic_energies" not in self.best_state:
            return {}
        elements = list(getattr(self.model, "atomic_numbers", []))
        if not elements:
            return {}
        train, size = self.split["train"][:max_structures], self.config.data.valid_batch_size
        chunks = (self.source.get(train[i : i + size]) for i in range(0, len(train), size))
        shift = atomic_energy_shifts(self.best_model(), chunks, elements, self.r_max, self.device)
        if shift is None:
            return {}
        state = self.best_state["atomic_energies"]
        self.best_state["atomic_energies"] = state + torch.as_tensor(shift, dtype=state.dtype)
        return {z: float(d) for z, d in zip(elements, shift, strict=True)}

    def _save_best_model(self) -> None:
        """model.pt from ``best_state`` (after :meth:`refit_atomic_energies`), atomically."""
        self._write_model(self.best_model())

    def best_model(self) -> torch.nn.Module:
        """A copy of the model with the best validation weights."""
        model = copy.deepcopy(self.model)
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return model.eval()

    # -- checkpoint (what it holds: mlip.train.checkpoint) ------------------------------
    def state_dict(self) -> dict[str, Any]:
        return ckpt.trainer_state(self)

    def _restore(self, state: dict[str, Any]) -> None:
        ckpt.restore_trainer(self, state, self.path("last.ckpt"))
        self._apply_stage()
