"""``mlip vib MODEL STRUCTURE``: harmonic frequencies, ZPE and thermochemistry.

Units: frequencies cm^-1, energies eV, entropies eV/K, forces eV/A, T in K.
STRUCTURE (and --reference) is any file ASE reads or ``FILE.h5[:GROUP[:INDEX]]``
(:mod:`mlip.data.spec`: GROUP may be left out when the file has one group).
"""

from __future__ import annotations

import argparse
import sys

from mlip.cli.options import add_command, add_options, given
from mlip.vib.config import VibConfig

DESCRIPTION = (
    "Harmonic vibrational analysis from the model's analytic Hessian (frequencies in cm^-1, "
    "energies in eV, temperature in K, forces in eV/A). STRUCTURE is any file ASE reads, or "
    "an mlip HDF5 conformer FILE.h5[:GROUP[:INDEX]] (GROUP may be left out when the file "
    "has one group; INDEX defaults to 0)."
)


#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": VibConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers, "vib", "vibrational analysis from the model's exact Hessian", DESCRIPTION
    )
    add_options(parser, VibConfig, positional=("model", "structure"))
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> VibConfig:
    return VibConfig(**given(args, VibConfig))


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

    config = config_from_args(args)
    indices = None if config.indices is None else list(config.indices)
    atoms, _ = read_structure(config.structure)
    calculator = MLIPCalculator(config.model, device=config.device, dtype=config.dtype)
    atoms.calc = calculator
    if config.optimize:
        outcome = relax(atoms, fmax=config.fmax)
        status = "converged" if outcome.converged else "NOT converged"
        print(
            f"relaxation {status}: max force {outcome.fmax:.2e} eV/A, energy "
            f"{outcome.energy:.6f} eV, {outcome.optimizer_steps} optimiser + "
            f"{outcome.newton_steps} Newton steps {outcome.note}".rstrip()
        )
    warning = stationarity_warning(atoms, fmax=config.warn_fmax, indices=indices, fix="--optimize")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    result = analyse_atoms(atoms, calculator, indices=indices)
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
        temperature=config.temperature,
        pressure=config.pressure,
        symmetrynumber=config.symmetry_number,
    )
    model = {"periodic": "harmonic solid", "partial": "harmonic, fixed atoms left out"}.get(
        result.geometry, "ideal gas, rigid rotor"
    )
    print(f"harmonic thermochemistry at {config.temperature:g} K ({model}):")
    for key, value in thermo.items():
        if key not in ("temperature", "pressure"):
            unit = "eV/K" if key == "entropy" else ("" if key == "n_imaginary" else "eV")
            print(f"  {key:<18} {value:.6g} {unit}".rstrip())
    if config.reference:
        _, reference = read_reference(config.reference, atomic_numbers=atoms.numbers)
        print(f"comparison with {config.reference} (cm^-1):")
        print(compare_modes(result, reference).table())
    if config.json:
        result.to_json(config.json)
        print(f"wrote {config.json}")
    if config.plot:
        plot_spectrum(result.frequencies, config.plot)
        print(f"wrote {config.plot}")
    return 0
