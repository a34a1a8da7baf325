"""``mlip vib MODEL STRUCTURE``: harmonic frequencies, ZPE and thermochemistry.

Units: frequencies cm^-1, energies eV, entropies eV/K, forces eV/A, T in K.
STRUCTURE (and --reference) is any file ASE reads or ``FILE.h5[:GROUP[:INDEX]]``
(:mod:`mlip.data.spec`: GROUP may be left out when the file has one group).
"""

from __future__ import annotations

import argparse
import sys

from mlip.vib.relax import STATIONARY_FMAX


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "vib",
        help="vibrational analysis from the model's exact Hessian",
        description=(
            "Harmonic vibrational analysis from the model's analytic Hessian "
            "(frequencies in cm^-1, energies in eV, temperature in K, forces in eV/A). "
            "STRUCTURE is any file ASE reads, or an mlip HDF5 conformer FILE.h5[:GROUP[:INDEX]] "
            "(GROUP may be left out when the file has one group; INDEX defaults to 0)."
        ),
    )
    parser.add_argument("model", help="model file (mlip.model.load_model)")
    parser.add_argument("structure", help="ASE-readable file or FILE.h5[:GROUP[:INDEX]]")
    parser.add_argument("--optimize", action="store_true", help="relax first (BFGS + Newton steps)")
    parser.add_argument(
        "--fmax", type=float, default=1e-4, help="force threshold for --optimize, eV/A"
    )
    parser.add_argument(
        "--indices",
        type=int,
        nargs="+",
        metavar="I",
        help="analyse only these atoms (0-based), the others held fixed: only their "
        "Hessian rows are computed, nothing is projected (ASE's Vibrations(indices=...)); "
        "default: the atoms no FixAtoms constraint of the input holds",
    )
    parser.add_argument(
        "--warn-fmax",
        type=float,
        default=STATIONARY_FMAX,
        help="warn when the largest force on an analysed atom is above this, eV/A "
        "(not a stationary point of the model)",
    )
    parser.add_argument(
        "--reference",
        help="reference Hessian FILE.h5[:GROUP[:INDEX]] (or a JSON written by --json): "
        "prints a per-mode comparison with MAE and max error in cm^-1",
    )
    parser.add_argument("--temperature", type=float, default=298.15, help="K")
    parser.add_argument("--pressure", type=float, default=101325.0, help="Pa (ideal gas)")
    parser.add_argument("--symmetry-number", type=int, default=1, help="rotational symmetry")
    parser.add_argument("--json", metavar="OUT", help="write the analysis as JSON")
    parser.add_argument("--plot", metavar="OUT.png", help="save a (broadened) stick spectrum")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mlip.calculator import MLIPCalculator
    from mlip.vib import (
        analyse_atoms,
        compare_modes,
        plot_spectrum,
        read_reference,
        read_structure,
        relax,
        stationarity_warning,
        thermochemistry,
    )

    atoms, _ = read_structure(args.structure)
    calculator = MLIPCalculator(args.model, device=args.device, dtype=args.dtype)
    atoms.calc = calculator
    if args.optimize:
        outcome = relax(atoms, fmax=args.fmax)
        status = "converged" if outcome.converged else "NOT converged"
        print(
            f"relaxation {status}: max force {outcome.fmax:.2e} eV/A, energy "
            f"{outcome.energy:.6f} eV, {outcome.optimizer_steps} optimiser + "
            f"{outcome.newton_steps} Newton steps {outcome.note}".rstrip()
        )
    warning = stationarity_warning(
        atoms, fmax=args.warn_fmax, indices=args.indices, fix="--optimize"
    )
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    result = analyse_atoms(atoms, calculator, indices=args.indices)
    if result.indices is not None:
        print(
            f"{len(atoms)} atoms, partial analysis of {len(result.indices)} (the others "
            f"fixed), {result.num_modes} vibrational modes"
        )
    else:
        print(f"{len(atoms)} atoms, {result.geometry}, {result.num_modes} vibrational modes")
    print(result.table())
    if result.imaginary.any():
        print(f"warning: {int(result.imaginary.sum())} imaginary mode(s) (not a minimum)")
    thermo = thermochemistry(
        result,
        atoms,
        temperature=args.temperature,
        pressure=args.pressure,
        symmetrynumber=args.symmetry_number,
    )
    model = {"periodic": "harmonic solid", "partial": "harmonic, fixed atoms left out"}.get(
        result.geometry, "ideal gas, rigid rotor"
    )
    print(f"harmonic thermochemistry at {args.temperature:g} K ({model}):")
    for key, value in thermo.items():
        if key not in ("temperature", "pressure"):
            unit = "eV/K" if key == "entropy" else ("" if key == "n_imaginary" else "eV")
            print(f"  {key:<18} {value:.6g} {unit}".rstrip())
    if args.reference:
        _, reference = read_reference(args.reference, atomic_numbers=atoms.numbers)
        print(f"comparison with {args.reference} (cm^-1):")
        print(compare_modes(result, reference).table())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        plot_spectrum(result.frequencies, args.plot)
        print(f"wrote {args.plot}")
    return 0
