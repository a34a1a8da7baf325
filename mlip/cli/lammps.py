"""``mlip lammps IN.lmp``: a LAMMPS input with ``pair_style mlip MODEL.pt``, on MPI ranks.

The input is an ordinary LAMMPS input (``units metal``: eV, Angstrom, ps, bar) that
declares the potential as ``pair_style mlip MODEL.pt`` and ``pair_coeff * * Cu Au``
(the element of each atom type, in type order); ``mpiexec -n 4 mlip lammps IN.lmp``
runs it on 4 ranks. The options are the fields of
:class:`mlip.integrations.lammps_input.LammpsConfig`, with its defaults; ``run`` parses
them into one config and calls :func:`mlip.integrations.lammps.run_input`.
"""

from __future__ import annotations

import argparse
import dataclasses

from mlip.integrations.lammps_input import LammpsConfig

D = LammpsConfig()
HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(LammpsConfig)}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "lammps",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="run a LAMMPS input with an mlip model (pair_style mlip), on MPI ranks",
        description=(
            "Run a LAMMPS input whose potential is 'pair_style mlip MODEL.pt' with "
            "'pair_coeff * * ELEMENT ...' (units metal: eV, A, ps, bar); on N ranks: "
            "mpiexec -n N mlip lammps IN.lmp. A committee model fills the per-atom "
            "force std d_mlip_force_std (eV/A), f_mlip[1] (its largest value) and "
            "f_mlip[2] (the energy std, eV); they are zero for a single model."
        ),
    )
    parser.add_argument("input", metavar="IN.lmp", help=HELP["input"])
    parser.add_argument(
        "-var", dest="variables", nargs="+", action="append", default=[],
        metavar=("NAME", "VALUE"), help=HELP["variables"],
    )  # fmt: skip
    parser.add_argument("--device", default=D.device, help=HELP["device"])
    parser.add_argument("--dtype", default=D.dtype, choices=["float64", "float32"])
    parser.add_argument("--log", default=D.log, metavar="FILE", help=HELP["log"])
    parser.add_argument("--threads", type=int, default=D.threads, help=HELP["threads"])
    parser.add_argument("--skin", type=float, default=D.skin, help=f"{HELP['skin']}, A")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mlip.integrations.lammps import run_input

    config = LammpsConfig(
        input=args.input,
        variables=tuple(tuple(v) for v in args.variables),
        device=args.device,
        dtype=args.dtype,
        log=args.log,
        threads=args.threads,
        skin=args.skin,
    )
    run_input(config)
    return 0
