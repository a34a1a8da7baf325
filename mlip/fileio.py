"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader (or a process killed half-way) sees either the old file or the new one,
never a partial file; on failure the temporary file is removed. :func:`atomic_path` is
the one implementation (for writers that want a file name, e.g. h5py or ase.io);
:func:`atomic_write` and the helpers below hand a binary handle instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, overwrite: bool = True, create_folder: bool = True
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; fsync it and rename it onto ``path`` on success.

    The temporary file keeps the output's suffix (so format guessing by extension
    works), gets the usual permissions (``0o666`` minus the umask) and is removed if the
    body raises, so no partial output is ever left. ``overwrite=False`` refuses
    (FileExistsError) when ``path`` exists; ``create_folder=False`` refuses
    (FileNotFoundError) when its folder does not exist instead of creating it.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (CLI: --force) to replace it")
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        if not create_folder:
            raise FileNotFoundError(f"output folder {folder} does not exist")
        folder.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=folder
    )
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(handle)`` on a temporary binary file and rename it to ``path``."""
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        write(handle)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically."""
    atomic_write(path, lambda handle: torch.save(obj, handle))
