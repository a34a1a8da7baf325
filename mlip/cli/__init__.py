"""The ``mlip`` command: ``mlip train|eval|convert|vib|md``.

Each subcommand lives in its own module of this package, which exposes
``add_parser(subparsers)`` (declares its arguments) and ``run(args) -> int``
(parses them into a typed config and calls library functions). This module only
dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("train", "eval", "convert", "vib", "md")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip",
        description="Machine-learned interatomic potentials (units: eV, Angstrom, amu, fs).",
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
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
