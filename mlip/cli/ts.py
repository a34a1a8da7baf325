"""``mlip ts MODEL GUESS``: a first-order saddle (transition state) with the exact Hessian.

Units: eV, Angstrom, eV/A, cm^-1. The options are the fields of :class:`mlip.ts.TSConfig`
with its defaults; ``run`` parses them into one config and calls
:func:`mlip.ts.find_transition_state` and :func:`mlip.ts.write_outputs`. Needs Sella
(``pip install 'mlip[ts]'``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from mlip.ts.config import DEFAULTS as D


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ts",
        help="transition state: Sella saddle search with the exact Hessian, barriers",
        description=(
            "First-order saddle search (Sella, order 1) from GUESS with the model's exact "
            "Hessian, a check that the saddle has exactly one imaginary mode, and the two "
            "minima it connects (relaxed from +/- that mode) with the barriers. Units: "
            "energies eV, forces eV/A, frequencies cm^-1, lengths A. Needs Sella "
            "(pip install 'mlip[ts]')."
        ),
    )
    parser.add_argument("model", help="model file (mlip.model.load_model)")
    parser.add_argument("guess", help="ASE-readable file or FILE.h5[:GROUP[:INDEX]]")
    parser.add_argument("--fmax", type=float, default=D.fmax, help="saddle convergence, eV/A")
    parser.add_argument("--steps", type=int, default=D.steps, help="Sella steps at most")
    parser.add_argument(
        "--internal", action="store_true", help="Sella's internal coordinates (molecules)"
    )
    parser.add_argument(
        "--hessian-every",
        type=int,
        default=D.hessian_every,
        help="recompute the exact Hessian every k steps (default: when Sella needs it)",
    )
    parser.add_argument(
        "--imaginary-tol",
        type=float,
        default=D.imaginary_tol,
        help="cm^-1; frequencies below minus this count as imaginary",
    )
    parser.add_argument(
        "--displacement",
        type=float,
        default=D.displacement,
        help="largest atomic step along +/- the imaginary mode before relaxing, A",
    )
    parser.add_argument(
        "--minimum-fmax", type=float, default=D.minimum_fmax, help="minima convergence, eV/A"
    )
    parser.add_argument("--minimum-steps", type=int, default=D.minimum_steps)
    parser.add_argument("--json", metavar="OUT.json", help="energies, barriers, frequencies")
    parser.add_argument("--traj", metavar="OUT.traj", help="ASE trajectory of the search")
    parser.add_argument(
        "--path", metavar="OUT.extxyz", help="reverse minimum, saddle, forward minimum"
    )
    parser.add_argument("--device", default=D.device, help="torch device")
    parser.add_argument("--dtype", default=D.dtype, choices=["float64", "float32"])
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mlip.ts import TSConfig, find_transition_state, write_outputs

    config = TSConfig(
        model=args.model,
        guess=args.guess,
        fmax=args.fmax,
        steps=args.steps,
        internal=args.internal,
        hessian_every=args.hessian_every,
        imaginary_tol=args.imaginary_tol,
        displacement=args.displacement,
        minimum_fmax=args.minimum_fmax,
        minimum_steps=args.minimum_steps,
        json=args.json,
        traj=args.traj,
        path=args.path,
        device=args.device,
        dtype=args.dtype,
    )
    with tempfile.TemporaryDirectory(prefix="mlip-ts-") as workdir:
        result = find_transition_state(config, workdir=workdir)
        print(result.summary())
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for path in write_outputs(result):
            print(f"wrote {path}")
    return 0
