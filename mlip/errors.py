"""Exceptions that name what was wrong and where, so a user can fix the input.

Errors a user can fix are ValueError or OSError (every class here but
:class:`MissingDependencyError`, an ImportError, derives from ValueError): the ``mlip``
command prints them as one line and exits with status 1 (or the error's
``exit_status``). Any other exception is a bug and keeps its traceback.
:func:`error_line` is the one wording of both kinds, used by the ``mlip`` dispatcher
and where an error cannot reach it (inside a LAMMPS callback, on one MPI rank of
several, which must stop all of them).
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


#: errors that come from the user's input, settings, files or installation: one line,
#: no traceback (the types of this module derive from these)
USER_ERRORS = (ValueError, OSError, MissingDependencyError)
#: the exit status of an internal error (a bug, or torch/CUDA/memory)
INTERNAL_ERROR = 3


def error_line(prefix: str, err: BaseException, where: str = "") -> tuple[str, int]:
    """The line that reports ``err`` and the exit status that goes with it.

    A user error (:data:`USER_ERRORS`): ``PREFIX: error: [WHERE: ]MESSAGE`` and status 1
    (or the error's ``exit_status``); anything else: ``PREFIX: internal error:
    [WHERE: ]TYPE: MESSAGE (...)`` and :data:`INTERNAL_ERROR`, to be printed after the
    traceback. ``prefix``: ``mlip md``; ``where``: ``step 3, rank 1``.
    """
    at = f"{where}: " if where else ""
    if isinstance(err, USER_ERRORS):
        return f"{prefix}: error: {at}{err}", int(getattr(err, "exit_status", 1))
    return (
        f"{prefix}: internal error: {at}{type(err).__name__}: {err} (the traceback is above; "
        "not a problem mlip found in the input: please report it with the command line)",
        INTERNAL_ERROR,
    )
