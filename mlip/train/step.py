"""How a batch of training conformers becomes the loss's per-term sums and counts.

:class:`BatchLoss` reads the conformers, builds the graph batch, draws the Hessian
probes and evaluates the model's derivatives (:func:`mlip.loss.predict`) for the loss
terms; the trainer (:mod:`mlip.train.trainer`) adds the ranks' counts, combines the
terms and steps the optimiser. Conformers with a reference Hessian and the others are
two sub-batches, so that only the former pay for the Hessian-vector products (a double
backward through the graph).
"""

from __future__ import annotations

import numpy as np
import torch

from mlip import keys
from mlip.data.graph import Structure, build_batch
from mlip.loss import TERMS, ProbeSampler, SobolevLoss, predict
from mlip.train.data import StructureSource

#: one evaluated sub-batch: (graph batch, predictions, probes or None)
Part = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor | None]


class BatchLoss:
    """The loss sums and counts of a set of conformers (by dataset index) under ``model``.

    ``hessian_every``: the training steps between probed ones (1: every step);
    ``hessian_probes``: probes per conformer (the loss's counts); ``r_max`` in A.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: SobolevLoss,
        probes: ProbeSampler,
        source: StructureSource,
        r_max: float,
        dtype: torch.dtype,
        device: torch.device,
        hessian_every: int = 1,
        hessian_probes: int = 1,
    ) -> None:
        self.model, self.loss, self.probes, self.source = model, loss, probes, source
        self.r_max, self.dtype, self.device = r_max, dtype, device
        self.hessian_every, self.hessian_probes = hessian_every, hessian_probes

    @property
    def active_terms(self) -> list[str]:
        """The loss terms with a positive weight, in :data:`mlip.loss.TERMS` order."""
        return [t for t in TERMS if self.loss.weights[t] > 0]

    def partition(
        self, indices: np.ndarray, training: bool, step: int = 0
    ) -> list[tuple[np.ndarray, list[Structure], bool]]:
        """The non-empty sub-batches ``(indices, structures, probed)`` of ``indices``.

        Without a weighted Hessian term, and on the training steps between every
        ``hessian_every``-th (``step``: the optimiser steps so far), the batch stays
        whole and unprobed (validation then reports no H v errors); otherwise the
        conformers with a reference Hessian form the probed sub-batch and the others
        the unprobed one.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            return []
        structures = self.source.get(indices)
        skipped = training and step % self.hessian_every != 0
        if self.loss.weights["hessian"] <= 0 or skipped:
            return [(indices, structures, False)]
        has = np.array([s.hessian is not None for s in structures], dtype=bool)
        parts = []
        for mask, probed in ((~has, False), (has, True)):
            if mask.any():
                chosen = [s for s, keep in zip(structures, mask, strict=True) if keep]
                parts.append((indices[mask], chosen, probed))
        return parts

    def evaluate(
        self,
        indices: np.ndarray,
        structures: list[Structure],
        probed: bool,
        step_seed: int,
        training: bool,
    ) -> tuple[Part, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One sub-batch: ``((batch, pred, probes), sums, counts)`` of the loss terms."""
        batch = build_batch(structures, self.r_max, self.dtype, self.device)
        probes = None
        if probed:
            probes = self.probes.probes(
                batch[keys.NUM_ATOMS].tolist(),
                indices,
                step_seed,
                self.dtype,
                self.device,
                structures=structures,
            )
        needs = self.loss.needs(batch)
        # training computes only the derivatives the loss uses (an energy-only loss: the
        # energy alone, no reverse pass); validation also reports force and stress errors
        forces = needs["forces"] or not training
        stress = needs["stress"] or (not training and bool(batch[keys.HAS_STRESS].any()))
        pred = predict(
            self.model, batch, forces=forces, stress=stress, probes=probes, training=training
        )
        sums = self.loss.terms(pred, batch, probes)
        counts = self.loss.counts(batch, self.hessian_probes)
        return (batch, pred, probes), sums, counts

    def __call__(
        self, indices: np.ndarray, step_seed: int, training: bool, step: int = 0
    ) -> tuple[list[Part], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Loss sums and counts of the conformers ``indices`` (may be none), and the parts.

        The probes of a conformer depend only on ``step_seed`` and its dataset index,
        and the loss is built from per-term sums and counts, so adding the sub-batches'
        sums and counts gives the loss of the whole batch up to the order of
        floating-point sums. Returns ``(parts, sums, counts)``.
        """
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        terms = self.active_terms
        sums = {t: zero for t in terms}
        counts = dict(sums)
        parts = []
        for part, structures, probed in self.partition(indices, training, step):
            evaluated, s, c = self.evaluate(part, structures, probed, step_seed, training)
            parts.append(evaluated)
            for t in terms:
                sums[t] = sums[t] + s.get(t, zero)
                counts[t] = counts[t] + c.get(t, zero)
        return parts, sums, counts


def hessian_grouped_order(
    order: np.ndarray, has_hessian: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """``order`` (a shuffled epoch) rearranged so that consecutive batches of ``size``
    hold either only conformers with a reference Hessian (``has_hessian``, a mask over
    ``order``) or only conformers without: one mixed batch at most, where the groups meet.

    With the Hessian term on, a mixed batch is two sub-batches (:meth:`BatchLoss.partition`):
    two passes of fixed cost, the probed one for a few conformers. Homogeneous batches
    make an epoch of a data set with a fraction f of Hessians cost about (1 - f) + f x
    (the cost of a probed step), and weigh each Hessian conformer's term as in a data set
    where all carry one (a lone Hessian in a mixed batch would carry the whole term of
    its step). The whole batches are shuffled with ``rng``.
    """
    if has_hessian.all() or not has_hessian.any():
        return order
    grouped = np.concatenate([order[has_hessian], order[~has_hessian]])
    full = len(grouped) // size
    batches = grouped[: full * size].reshape(full, size)[rng.permutation(full)]
    return np.concatenate([batches.ravel(), grouped[full * size :]])
