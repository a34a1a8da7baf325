"""Sobolev training: config, split, statistics, trainer, checkpoints, evaluation.

``run_training(config)`` is what ``mlip train`` / ``python train.py`` call: train, then
print the error table of the best model on train/valid/test and write ``eval.json`` and
parity plots into the run directory.
"""

from __future__ import annotations

import os
from typing import Any

from ase.data import chemical_symbols


def run_training(config: Any, model: Any = None, callbacks: list | None = None) -> dict:
    """Train with a resolved :class:`~mlip.train.config.TrainConfig`; returns the summary."""
    import torch

    from mlip.train import distributed, evaluate
    from mlip.train.trainer import Trainer

    context = distributed.setup(config.train.device)
    try:
        trainer = Trainer(config, model=model, context=context, callbacks=callbacks)
        if context.is_main:
            print(describe(trainer))
        result = trainer.fit()
        if context.is_main:
            print(
                f"stopped ({result['stop_reason']}) after {result['epochs']:.2f} epochs, "
                f"{result['steps']} steps, {result['elapsed_s']:.1f} s; best validation loss "
                f"{result['best_loss']:.4g} at epoch {result['best_epoch']:.2f}"
            )
            if result["atomic_energy_shifts"]:
                shifts = ", ".join(
                    f"{z}: {d * 1000:+.2f}" for z, d in result["atomic_energy_shifts"].items()
                )
                print(f"E0 refit on the training energies [meV]: {shifts}")
        if config.train.evaluate and context.is_main:
            # evaluated in float64 whatever the training dtype, like a loaded model
            results = evaluate.evaluate_splits(
                trainer.best_model().double(),
                trainer.dataset,
                trainer.split,
                config.data.valid_batch_size,
                trainer.device,
                torch.float64,
            )
            print(evaluate.report(results))
            evaluate.write_json(
                results,
                os.path.join(trainer.out, "eval.json"),
                {"run": trainer.out, "model": "model.pt"},
            )
            evaluate.parity_plots(results, os.path.join(trainer.out, "plots"))
            result["eval"] = evaluate.summary(results)
        context.barrier()
        result["out"] = trainer.out
        return result
    finally:
        distributed.teardown(context)


def describe(trainer: Any) -> str:
    """A few lines on the data, statistics and model of a trainer, printed at the start."""
    split = trainer.split
    n_params = sum(p.numel() for p in trainer.params)
    hessians = int(trainer.dataset.hessian_mask[split["train"]].sum())
    lines = [
        f"run directory: {trainer.out}",
        f"data: {len(trainer.dataset)} conformers; train {len(split['train'])} "
        f"({hessians} with Hessian), valid {len(split['valid'])}, test {len(split['test'])}",
        f"model: {n_params} parameters, r_max {trainer.r_max} A, device {trainer.device}, "
        f"{trainer.config.train.dtype}, {trainer.context.world_size} rank(s)",
    ]
    if getattr(trainer, "width_choice", None) is not None:
        lines.append(f"width: {trainer.width_choice.describe()}")
    if trainer.config.model.init_from:
        lines.append(f"initialised from {trainer.config.model.init_from} (statistics kept)")
    s = trainer.statistics
    if s is not None:
        energies = ", ".join(f"{z}: {e:.4f}" for z, e in s.atomic_energies.items())
        lines.append(
            f"statistics: E0 [eV] {{{energies}}}, scale {s.scale:.4g} eV, "
            f"avg neighbours {s.avg_num_neighbors:.3g}"
        )
    repulsion = getattr(trainer.model, "repulsion", None)
    cutoffs = repulsion.cutoffs() if hasattr(repulsion, "cutoffs") else {}
    if cutoffs:
        pairs = ", ".join(
            f"{chemical_symbols[a]}-{chemical_symbols[b]} {d:.3f}" for (a, b), d in cutoffs.items()
        )
        lines.append(f"core repulsion below [A]: {pairs}")
    scales = ", ".join(
        f"{t} {trainer.loss.weights[t]:.4g} (label RMS {trainer.loss_scales[t]:.3g})"
        if t in trainer.loss_scales
        else f"{t} {trainer.loss.weights[t]:.4g} (no labels)"
        for t in trainer.active_terms
    )
    lines.append(f"loss weights: {scales}")
    run = trainer.config.train
    budget = [f"{run.max_time:g} s" if run.max_time is not None else "",
              f"{run.max_epochs} epochs" if run.max_epochs is not None else ""]  # fmt: skip
    budget = " or ".join(b for b in budget if b)
    lines.append(
        f"budget: {budget}, lr schedule {trainer.schedule.kind}"
        if budget
        else f"budget: none, until {run.patience} validations without improvement "
        f"(lr schedule {trainer.schedule.kind})"
    )
    if trainer.step > 0:
        lines.append(f"resumed at epoch {trainer.epochs_done():.2f}, step {trainer.step}")
    return "\n".join(lines)
