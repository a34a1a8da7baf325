"""``mlip phonons`` (exact Hessian-vector products) vs phonopy's displacement method.

Both through the same MLIPCalculator, float64 on the CPU, in the same run: fcc Cu (the
conventional cell, 3x3x3 supercell, 108 atoms, one irreducible atom) and a vacancy cell
(3x3x3 conventional cells minus one atom, supercell 1x1x1, 107 atoms, nine irreducible
atoms). For each: the wall time of the force constants (the derivatives and phonopy's
solver and symmetrisation) and of the whole calculation (phonopy's symmetry search,
force constants, band structure, mesh DOS, thermal properties, q-points; for ``mlip
phonons`` also reading the file and the stationarity check), best of ``--repeats``, for

* ``mlip phonons`` (:func:`mlip.phonons.run_phonons`, the library call behind the
  command; ``--method directions`` and ``rows``);
* phonopy's finite displacements (0.01 A, +/- where symmetry needs them, the default)
  with the forces of the same calculator, then the same post-processing;

and the largest frequency difference (THz) between the two on the band path and mesh.

    python benchmarks/phonons.py [--model PATH] [--repeats 2] [--threads 1]

Without --model an untrained MLIPModel with the default architecture for Cu is used
(the cost, not the values, is what is timed; its phonons are not physical).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from ase.build import bulk

from mlip.calculator import MLIPCalculator
from mlip.integrations import phonopy as ph
from mlip.phonons import PhononConfig, run_phonons


def systems() -> dict[str, tuple]:
    cubic = bulk("Cu", "fcc", a=3.61, cubic=True)
    vacancy = cubic.repeat(3)
    del vacancy[0]
    return {
        "fcc Cu 3x3x3 (108)": (cubic, (3, 3, 3)),
        "Cu vacancy 1x1x1 (107)": (vacancy, (1, 1, 1)),
    }


def build_model(path: str | None) -> tuple[torch.nn.Module | str, str]:
    if path is not None:
        return path, f"model file {path}"
    from mlip.model import MLIPModel, ModelConfig

    torch.manual_seed(0)
    model = MLIPModel(ModelConfig(atomic_numbers=[29])).double()
    model.set_avg_num_neighbors(40.0)
    n_params = sum(p.numel() for p in model.parameters())
    return model, f"untrained MLIPModel, default architecture ({n_params} parameters)"


def postprocess(phonon, config: PhononConfig) -> tuple[ph.BandStructure, ph.Mesh]:  # noqa: ANN001
    """What run_phonons does after the force constants, on a phonopy object."""
    bands = ph.band_structure(phonon, npoints=config.band_points)
    mesh = ph.mesh_and_dos(phonon, config.mesh)
    ph.thermal_properties(phonon, config.t_min, config.t_max, config.t_step)
    ph.frequencies_at(phonon, [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    return bands, mesh


def time_system(calc: MLIPCalculator, cell, supercell, repeats: int) -> dict:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cell.cif")
        cell.write(path)
        row: dict = {}
        exact = {}
        for method in ("directions", "rows"):
            config = PhononConfig(structure=path, supercell=supercell, method=method)
            best = None
            for _ in range(repeats):
                calc.reset()
                start = time.perf_counter()
                result = run_phonons(config, calculator=calc, log=lambda line: None)
                total = time.perf_counter() - start
                fc = result.timings["force_constants"]
                best = (fc, total) if best is None or total < best[1] else best
            row[method] = (*best, result.force_constants.products)
            exact[method] = result
        config = PhononConfig(structure=path, supercell=supercell)
        best = None
        for _ in range(repeats):
            start = time.perf_counter()
            phonon = ph.make_phonopy(cell, supercell)
            start_fc = time.perf_counter()
            info = ph.displacement_force_constants(phonon, calc)
            fc = time.perf_counter() - start_fc
            bands, mesh = postprocess(phonon, config)
            total = time.perf_counter() - start
            best = (fc, total) if best is None or total < best[1] else best
        row["displacements"] = (*best, info.products)
    reference = exact["directions"]
    band_diff = max(
        float(np.abs(a - b).max())
        for a, b in zip(reference.bands.frequencies, bands.frequencies, strict=True)
    )
    mesh_diff = float(np.abs(reference.mesh.frequencies - mesh.frequencies).max())
    row["max_dnu"] = max(band_diff, mesh_diff)
    row["fmax_THz"] = float(max(np.max(f) for f in bands.frequencies))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: untrained default architecture)")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, description = build_model(args.model)
    calc = MLIPCalculator(model)
    print(f"model: {description}; float64, {args.threads} thread(s), best of {args.repeats}")
    header = (
        "| system | method | products / supercells | force constants s | total s "
        "| total / phonopy |"
    )
    print(header)
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, (cell, supercell) in systems().items():
        atoms = cell.repeat(supercell)
        atoms.calc = calc
        atoms.get_forces()  # warm-up
        row = time_system(calc, cell, supercell, args.repeats)
        base_total = row["displacements"][1]
        for method, label in (
            ("directions", "mlip phonons (exact, directions)"),
            ("rows", "mlip phonons --method rows"),
            ("displacements", "phonopy displacements 0.01 A"),
        ):
            fc, total, products = row[method]
            print(
                f"| {name} | {label} | {products} | {fc:.2f} | {total:.2f} "
                f"| {total / base_total:.2f}x |"
            )
        print(
            f"| {name} | max frequency difference exact vs displacements | "
            f"{row['max_dnu']:.2e} THz (highest band {row['fmax_THz']:.2f} THz) | | | |"
        )


if __name__ == "__main__":
    main()
