"""``mlip phonons MODEL STRUCTURE --supercell A B C``: phonons from the exact Hessian.

Units: Angstrom, eV, eV/A, GPa, THz, K. The options are the fields of
:class:`mlip.phonons.PhononConfig` with its defaults; ``run`` parses them into one
config and calls :func:`mlip.phonons.run_phonons` and :func:`mlip.phonons.write_outputs`.
"""

from __future__ import annotations

import argparse
import sys

from mlip.integrations.phonopy import METHODS
from mlip.phonons.config import DEFAULTS as D
from mlip.phonons.config import OPTIMIZERS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "phonons",
        help="phonon band structure, DOS and thermal properties from the exact Hessian",
        description=(
            "Phonons of a crystal (phonopy) with force constants from the model's exact "
            "Hessian: Hessian-vector products of the symmetry-irreducible supercell atoms, "
            "no displacement amplitude. Band structure along phonopy's automatic path and "
            "DOS (PNG), harmonic thermal properties, frequencies at given q-points, "
            "imaginary modes by q-point. Units: frequencies THz, energies eV, forces eV/A, "
            "stress GPa, temperature K."
        ),
    )
    parser.add_argument("model", help="model file (mlip.model.load_model)")
    parser.add_argument(
        "structure", help="crystal with a 3D cell: ASE-readable file or FILE.h5[:GROUP[:INDEX]]"
    )
    parser.add_argument(
        "--supercell",
        type=int,
        nargs=3,
        required=True,
        metavar=("A", "B", "C"),
        help="repeats of the input cell along its vectors (its width should exceed the "
        "model's num_layers x r_max)",
    )
    parser.add_argument(
        "--qpoints",
        metavar='"QX QY QZ; ..."',
        help="q-points in reduced coordinates of the input cell's reciprocal lattice "
        "(default: the special points of the band path)",
    )
    parser.add_argument("--relax", action="store_true", help="relax positions and cell first")
    parser.add_argument(
        "--fmax", type=float, default=D.fmax, help="--relax convergence, eV/A (and eV per atom)"
    )
    parser.add_argument("--relax-steps", type=int, default=D.relax_steps)
    parser.add_argument("--optimizer", default=D.optimizer, choices=OPTIMIZERS)
    parser.add_argument(
        "--warn-fmax", type=float, default=D.warn_fmax, help="warn above this force, eV/A"
    )
    parser.add_argument(
        "--warn-stress",
        type=float,
        default=D.warn_stress,
        help="warn above this residual stress component, GPa",
    )
    parser.add_argument(
        "--method",
        default=D.method,
        choices=METHODS,
        help="directions: phonopy's symmetry-reduced displacement directions (fewest "
        "products); rows: the 3 Cartesian Hessian rows of each irreducible atom",
    )
    parser.add_argument(
        "--mesh",
        type=float,
        nargs="+",
        default=[D.mesh],
        metavar="N",
        help="DOS and thermal mesh: a length in A (phonopy's automatic mesh) or N1 N2 N3",
    )
    parser.add_argument("--band-points", type=int, default=D.band_points)
    parser.add_argument("--tmin", type=float, default=D.t_min, help="K")
    parser.add_argument("--tmax", type=float, default=D.t_max, help="K")
    parser.add_argument("--tstep", type=float, default=D.t_step, help="K")
    parser.add_argument(
        "--imaginary-tol",
        type=float,
        default=D.imaginary_tol,
        help="THz; frequencies below minus this count as imaginary",
    )
    parser.add_argument("--symprec", type=float, default=D.symprec, help="A")
    parser.add_argument("--json", metavar="OUT.json", help="q-points, frequencies, thermal table")
    parser.add_argument("--plot", metavar="OUT.png", help="band structure and DOS")
    parser.add_argument("--device", default=D.device, help="torch device")
    parser.add_argument("--dtype", default=D.dtype, choices=["float64", "float32"])
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mlip.phonons import PhononConfig, parse_mesh, parse_qpoints, run_phonons, write_outputs

    config = PhononConfig(
        model=args.model,
        structure=args.structure,
        supercell=tuple(args.supercell),
        relax=args.relax,
        fmax=args.fmax,
        relax_steps=args.relax_steps,
        optimizer=args.optimizer,
        warn_fmax=args.warn_fmax,
        warn_stress=args.warn_stress,
        method=args.method,
        symprec=args.symprec,
        band_points=args.band_points,
        mesh=parse_mesh(args.mesh),
        qpoints=parse_qpoints(args.qpoints) if args.qpoints else (),
        t_min=args.tmin,
        t_max=args.tmax,
        t_step=args.tstep,
        imaginary_tol=args.imaginary_tol,
        json=args.json,
        plot=args.plot,
        device=args.device,
        dtype=args.dtype,
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)

    result = run_phonons(config, log=log)
    print(result.summary())
    for path in write_outputs(result, config.json, config.plot):
        print(f"wrote {path}")
    return 0
