"""Training data access: a (cached) view of an H5Dataset and label checks against the loss."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from mlip.data.graph import Structure
from mlip.data.hdf5 import H5Dataset
from mlip.errors import DataError


class StructureSource:
    """Reads conformers by global index, from memory for the cached indices.

    Caching (the train and valid splits of small datasets) avoids re-reading HDF5 every
    step; uncached indices are read lazily with ``dataset.get_many``.
    """

    def __init__(self, dataset: H5Dataset, cache: Iterable[int] | None = None, chunk: int = 512):
        self.dataset = dataset
        self._cache: dict[int, Structure] = {}
        if cache is not None:
            wanted = np.unique(np.fromiter(cache, dtype=np.int64))
            for index, structure in zip(wanted, dataset.iterate(wanted, chunk), strict=True):
                self._cache[int(index)] = structure

    def get(self, indices: Sequence[int]) -> list[Structure]:
        indices = [int(i) for i in indices]
        missing = [i for i in indices if i not in self._cache]
        read = dict(zip(missing, self.dataset.get_many(missing), strict=True)) if missing else {}
        return [self._cache[i] if i in self._cache else read[i] for i in indices]

    def iterate(self, indices: Sequence[int], chunk: int = 256) -> Iterable[Structure]:
        for start in range(0, len(indices), chunk):
            yield from self.get(indices[start : start + chunk])

    def num_atoms(self, index: int) -> int:
        return self.dataset.group_of(int(index)).num_atoms


def check_labels(
    dataset: H5Dataset,
    forces_weight: float,
    hessian_weight: float,
    train_indices: np.ndarray,
    allow_missing: bool = False,
) -> None:
    """Every selected group must carry forces when the force term is weighted.

    A group without forces raises :class:`DataError` naming the file and the group, or,
    with ``allow_missing``, warns and trains the force term only on the groups that carry
    forces. A Hessian term without any training Hessian does nothing; it warns only where
    the weight is not the default (the user asked for the term), since most data sets
    carry no Hessians and the default weight is there for those that do.
    """
    from mlip.train.config import LossConfig

    if forces_weight > 0:
        for group in dataset.groups:
            if "forces" in group.fields:
                continue
            message = (
                f"the group has no forces but loss.forces_weight = {forces_weight} > 0; "
                "set --forces-weight 0 or pass --allow-missing-labels"
            )
            if not allow_missing:
                raise DataError(message, file=group.file, group=group.name, field="forces")
            warnings.warn(
                f"{group.file}: group '{group.name}' has no forces; its conformers are left "
                "out of the force term",
                stacklevel=2,
            )
    asked = hessian_weight != LossConfig().hessian_weight
    if asked and hessian_weight > 0 and not dataset.hessian_mask[train_indices].any():
        warnings.warn(
            f"loss.hessian_weight = {hessian_weight} but no training conformer carries a "
            "Hessian; the Hessian term is off",
            stacklevel=2,
        )
