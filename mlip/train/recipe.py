"""Settings the trainer chooses from the data and the budget (``auto`` in the config).

A width that is right for small molecules is wrong for dense periodic cells: an fcc
metal atom has about 50 neighbours within 5 A where an organic molecule's has about 8,
and the cost of a training step grows with the edges times the channels. Under a time
budget, the molecular width on dense cells gets too few optimiser steps to learn. So,
when ``model.num_channels`` is ``null`` (the default) and the run has a time budget
(``train.max_time``), the trainer times a few training steps on the run's own batches
at each width of :data:`WIDTHS`, widest first, and keeps the widest whose number of
optimiser steps in the budget is at least :data:`MIN_STEPS`; if none is, the narrowest.
Without a time budget nothing limits the cost and the width is :data:`DEFAULT_WIDTH`.
The choice is written to the run's ``config.yaml``, so a resumed run, each member of a
committee and each data-parallel rank use the same width; the run's first lines print
it with the measured step times. Timing costs a few seconds before training starts
(not counted in the budget).

The rule only narrows: no width above :data:`DEFAULT_WIDTH` is offered, because 128
channels, timed and trained for the same wall time as 64 on ethanol and aspirin, trailed
64 on validation forces all the way through (docs/benchmarks/accuracy.md, the width
rule).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mlip import keys
from mlip.data.graph import build_batch
from mlip.train.config import TrainConfig
from mlip.train.data import StructureSource

#: channel counts the trainer chooses from, widest first
WIDTHS = (64, 32, 16)
#: the width without a time budget (the molecular recipe), and the widest offered
DEFAULT_WIDTH = 64
#: optimiser steps a time budget must buy for a width to be chosen
MIN_STEPS = 8_000
#: training steps timed per width (after one untimed warm-up step); the fastest counts,
#: since other work on the machine only ever adds time, and it varies least between
#: repeats (docs/benchmarks/training_throughput.md)
TIMED_STEPS = 10


@dataclass
class WidthChoice:
    """The chosen width, why, and the measured seconds per step of each width tried."""

    width: int
    reason: str
    step_seconds: dict[int, float] = field(default_factory=dict)

    def describe(self) -> str:
        timed = ", ".join(f"{w}: {1000 * s:.0f} ms" for w, s in self.step_seconds.items())
        return f"{self.width} channels ({self.reason})" + (
            f"; step time by width {timed}" if timed else ""
        )


def time_step(
    config: TrainConfig,
    width: int,
    elements: list[int],
    batches: list[list],
    device: torch.device,
    dtype: torch.dtype,
) -> float:
    """Seconds of the fastest training step (collation, forward, the derivatives the loss
    uses, backward, Adam) of a model of ``width`` channels on ``batches`` (the first
    untimed). The conformers' neighbour lists are computed before timing, as a training
    run computes them once and reuses them every epoch."""
    from mlip.loss import predict
    from mlip.train.initial_model import build_model

    trial = copy.deepcopy(config)
    trial.model.num_channels = width
    model = build_model(trial, elements).to(device, dtype)
    model.set_avg_num_neighbors(10.0)  # any positive value: the cost does not depend on it
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-9)
    loss_config = config.loss
    for structures in batches:  # graphs are built once per conformer in training too
        for structure in structures:
            structure.edges(model.r_max)
    seconds = []
    for structures in batches:
        start = time.perf_counter()
        batch = build_batch(structures, model.r_max, dtype, device)
        stress = loss_config.stress_weight != 0 and bool(batch[keys.HAS_STRESS].any())
        pred = predict(model, batch, forces=loss_config.forces_weight > 0, stress=stress,
                       training=True)  # fmt: skip
        loss = (pred[keys.ENERGY] ** 2).sum()
        for key in (keys.FORCES, keys.STRESS):
            if key in pred:
                loss = loss + (pred[key] ** 2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return float(np.min(seconds[1:]))


def choose_width(
    config: TrainConfig,
    source: StructureSource,
    train: np.ndarray,
    elements: list[int],
    device: torch.device,
    dtype: torch.dtype,
) -> WidthChoice:
    """The width of an ``auto`` run (see the module docstring)."""
    budget = config.train.max_time
    if budget is None:
        return WidthChoice(DEFAULT_WIDTH, "no time budget")
    size = config.data.batch_size
    order = np.random.default_rng(config.train.seed).permutation(train)
    picks = np.resize(order, (1 + TIMED_STEPS) * size)  # cycles through a small set
    batches = [source.get(chunk) for chunk in picks.reshape(1 + TIMED_STEPS, size)]
    timed: dict[int, float] = {}
    for width in WIDTHS:
        timed[width] = time_step(config, width, elements, batches, device, dtype)
        steps = budget / timed[width]
        if steps >= MIN_STEPS:
            reason = f"about {steps:,.0f} steps in {budget:g} s, at least {MIN_STEPS:,}"
            return WidthChoice(width, reason, timed)
    narrowest = WIDTHS[-1]
    steps = budget / timed[narrowest]
    reason = f"the narrowest: about {steps:,.0f} steps in {budget:g} s, fewer than {MIN_STEPS:,}"
    return WidthChoice(narrowest, reason, timed)


def resolve_width(
    config: TrainConfig,
    source: StructureSource,
    train: np.ndarray,
    elements: list[int],
    device: torch.device,
    dtype: torch.dtype,
    context: object | None = None,
) -> WidthChoice | None:
    """Set ``config.model.num_channels`` in place where it is ``None`` (auto) and return
    the choice; ``None`` where the config already names a width or the model comes from
    ``model.init_from``. With data parallelism (``context`` enabled) rank 0 times and its
    choice is broadcast, so that every rank builds the same model."""
    model = config.model
    if model.num_channels is not None or model.init_from:
        return None
    enabled = bool(getattr(context, "enabled", False))
    main = not enabled or bool(getattr(context, "is_main", True))
    choice = choose_width(config, source, train, elements, device, dtype) if main else None
    if enabled:
        box = [choice]
        torch.distributed.broadcast_object_list(box, src=0)
        choice = box[0]
    model.num_channels = choice.width
    return choice
