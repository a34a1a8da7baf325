"""``mlip phonons MODEL STRUCTURE --supercell A B C``: phonons from the exact Hessian.

Phonons of a crystal (phonopy) with force constants from the model's exact Hessian:
Hessian-vector products of the symmetry-irreducible supercell atoms, no displacement
amplitude. Band structure along phonopy's automatic path and DOS (PNG), harmonic
thermal properties, frequencies at given q-points, imaginary modes by q-point. Units:
frequencies THz, energies eV, forces eV/A, stress GPa, temperature K, lengths A.
"""

from __future__ import annotations

import argparse
import sys

from mlip.cli.options import add_command, add_options, given
from mlip.phonons.config import PhononConfig

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": PhononConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "phonons",
        "phonon band structure, DOS and thermal properties from the exact Hessian",
        __doc__,
    )
    add_options(parser, PhononConfig, positional=("model", "structure"), required=("supercell",))
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> PhononConfig:
    return PhononConfig(**given(args, PhononConfig))


def run(args: argparse.Namespace) -> int:
    from mlip.phonons import run_phonons, write_outputs

    config = config_from_args(args)

    def log(line: str) -> None:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)

    result = run_phonons(config, log=log)
    print(result.summary())
    for path in write_outputs(result, config.json, config.plot):
        print(f"wrote {path}")
    return 0
