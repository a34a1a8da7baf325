"""Formation energies of Cu-Au structures for one or more models against a reference.

The 3 ordered (L1_2 Cu3Au, L1_0 CuAu, L1_2 CuAu3) and 7 random 32-atom cells of the
materials bench (:mod:`materials`), cell and positions relaxed by each calculator, each
against that calculator's own relaxed fcc Cu and Au; per model the MAE and mean error
over the structures, the error of the relaxed pure crystals' energies (which a
formation energy subtracts) and each structure's error, in meV/atom:

    python benchmarks/formation_energies.py RUN_A/model.pt RUN_B/model.pt [--reference emt]

Each model is an mlip model file (float64) or a calculator spec; one torch thread.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import materials  # noqa: E402


def structures() -> dict:
    """The bench's ordered and random 32-atom Cu-Au cells, by name."""
    return materials.formation_structures(materials.Settings().fractions)


def formation(calc, cells: dict) -> tuple[dict[str, float], dict[int, float]]:  # noqa: ANN001
    """Formation energies (meV/atom) of ``cells`` and the pure crystals' energies (eV/atom)."""
    values, pure = materials.formation_energies(cells, calc)
    return {name: 1000 * e for name, e in values.items()}, pure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model files or specs")
    parser.add_argument("--reference", default="emt", help="calculator spec (default emt)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cells = structures()
    reference, ref_pure = formation(materials.make_calculator(args.reference), cells)
    print(f"formation energies against {args.reference}, meV/atom; structures: "
          + ", ".join(cells))  # fmt: skip
    print("| model | MAE | mean error | relaxed fcc Cu / Au energy error | per structure |")
    print("| --- | ---: | ---: | ---: | --- |")
    for spec in args.models:
        values, pure = formation(materials.make_calculator(spec), cells)
        errors = np.array([values[n] - reference[n] for n in cells])
        cu, au = (1000 * (pure[z] - ref_pure[z]) for z in (materials.CU, materials.AU))
        print(
            f"| {spec} | {np.abs(errors).mean():.2f} | {errors.mean():+.2f} | "
            f"{cu:+.2f} / {au:+.2f} | " + " ".join(f"{e:+.1f}" for e in errors) + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
