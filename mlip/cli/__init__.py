"""The ``mlip`` command: ``mlip train|eval|convert|vib|phonons|ts|md|label|learn|lammps``.

Each subcommand lives in its own module of this package, which exposes
``add_parser(subparsers)`` (declares its arguments) and ``run(args) -> int``
(parses them into a typed config and calls library functions). This module only
dispatches, and is the one place that handles errors:

- an error a user can fix (:data:`mlip.errors.USER_ERRORS`: bad input, files, settings,
  a missing optional package) is one line ``mlip CMD: error: MESSAGE``, exit status 1
  (or the error's ``exit_status``: 2 for an MD explosion); ``--debug`` (or the
  environment variable ``MLIP_DEBUG=1``) shows its traceback instead;
- any other exception (raised inside torch or numpy, out of memory, a bug) keeps its
  traceback, followed by one line ``mlip CMD: internal error: ...``, exit status 3;
- a usage error (an unknown option, a bad value) is argparse's, exit status 2.

The wording of both kinds is :func:`mlip.errors.error_line`, which ``mlip lammps`` also
uses where an error cannot reach this module (in LAMMPS's callback, or on one MPI rank
of several: it must stop them all). Under an MPI launcher only rank 0 prints a user
error, which every rank meets alike.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from mlip.errors import USER_ERRORS, error_line

SUBCOMMANDS = ("train", "eval", "convert", "vib", "phonons", "ts", "md", "label", "learn", "lammps")
#: the MPI rank under a launcher (MPICH/Hydra, Open MPI, PMIx); absent: not launched by one
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip",
        description="Machine-learned interatomic potentials (units: eV, Angstrom, amu, fs).",
        epilog="exit status: 0 done; 1 an error in the input or settings (one line); 2 a "
        "usage error, or an MD run that blew up; 3 an internal error (with its traceback)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of an error (also: MLIP_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"mlip.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"mlip.cli.{name}":
                raise
            continue  # subcommand not built yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MLIP_DEBUG", "") not in ("", "0")
    # --debug anywhere on the line (``python train.py --debug`` puts it after the command)
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as err:
        if debug:
            raise
        line, status = error_line(f"mlip {args.command}", err)
        if launcher_rank() == 0:  # every rank meets it alike: one line, not one per rank
            print(line, file=sys.stderr)
            print("(run with --debug for the traceback)", file=sys.stderr)
        return status
    except Exception as err:  # noqa: BLE001 (not the user's: keep the whole traceback)
        if debug:
            raise
        traceback.print_exc()
        line, status = error_line(f"mlip {args.command}", err)
        print(line, file=sys.stderr)
        return status


def launcher_rank() -> int:
    """This process's rank as the MPI launcher set it (0 without a launcher)."""
    for name in RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
