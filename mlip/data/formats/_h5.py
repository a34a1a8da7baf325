"""Small helpers for reading external HDF5 files with errors naming file/group/field."""

from __future__ import annotations

import os

import h5py
import numpy as np

from mlip.errors import DataError


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file read-only; DataError naming the file if it is not one."""
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"not a readable HDF5 file: {err}", file=str(path)) from err


def dataset(
    group: h5py.Group, key: str, file: str, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Read ``group[key]`` fully; DataError if missing or (with ``shape``) misshapen.

    ``shape`` entries of -1 match any length.
    """
    name = group.name.lstrip("/")
    if key not in group or not isinstance(group[key], h5py.Dataset):
        available = sorted(k for k in group if isinstance(group[k], h5py.Dataset))
        raise DataError(f"missing dataset (found {available})", file=file, group=name, field=key)
    array = np.asarray(group[key][()])
    if shape is not None and not _matches(array.shape, shape):
        expected = tuple("*" if e == -1 else e for e in shape)
        raise DataError(f"shape {array.shape}, expected {expected}", file, name, key)
    return array


def _matches(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(e in (-1, a) for a, e in zip(actual, expected, strict=True))


def check_finite(array: np.ndarray, file: str, group: str, field: str) -> None:
    """DataError naming the first conformer (leading axis) holding NaN or inf."""
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise DataError("contains NaN or inf", file=file, group=group, field=field, index=index)
