"""Ready-to-run batched MD example (units: eV, Angstrom, amu, fs, K).

Default: 8 replicas of a 108-atom fcc Cu cell with a Lennard-Jones stand-in for copper
(Halicioglu-Pound parameters), Bussi NVT at 300 K, 400 steps of 2 fs; well under a
minute on a laptop CPU. ``EXAMPLE`` lists what the example changes from the library's
defaults (:class:`mlip.md.MDConfig`, e.g. its 0.5 fs time step, safe with hydrogen).
Any structure: --structure FILE (ASE) or FILE.h5:GROUP[:INDEX]. With a trained model:

    python md/run_md.py --model model.pt --structure datasets/ethanol_small.h5:ethanol_minimum \
        --ensemble nvt-langevin --timestep 0.5 --replicas 64 --device cuda

Writes OUT.h5 (trajectory, mlip HDF5 layout) and OUT.csv (energies per system).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
from ase.build import bulk

from mlip.md import DEFAULTS, read_structures, run_md
from mlip.potentials import LennardJones

ROOT = Path(__file__).resolve().parents[1]
#: what this example changes from the library defaults (copper, 63.5 amu: 2 fs is safe)
EXAMPLE = DEFAULTS.replace(ensemble="nvt-bussi", timestep=2.0, steps=400, replicas=8, log_every=20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", help="trained model file (default: Lennard-Jones copper)")
    p.add_argument("--structure", help="default: fcc Cu, 3x3x3 cubic cells (108 atoms)")
    p.add_argument("--ensemble", default=EXAMPLE.ensemble)
    p.add_argument("--temperature", type=float, default=EXAMPLE.temperature, help="K")
    p.add_argument("--timestep", type=float, default=EXAMPLE.timestep, help="fs")
    p.add_argument("--steps", type=int, default=EXAMPLE.steps)
    p.add_argument("--replicas", type=int, default=EXAMPLE.replicas)
    p.add_argument("--device", default=EXAMPLE.device)
    p.add_argument("--out", default=str(ROOT / "runs" / "md" / "cu_md"), help="output stem")
    args = p.parse_args()

    if args.model:
        from mlip.model import load_model

        model = load_model(args.model, device=args.device, dtype=EXAMPLE.dtype)
    else:  # Halicioglu-Pound Lennard-Jones copper
        model = LennardJones(epsilon=0.4093, sigma=2.338, r_max=5.5)
    if args.structure:
        systems = read_structures(args.structure)
    else:
        systems = [bulk("Cu", "fcc", a=3.61, cubic=True) * 3]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    config = EXAMPLE.replace(
        ensemble=args.ensemble,
        temperature=args.temperature,
        timestep=args.timestep,
        steps=args.steps,
        replicas=args.replicas,
        device=args.device,
        traj=f"{args.out}.h5",
        log=f"{args.out}.csv",
        overwrite=True,
    )
    result = run_md(model, systems, config=config)
    half = len(result.steps) // 2
    print(
        f"mean T over the second half: {result.temperature[half:].mean():.1f} K "
        f"(target {args.temperature} K), {result.neighbor_builds} neighbour-list builds"
    )
    drift = np.abs(result.conserved[-1] - result.conserved[0]).max()
    print(f"largest change of the conserved energy: {drift:.2e} eV")
    with h5py.File(f"{args.out}.h5", "r") as f:
        name = next(iter(f))
        print(f"{args.out}.h5: {len(f)} groups; '{name}': positions {f[name]['positions'].shape}")


if __name__ == "__main__":
    main()
