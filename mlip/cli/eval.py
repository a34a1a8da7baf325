"""``mlip eval MODEL [DATA.h5 ...] [--group G] [--json OUT] [--plot DIR]``: error table.

MODEL is a model file (``model.pt``) or a run directory; a run directory without DATA is
evaluated on its own data and train/valid/test split (``config.yaml``, ``split.json``).
Errors: energy meV/atom and meV, forces meV/A, full Hessians meV/A^2, stress meV/A^3.
A committee (``mlip train --committee K``) also gets its calibration: the Spearman
correlation between its force std and the force error of its mean per conformer, and
the error of the mean against each member's (:mod:`mlip.train.calibration`).
"""

from __future__ import annotations

import argparse

from mlip.cli.options import add_command, add_options, given
from mlip.train.evaluate import EvalConfig

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": EvalConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "eval",
        "errors (MAE/RMSE) and parity plots of a model on labelled data",
        __doc__,
    )
    add_options(parser, EvalConfig, positional=("model", "data"), optional_positional=("data",))
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    return EvalConfig(**given(args, EvalConfig))


def run(args: argparse.Namespace) -> int:
    from mlip.train.evaluate import run_evaluation

    for path in run_evaluation(config_from_args(args), log=print):
        print(f"wrote {path}")
    return 0
