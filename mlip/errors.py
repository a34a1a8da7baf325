"""Exceptions that name what was wrong and where, so a user can fix the input.

Errors a user can fix are ValueError or OSError (every class here but
:class:`MissingDependencyError`, an ImportError, derives from ValueError): the ``mlip``
command prints them as one line and exits with status 1 (or the error's
``exit_status``). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

from ase.data import chemical_symbols


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


def check_known_elements(present: Iterable[int], known: Iterable[int] | None) -> None:
    """Raise :class:`UnknownElementError` if ``present`` holds an element not in ``known``.

    The one check (and message) of the model, the ASE calculator and the MD force field:
    ``element(s) C, Cl not known to the model; it knows H, O``. ``known`` None means the
    model takes any element (nothing to check).
    """
    if known is None:
        return
    known_set = {int(z) for z in known}
    unknown = sorted({int(z) for z in present} - known_set)
    if unknown:
        raise UnknownElementError(
            f"element(s) {', '.join(chemical_symbols[z] for z in unknown)} not known to the "
            f"model; it knows {', '.join(chemical_symbols[z] for z in sorted(known_set))}"
        )


class CheckpointError(ValueError):
    """A model or checkpoint file that cannot be read, or does not match."""


class ConvergenceError(ValueError):
    """A search that did not converge, or converged to the wrong kind of stationary point
    (a saddle search, a relaxation): another input or other settings are needed."""


class MissingDependencyError(ImportError):
    """An optional package a feature needs is not installed; the message says how to
    install it (``pip install 'mlip[ts]'``)."""
