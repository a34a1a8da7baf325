"""``mlip label INPUT OUT.h5 --calculator SPEC``: label structures with a reference method.

INPUT is any file ASE reads (every frame) or ``FILE.h5[:GROUP[:INDEX]]``. The output
(mlip HDF5: energy eV, forces eV/A, stress eV/A^3 for 3D periodic cells where the
calculator has it, Hessians eV/A^2 with ``--hessian``) is rewritten atomically as it
grows; running the same command again continues an interrupted run
(:mod:`mlip.labelling.label`).
"""

from __future__ import annotations

import argparse

from mlip.labelling.calculators import KNOWN_SPECS
from mlip.labelling.label import LabelConfig

D = LabelConfig("", "", "")  # the defaults


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "label",
        help="label structures with any ASE calculator (EMT, xTB, PySCF, ...) into mlip HDF5",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="INPUT", help="ASE-readable file or FILE.h5[:GROUP]")
    parser.add_argument("output", metavar="OUT.h5", help="mlip HDF5 output (resumed if present)")
    parser.add_argument(
        "--calculator", required=True, metavar="SPEC", help=f"one of {', '.join(KNOWN_SPECS)}"
    )
    parser.add_argument(
        "--hessian",
        action="store_true",
        help="Hessians too: the calculator's own where it has one, else central differences "
        "of its forces (6N force calls)",
    )
    parser.add_argument(
        "--fd-step", type=float, default=D.fd_step, help="finite-difference step, A"
    )
    parser.add_argument("--workers", type=int, default=D.workers, help="processes")
    parser.add_argument(
        "--flush-seconds",
        type=float,
        default=D.flush_seconds,
        help="rewrite the output at least this often, s (0: after every structure)",
    )
    parser.add_argument(
        "--force", action="store_true", help="start again instead of resuming an existing OUT"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mlip.labelling.label import describe, label_structures

    config = LabelConfig(
        input=args.input,
        output=args.output,
        calculator=args.calculator,
        hessian=args.hessian,
        fd_step=args.fd_step,
        workers=args.workers,
        flush_seconds=args.flush_seconds,
        overwrite=args.force,
        progress=args.progress,
    )
    print(describe(label_structures(config)))
    return 0
