"""``mlip ts MODEL GUESS``: a first-order saddle (transition state) with the exact Hessian.

First-order saddle search (Sella, order 1) from GUESS with the model's exact Hessian, a
check that the saddle has exactly one imaginary mode, and the two minima it connects
(relaxed from +/- that mode) with the barriers. Units: energies eV, forces eV/A,
frequencies cm^-1, lengths A. Needs Sella (pip install 'mlip[ts]').
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from mlip.cli.options import add_command, add_options, given
from mlip.ts.config import TSConfig

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": TSConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "ts",
        "transition state: Sella saddle search with the exact Hessian, barriers",
        __doc__,
    )
    add_options(parser, TSConfig, positional=("model", "guess"))
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> TSConfig:
    return TSConfig(**given(args, TSConfig))


def run(args: argparse.Namespace) -> int:
    from mlip.ts import find_transition_state, write_outputs

    config = config_from_args(args)
    with tempfile.TemporaryDirectory(prefix="mlip-ts-") as workdir:
        result = find_transition_state(config, workdir=workdir)
        print(result.summary())
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for path in write_outputs(result):
            print(f"wrote {path}")
    return 0
