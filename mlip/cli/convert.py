"""``mlip convert IN OUT``: convert labelled data to mlip-hdf5 or to an ASE format."""

from __future__ import annotations

import argparse
import sys

from mlip.data.convert import FORMATS, convert
from mlip.data.formats.asefile import DEFAULT_KEYS, LabelKeys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert datasets (extxyz/traj/DFT outputs, rMD17, ANI-1x, SPICE, mlip-hdf5)",
        description=(
            "Convert labelled structures to mlip-hdf5 (OUT ending in .h5/.hdf5) or to any "
            "ASE-writable format (e.g. .xyz, .traj). Units written: eV, Angstrom, eV/A "
            "(forces = -dE/dR), eV/A^2 (Hessians), eV/A^3 (stress). Hessians cannot be "
            "stored in ASE formats and are dropped there."
        ),
    )
    parser.add_argument("input", metavar="IN", help="input file")
    parser.add_argument("output", metavar="OUT", help="output file (.h5 for mlip-hdf5)")
    parser.add_argument(
        "--format",
        choices=("auto", *FORMATS),
        default="auto",
        help="input format (default: detected from content and extension)",
    )
    parser.add_argument(
        "--level-of-theory",
        default=None,
        help=(
            "label recorded in the output; for ANI-1x input, the key prefix to read "
            "(default wb97x_dz, e.g. wb97x_tz, 'ccsd(t)_cbs')"
        ),
    )
    for label, unit in (("energy", "eV"), ("forces", "eV/A"), ("stress", "eV/A^3, Voigt or 3x3"),
                        ("hessian", "eV/A^2, 3N x 3N")):  # fmt: skip
        parser.add_argument(
            f"--{label}-key",
            default=getattr(DEFAULT_KEYS, label),
            metavar="NAME",
            help=f"name of the {label} ({unit}) in an ASE file: a calculator result, info "
            f"or arrays entry (default {getattr(DEFAULT_KEYS, label)!r}; MACE/NequIP: "
            f"REF_{label})",
        )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = convert(
            args.input,
            args.output,
            format=args.format,
            level_of_theory=args.level_of_theory,
            overwrite=args.force,
            keys=LabelKeys(args.energy_key, args.forces_key, args.stress_key, args.hessian_key),
        )
    except (ValueError, OSError) as err:  # DataError is a ValueError
        print(f"mlip convert: error: {err}", file=sys.stderr)
        return 1
    for summary in result.groups:
        print(summary.line())
    total = sum(s.num_conformers for s in result.groups)
    print(
        f"wrote {result.output} ({result.output_format}, {len(result.groups)} groups, "
        f"{total} conformers, level of theory: {result.level_of_theory})"
    )
    if result.hessians_dropped:
        print(
            f"warning: {result.hessians_dropped} Hessians dropped ({result.output_format} "
            "cannot store them; use .h5)",
            file=sys.stderr,
        )
    return 0
