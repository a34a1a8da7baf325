"""``mlip md MODEL STRUCTURE``: batched molecular dynamics on the CPU or a GPU.

Units: temperature K, timestep fs, friction 1/fs, tau fs, distances A, forces eV/A,
energies eV, pressure GPa, compressibility 1/GPa, tau_p fs. With a committee model
(``mlip train --committee K``) the log gets each system's largest per-atom force std
(eV/A); ``--max-force-std`` stops a system above it, ``--collect-force-std`` with
``--collect FILE`` keeps its frames above it. STRUCTURE is any file ASE
reads (every frame becomes a system of the batch) or an mlip HDF5 conformer
``FILE.h5:GROUP[:INDEX]``. NPT ensembles (npt-langevin, npt-bussi) need periodic cells.

The options are the fields of :class:`mlip.md.config.MDConfig` (flag ``--tau-p`` is
field ``tau_p``, ``--no-progress`` clears ``progress``), with its defaults: ``run``
parses them into one config and calls :func:`mlip.md.run_md` with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlip.md.config import DEFAULTS as D
from mlip.md.config import MDConfig
from mlip.md.registry import ENSEMBLES, INTEGRATOR_REGISTRY


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
    ensembles = "; ".join(f"{name}: {spec.summary}" for name, spec in INTEGRATOR_REGISTRY.items())
    parser.add_argument("--ensemble", default=D.ensemble, choices=list(ENSEMBLES), help=ensembles)
    parser.add_argument(
        "--temperature", type=float, default=D.temperature, help="K (target, initial)"
    )
    parser.add_argument("--timestep", type=float, default=D.timestep, help="fs")
    parser.add_argument("--steps", type=int, default=D.steps)
    parser.add_argument("--replicas", type=int, default=D.replicas, help="copies of each system")
    parser.add_argument("--friction", type=float, default=D.friction, help="Langevin gamma, 1/fs")
    parser.add_argument(
        "--tau", type=float, default=D.tau, help="Bussi / Nose-Hoover relaxation time, fs"
    )
    parser.add_argument(
        "--chain-length",
        type=int,
        default=D.chain_length,
        help="Nose-Hoover thermostats per chain (nvt-nhc)",
    )
    parser.add_argument(
        "--pressure", type=float, default=D.pressure, help="NPT target pressure, GPa (npt-*)"
    )
    parser.add_argument(
        "--compressibility",
        type=float,
        default=D.compressibility,
        help="NPT barostat compressibility estimate, 1/GPa (~0.01 metals, 0.45 water)",
    )
    parser.add_argument(
        "--tau-p", type=float, default=D.tau_p, help="NPT barostat relaxation time, fs"
    )
    parser.add_argument("--device", default=D.device, help="torch device, e.g. cuda")
    dtype = str(D.dtype).removeprefix("torch.")
    parser.add_argument("--dtype", default=dtype, choices=["float64", "float32"])
    parser.add_argument("--traj", metavar="OUT.h5", help="trajectory (mlip HDF5 layout)")
    parser.add_argument("--log", metavar="OUT.csv", help="CSV log (default: next to --traj)")
    parser.add_argument("--log-every", type=int, default=D.log_every, help="steps between frames")
    parser.add_argument("--seed", type=int, default=D.seed, help="velocities and thermostat noise")
    parser.add_argument("--restart", metavar="TRAJ.h5", help="continue from its last frame")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --traj")
    parser.add_argument("--skin", type=float, default=D.skin, help="Verlet skin, A")
    parser.add_argument(
        "--check-every", type=int, help="steps between host checks (default 1 CPU, 20 GPU)"
    )
    parser.add_argument(
        "--max-force", type=float, default=D.max_force, help="explosion limit, eV/A"
    )
    parser.add_argument(
        "--min-distance", type=float, default=D.min_distance, help="explosion limit, A"
    )
    parser.add_argument(
        "--max-displacement", type=float, help="explosion limit on distance from start, A"
    )
    parser.add_argument(
        "--max-force-std",
        type=float,
        default=D.max_force_std,
        metavar="EV_A",
        help="committee models: stop a system whose largest per-atom force std exceeds "
        "this (eV/A; checked at the host checks); the others go on",
    )
    parser.add_argument(
        "--collect-force-std",
        type=float,
        default=D.collect_force_std,
        metavar="EV_A",
        help="committee models: keep the frames (at log steps) whose largest force std "
        "exceeds this (eV/A), written to --collect",
    )
    parser.add_argument(
        "--collect",
        default=D.collect,
        metavar="OUT.extxyz",
        help="file for the collected frames (any ASE format; 'mlip label' reads it)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="run the model through torch.compile (first step compiles; 1.5x on a CPU)",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> MDConfig:
    """The :class:`MDConfig` of the parsed arguments (each flag's dest is a field); the
    CSV log defaults to the trajectory's name with ``.csv``."""
    fields = set(MDConfig.field_names())
    values = {name: value for name, value in vars(args).items() if name in fields}
    if values.get("log") is None and (args.traj or args.restart):
        values["log"] = str(Path(args.traj or args.restart).with_suffix(".csv"))
    return MDConfig(**values)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mlip.errors import CheckpointError
    from mlip.md import MDExplosionError, read_structures, run_md
    from mlip.model import load_model

    if args.structure is None and args.restart is None:
        raise SystemExit("mlip md: give a STRUCTURE or --restart TRAJ.h5")
    config = config_from_args(args)
    try:
        model = load_model(args.model, device=config.device, dtype=config.dtype)
        atoms = None if config.restart else read_structures(args.structure)
        result = run_md(model, atoms, config=config)
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
    ns_day = steps_done * config.timestep / max(result.wall_seconds, 1e-9) * 0.0864
    print(
        f"{state.n_systems} systems, {state.n_atoms} atoms, {steps_done} steps of "
        f"{config.timestep} fs in {result.wall_seconds:.1f} s: {rate:.3g} atom-steps/s, "
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
            f"second half: mean pressure {np.nanmean(half):.4g} GPa (target {config.pressure}), "
            f"mean volume {np.nanmean(volume):.4g} A^3/atom"
        )
    watch = result.uncertainty
    if np.isfinite(result.force_std).any():
        print("committee force std (largest per-atom, eV/A) per system:")
        if watch is not None:
            print(watch.summary())
        else:
            for name, value in zip(state.names, np.nanmax(result.force_std, 0), strict=True):
                print(f"  {name}: largest logged force std {value:.4g} eV/A")
    if watch is not None and config.collect is not None:
        print(f"collected {len(watch.frames)} frames -> {config.collect}")
    if config.log:
        print(f"log: {config.log}")
    return 0
