"""Reproducible random train/valid/test splits of a dataset, saved as ``split.json``.

The split is a random permutation of the conformer indices 0..n-1 drawn from
``numpy.random.default_rng(seed)``: the first ``n_train`` indices are the training set,
the next ``n_valid`` the validation set and the next ``n_test`` the test set. The same
seed and sizes give the same split on every machine.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

SPLITS = ("train", "valid", "test")


def resolve_size(size: float | int | None, n: int, name: str) -> int | None:
    """A count (integer >= 0) or a fraction in (0, 1) of ``n`` -> a count; None stays None."""
    if size is None:
        return None
    if size < 0:
        raise ValueError(f"{name} must be >= 0, got {size}")
    if 0 < size < 1:
        return int(round(size * n))
    if size != int(size):
        raise ValueError(f"{name} must be a count or a fraction in (0, 1), got {size}")
    return int(size)


def make_split(
    n: int,
    train_size: float | int,
    valid_size: float | int,
    test_size: float | int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Split ``n`` conformers at random; ``test_size=None`` takes the rest.

    Returns ``{"train": idx, "valid": idx, "test": idx}`` (int64, each sorted).
    Raises ValueError when the sizes exceed ``n`` or the train/valid split is empty.
    """
    n_train = resolve_size(train_size, n, "train_size")
    n_valid = resolve_size(valid_size, n, "valid_size")
    n_test = resolve_size(test_size, n, "test_size")
    if n_test is None:
        n_test = max(n - n_train - n_valid, 0)
    if n_train + n_valid + n_test > n:
        raise ValueError(
            f"train_size + valid_size + test_size = {n_train} + {n_valid} + {n_test} exceeds the "
            f"{n} conformers selected"
        )
    for name, count, size in (("train", n_train, train_size), ("valid", n_valid, valid_size)):
        if count == 0:
            raise ValueError(
                f"the {name} split is empty ({name}_size={size} of {n} conformers); "
                f"give a larger --{name}-size"
            )
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, n_train, n_valid, n_test])
    return {name: np.sort(order[bounds[k] : bounds[k + 1]]) for k, name in enumerate(SPLITS)}


def save_split(
    path: str | os.PathLike, split: dict[str, np.ndarray], meta: dict[str, Any] | None = None
) -> None:
    """Write the split (and what it indexes: files, groups, seed) as JSON, atomically."""
    from mlip.train.checkpoint import atomic_write_text

    payload = {"meta": meta or {}, **{k: [int(i) for i in split[k]] for k in SPLITS}}
    atomic_write_text(path, json.dumps(payload, indent=1))


def load_split(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read ``split.json``: (split, meta). ValueError naming the file when malformed."""
    try:
        with open(path) as handle:
            payload = json.load(handle)
        split = {k: np.asarray(payload[k], dtype=np.int64) for k in SPLITS}
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a valid split file ({err})") from err
    return split, payload.get("meta", {})


def check_split(split: dict[str, np.ndarray], n: int, path: str = "split") -> None:
    """The splits index 0..n-1 and do not overlap; ValueError otherwise."""
    seen: set[int] = set()
    for name in SPLITS:
        idx = split[name]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"{path}: {name} indices outside 0..{n - 1}; wrong dataset?")
        overlap = seen.intersection(idx.tolist())
        if overlap:
            raise ValueError(f"{path}: {name} overlaps another split at {sorted(overlap)[:5]}")
        seen.update(idx.tolist())
