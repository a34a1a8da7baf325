"""The ``mlip`` command: ``mlip train|eval|convert|vib|phonons|ts|md|label|learn|lammps``.

Each subcommand lives in its own module of this package, which exposes
``add_parser(subparsers)`` (declares its arguments) and ``run(args) -> int``
(parses them into a typed config and calls library functions). This module only
dispatches, and turns the errors a user can fix (bad input, files, settings) into one
line ``mlip CMD: error: MESSAGE`` and exit status 1; ``--debug`` (or the environment
variable ``MLIP_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

SUBCOMMANDS = ("train", "eval", "convert", "vib", "phonons", "ts", "md", "label", "learn", "lammps")
#: the MPI rank under a launcher (MPICH/Hydra, Open MPI, PMIx); absent: not launched by one
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip",
        description="Machine-learned interatomic potentials (units: eV, Angstrom, amu, fs).",
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


#: errors that come from the user's input, settings or files: one line, no traceback
USER_ERRORS = (ValueError, OSError, KeyError, RuntimeError)


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
        message = str(err) if not isinstance(err, KeyError) else f"missing key {err}"
        if launcher_rank() == 0:
            print(f"mlip {args.command}: error: {message}", file=sys.stderr)
            print("(run with --debug for the traceback)", file=sys.stderr)
        return 1


def launcher_rank() -> int:
    """This process's rank as the MPI launcher set it (0 without a launcher)."""
    for name in RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
