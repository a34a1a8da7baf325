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
    from mlip.fileio import atomic_write_text

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
    """The splits index 0..n-1, hold no index twice and do not overlap; ValueError otherwise."""
    seen: dict[int, str] = {}
    for name in SPLITS:
        idx = np.asarray(split[name])
        outside = idx[(idx < 0) | (idx >= n)]
        if outside.size:
            raise ValueError(
                f"{path}: {name} index {int(outside[0])} outside 0..{n - 1} (the {n} selected "
                "conformers); wrong dataset or groups?"
            )
        values, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"{path}: {name} holds index {int(values[counts > 1][0])} twice")
        for i in values.tolist():
            if i in seen:
                raise ValueError(f"{path}: index {i} is in both {seen[i]} and {name}")
            seen[i] = name


def read_split_file(path: str | os.PathLike, n: int) -> dict[str, np.ndarray]:
    """An explicit split of the ``n`` selected conformers from a JSON file.

    The file holds ``{"train": [...], "valid": [...], "test": [...]}``: lists of
    integer indices into the selected conformers (in the order of ``data.paths`` and
    ``data.groups``), like the ``split.json`` a run writes; ``"test"`` may be left out
    and ``"meta"`` is ignored. The indices must lie in 0..n-1, appear once and the
    lists must not overlap; train and valid must not be empty. Returns each list sorted
    (int64). Raises ValueError naming the file, the list and the bad value.
    """
    try:
        with open(path) as handle:
            payload = json.load(handle)
    except FileNotFoundError as err:
        raise ValueError(f"split file not found: {path}") from err
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON split file ({err})") from err
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: expected a JSON object with lists 'train', 'valid', 'test'")
    unknown = sorted(set(payload) - {*SPLITS, "meta"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; expected {list(SPLITS)} (and 'meta')")
    split = {}
    for name in SPLITS:
        values = payload.get(name, [])
        if name != "test" and name not in payload:
            raise ValueError(f"{path}: no '{name}' list")
        if not isinstance(values, list):
            raise ValueError(f"{path}: '{name}' must be a list of indices, got {values!r:.80}")
        for k, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{path}: {name}[{k}] = {value!r} is not an integer index")
        split[name] = np.sort(np.asarray(values, dtype=np.int64))
    check_split(split, n, os.fspath(path))
    for name in ("train", "valid"):
        if split[name].size == 0:
            raise ValueError(f"{path}: the {name} list is empty")
    return split
