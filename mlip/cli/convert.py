"""``mlip convert IN OUT``: convert labelled data to mlip-hdf5 or to an ASE format.

Convert labelled structures to mlip-hdf5 (OUT ending in .h5/.hdf5) or to any
ASE-writable format (e.g. .xyz, .traj). Units written: eV, Angstrom, eV/A (forces =
-dE/dR), eV/A^2 (Hessians), eV/A^3 (stress). Hessians cannot be stored in ASE formats
and are dropped there.
"""

from __future__ import annotations

import argparse
import sys

from mlip.cli.options import add_command, add_options, given
from mlip.data.convert import ConvertConfig

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": ConvertConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "convert",
        "convert datasets (extxyz/traj/DFT outputs, rMD17, ANI-1x, SPICE, mlip-hdf5)",
        __doc__,
    )
    add_options(parser, ConvertConfig, positional=("input", "output"))
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> ConvertConfig:
    return ConvertConfig(**given(args, ConvertConfig))


def run(args: argparse.Namespace) -> int:
    result = config_from_args(args).run()
    print(result.summary())
    for warning in result.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return 0
