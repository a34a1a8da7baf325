"""Optimiser, learning-rate schedule with warm-up, and an exponential moving average.

Learning rate at optimiser step t (steps counted from 0), base rate lr0:

    warm-up    lr = lr0 * (0.01 + 0.99 * t / T_w)             for t < T_w
    constant   lr = lr0
    cosine     lr = lr_min + (lr0 - lr_min) (1 + cos(pi u)) / 2,  u = the fraction of the
               budget used, set by the trainer as ``progress``: the larger of steps /
               (max_epochs * steps per epoch) and training time / max_time (a time budget
               makes the schedule depend on the machine's speed, so a resumed run is then
               not bit-identical to an uninterrupted one; an epoch budget alone is)
    plateau    lr = max(lr0 * f^m, lr_min), m = number of reductions so far: after every
               epoch whose validation loss did not improve on the best by 1e-4 relative
               for more than ``patience`` epochs in a row, m grows by one.

EMA of the weights after each step: theta_ema <- d theta_ema + (1 - d) theta with
d = min(decay, (1 + n) / (10 + n)) after n updates (a short start-up so that early
averages are not dominated by the random initial weights).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch


def build_optimizer(
    params: list[torch.nn.Parameter],
    name: str = "adam",
    lr: float = 0.005,
    weight_decay: float = 0.0,
    amsgrad: bool = True,
) -> torch.optim.Optimizer:
    """Adam or AdamW (with the AMSGrad variant when ``amsgrad``)."""
    # foreach: one multi-tensor kernel per update instead of one per parameter tensor (the
    # model has about a hundred small tensors, and a loop over them was a noticeable part
    # of a CPU training step)
    options = {"lr": lr, "weight_decay": weight_decay, "amsgrad": amsgrad, "foreach": True}
    if name == "adam":
        return torch.optim.Adam(params, **options)
    if name == "adamw":
        return torch.optim.AdamW(params, **options)
    raise ValueError(f"optimizer must be 'adam' or 'adamw', got {name!r}")


KINDS = ("auto", "plateau", "cosine", "constant")


def resolve_kind(kind: str, has_budget: bool) -> str:
    """``auto``: cosine over a budget (max_time / max_epochs), plateau without one."""
    if kind == "auto":
        return "cosine" if has_budget else "plateau"
    return kind


class LRSchedule:
    """Warm-up followed by a constant, cosine or plateau schedule (see module docstring)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: str = "plateau",
        warmup_steps: int = 0,
        min_lr: float = 1e-5,
        patience: int = 5,
        factor: float = 0.5,
        threshold: float = 1e-4,
    ) -> None:
        if kind not in KINDS or kind == "auto":
            raise ValueError(f"scheduler must be one of {KINDS[1:]}, got {kind!r}")
        self.optimizer, self.kind = optimizer, kind
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.warmup_steps = int(warmup_steps)
        self.min_lr, self.patience, self.factor = min_lr, patience, factor
        self.threshold = threshold
        self.step_count = 0
        self.reductions = 0
        self.best = math.inf
        self.bad_epochs = 0
        self.progress = 0.0  # fraction of the budget used, set by the trainer (cosine)
        self._apply()

    def factor_at(self, step: int) -> float:
        """Multiplier of the base learning rate at optimiser step ``step`` (before floors)."""
        warm = 1.0
        if step < self.warmup_steps:
            warm = 0.01 + 0.99 * step / self.warmup_steps
        if self.kind == "cosine":
            return warm * 0.5 * (1.0 + math.cos(math.pi * min(max(self.progress, 0.0), 1.0)))
        if self.kind == "plateau":
            return warm * self.factor**self.reductions
        return warm

    def _apply(self) -> None:
        f = self.factor_at(self.step_count)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            if self.kind == "cosine":
                group["lr"] = self.min_lr + (base - self.min_lr) * f
            elif self.step_count < self.warmup_steps:
                group["lr"] = base * f
            else:
                group["lr"] = max(base * f, self.min_lr)

    def step(self, progress: float | None = None) -> None:
        """Advance by one optimiser step; ``progress`` (the fraction of the budget used
        after it) drives the cosine schedule."""
        if progress is not None:
            self.progress = progress
        self.step_count += 1
        self._apply()

    def epoch_end(self, valid_loss: float) -> None:
        """Report the epoch's validation loss (drives the plateau schedule)."""
        if valid_loss < self.best * (1.0 - self.threshold):
            self.best, self.bad_epochs = valid_loss, 0
        else:
            self.bad_epochs += 1
            if self.kind == "plateau" and self.bad_epochs > self.patience:
                self.reductions += 1
                self.bad_epochs = 0
        self._apply()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        """The progress of the schedule (its shape comes from the config, so that a resumed
        run with more epochs stretches a cosine schedule to the new length)."""
        names = ("step_count", "reductions", "best", "bad_epochs", "progress")
        return {k: getattr(self, k) for k in names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._apply()


class EMA:
    """Exponential moving average of a model's floating-point parameters."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.99) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        torch._foreach_mul_(self.shadow, d)
        torch._foreach_add_(self.shadow, [p.detach() for p in self.params], alpha=1.0 - d)
        self.num_updates += 1

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Temporarily load the averaged weights into the model."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for param, shadow in zip(self.params, self.shadow, strict=True):
                param.copy_(shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, saved in zip(self.params, backup, strict=True):
                    param.copy_(saved)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ValueError("EMA state does not match the model's parameters")
        self.decay, self.num_updates = state["decay"], state["num_updates"]
        self.shadow = [
            s.to(p.device, p.dtype).clone()
            for s, p in zip(state["shadow"], self.params, strict=True)
        ]
