"""``mlip label INPUT OUT.h5 --calculator SPEC``: label structures with a reference method.

INPUT is any file ASE reads (every frame) or ``FILE.h5[:GROUP[:INDEX]]``. The output
(mlip HDF5: energy eV, forces eV/A, stress eV/A^3 for 3D periodic cells where the
calculator has it, Hessians eV/A^2 with ``--hessian``) is rewritten atomically as it
grows; running the same command again continues an interrupted run
(:mod:`mlip.labelling.label`).
"""

from __future__ import annotations

import argparse

from mlip.cli.options import add_command, add_options, given
from mlip.labelling.label import LabelConfig

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": LabelConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "label",
        "label structures with any ASE calculator (EMT, xTB, PySCF, ...) into mlip HDF5",
        __doc__,
    )
    add_options(parser, LabelConfig, positional=("input", "output"))
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> LabelConfig:
    return LabelConfig(**given(args, LabelConfig))


def run(args: argparse.Namespace) -> int:
    from mlip.labelling.label import describe, label_structures

    print(describe(label_structures(config_from_args(args))))
    return 0
