"""Exceptions that name what was wrong and where, so a user can fix the input."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data: names the file, the HDF5 group, the field and (optionally) the index.

    Example message: ``data.h5: group 'ethanol', field 'forces', conformer 12: contains NaN``.
    """

    def __init__(
        self,
        message: str,
        file: str | None = None,
        group: str | None = None,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        self.file, self.group, self.field, self.index = file, group, field, index
        where = []
        if file is not None:
            where.append(str(file))
        if group is not None:
            where.append(f"group '{group}'")
        if field is not None:
            where.append(f"field '{field}'")
        if index is not None:
            where.append(f"conformer {index}")
        super().__init__(f"{': '.join([', '.join(where)]) + ': ' if where else ''}{message}")


class UnknownElementError(ValueError):
    """A structure holds an element the model was not built for."""


class CheckpointError(RuntimeError):
    """A model or checkpoint file that cannot be read, or does not match."""
