"""``mlip lammps IN.lmp``: a LAMMPS input with ``pair_style mlip MODEL.pt``, on MPI ranks.

The input is an ordinary LAMMPS input that declares the potential as
``pair_style mlip MODEL.pt`` and ``pair_coeff * * Cu Au`` (the element of each atom
type, in type order); ``mpiexec -n 4 mlip lammps IN.lmp`` runs it on 4 ranks (LAMMPS's
spatial decomposition). Units: the input is LAMMPS ``units metal`` (energies eV,
lengths A, time ps, pressure bar), which the coupling requires; inside mlip eV and A
(the model's energies, forces and virial pass unchanged); --skin is in A. A committee
model fills the per-atom force std d_mlip_force_std (eV/A), f_mlip[1] (its largest
value) and f_mlip[2] (the energy std, eV); they are zero for a single model. An error
in the model stops every rank: exit status 1 for an error in the input or settings, 2
for a non-finite energy or force (the run blew up), 3 for an internal error.
"""

from __future__ import annotations

import argparse

from mlip.cli.options import add_command, add_options, given
from mlip.integrations.lammps_input import LammpsConfig

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": LammpsConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "lammps",
        "run a LAMMPS input with an mlip model (pair_style mlip), on MPI ranks",
        __doc__,
    )
    add_options(parser, LammpsConfig, positional=("input",))
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> LammpsConfig:
    return LammpsConfig(**given(args, LammpsConfig))


def run(args: argparse.Namespace) -> int:
    from mlip.integrations.lammps import run_input

    run_input(config_from_args(args))
    return 0
