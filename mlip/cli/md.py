"""``mlip md MODEL STRUCTURE``: batched molecular dynamics on the CPU or a GPU.

Units: temperature K, timestep fs, friction 1/fs, tau fs, distances A, forces eV/A,
energies eV, pressure GPa, compressibility 1/GPa, tau_p fs. STRUCTURE is any file ASE
reads (every frame becomes a system of the batch) or an mlip HDF5 conformer
``FILE.h5:GROUP[:INDEX]``. NPT ensembles (npt-langevin, npt-bussi) need periodic cells.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlip.md.integrators import ENSEMBLES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "md",
        help="batched molecular dynamics (NVE, Langevin, Bussi, Nose-Hoover) on CPU or GPU",
        description=(
            "Molecular dynamics of R replicas of each input system in one batch, on the "
            "device (units: eV, Angstrom, amu, fs, K). Writes an mlip HDF5 trajectory "
            "(positions, velocities in A/fs, energies, forces) and a CSV log per system."
        ),
    )
    parser.add_argument("model", help="model file (mlip.model.load_model)")
    parser.add_argument(
        "structure",
        nargs="?",
        help="ASE-readable file (all frames) or FILE.h5:GROUP[:INDEX]; optional with --restart",
    )
    parser.add_argument("--ensemble", default="nve", choices=list(ENSEMBLES))
    parser.add_argument("--temperature", type=float, default=300.0, help="K (target, initial)")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=1, help="copies of each system")
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin gamma, 1/fs")
    parser.add_argument(
        "--tau", type=float, default=100.0, help="Bussi / Nose-Hoover relaxation time, fs"
    )
    parser.add_argument(
        "--chain-length", type=int, default=3, help="Nose-Hoover thermostats per chain (nvt-nhc)"
    )
    parser.add_argument(
        "--pressure", type=float, default=0.0, help="NPT target pressure, GPa (npt-*)"
    )
    parser.add_argument(
        "--compressibility",
        type=float,
        default=0.01,
        help="NPT barostat compressibility estimate, 1/GPa (~0.01 metals, 0.45 water)",
    )
    parser.add_argument(
        "--tau-p", type=float, default=1000.0, help="NPT barostat relaxation time, fs"
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--traj", metavar="OUT.h5", help="trajectory (mlip HDF5 layout)")
    parser.add_argument("--log", metavar="OUT.csv", help="CSV log (default: next to --traj)")
    parser.add_argument("--log-every", type=int, default=100, help="steps between frames")
    parser.add_argument("--seed", type=int, default=0, help="velocities and thermostat noise")
    parser.add_argument("--restart", metavar="TRAJ.h5", help="continue from its last frame")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --traj")
    parser.add_argument("--skin", type=float, default=1.0, help="Verlet skin, A")
    parser.add_argument(
        "--check-every", type=int, help="steps between host checks (default 1 CPU, 20 GPU)"
    )
    parser.add_argument("--max-force", type=float, default=100.0, help="explosion limit, eV/A")
    parser.add_argument("--min-distance", type=float, default=0.5, help="explosion limit, A")
    parser.add_argument(
        "--max-displacement", type=float, help="explosion limit on distance from start, A"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="run the model through torch.compile (first step compiles; 1.5x on a CPU)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from mlip.errors import CheckpointError
    from mlip.md import MDExplosionError, read_structures, run_md
    from mlip.model import load_model

    if args.structure is None and args.restart is None:
        raise SystemExit("mlip md: give a STRUCTURE or --restart TRAJ.h5")
    dtype = getattr(torch, args.dtype)
    log = args.log
    if log is None and (args.traj or args.restart):
        log = str(Path(args.traj or args.restart).with_suffix(".csv"))
    try:
        model = load_model(args.model, device=args.device, dtype=dtype)
        atoms = None if args.restart else read_structures(args.structure)
        result = run_md(
            model, atoms, ensemble=args.ensemble, temperature=args.temperature,
            timestep=args.timestep, steps=args.steps, replicas=args.replicas,
            device=args.device, dtype=dtype, traj=args.traj, log_every=args.log_every,
            seed=args.seed, friction=args.friction, tau=args.tau, skin=args.skin, log=log,
            check_every=args.check_every, progress=not args.no_progress,
            max_force=args.max_force, min_distance=args.min_distance,
            max_displacement=args.max_displacement, restart=args.restart,
            overwrite=args.overwrite, compile=args.compile, pressure=args.pressure,
            compressibility=args.compressibility, tau_p=args.tau_p,
            chain_length=args.chain_length,
        )  # fmt: skip
    except MDExplosionError as err:
        print(f"mlip md: {err}")
        if args.traj or args.restart:
            print(f"the trajectory up to the last log step is in {args.traj or args.restart}")
        return 2
    except (CheckpointError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"mlip md: error: {err}")  # DataError and UnknownElementError are ValueErrors
        return 1
    state = result.state
    steps_done = int(result.steps[-1] - result.steps[0])
    rate = steps_done * state.n_atoms / max(result.wall_seconds, 1e-9)
    ns_day = steps_done * args.timestep / max(result.wall_seconds, 1e-9) * 0.0864
    print(
        f"{state.n_systems} systems, {state.n_atoms} atoms, {steps_done} steps of "
        f"{args.timestep} fs in {result.wall_seconds:.1f} s: {rate:.3g} atom-steps/s, "
        f"{ns_day:.3g} ns/day, {result.neighbor_builds} neighbour-list builds"
    )
    drift = (result.conserved[-1] - result.conserved[0]) / state.num_atoms.cpu().numpy()
    print(
        f"final T {np.mean(result.temperature[-1]):.1f} K (mean over systems), "
        f"max conserved-energy change {np.max(np.abs(drift)):.3g} eV/atom"
    )
    if np.isfinite(result.pressure).any():
        half = result.pressure[len(result.pressure) // 2 :]  # second half of the run
        volume = result.volume[len(result.volume) // 2 :] / state.num_atoms.cpu().numpy()
        print(
            f"second half: mean pressure {np.nanmean(half):.4g} GPa (target {args.pressure}), "
            f"mean volume {np.nanmean(volume):.4g} A^3/atom"
        )
    if log:
        print(f"log: {log}")
    return 0
