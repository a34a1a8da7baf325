"""``mlip md MODEL STRUCTURE``: batched molecular dynamics on the CPU or a GPU.

Molecular dynamics of R replicas of each input system in one batch, on the device.
Writes an mlip HDF5 trajectory (positions, velocities in A/fs, energies, forces) and a
CSV log per system. Units: temperature K, timestep fs, friction 1/fs, tau fs, distances
A, forces eV/A, energies eV, pressure GPa, compressibility 1/GPa, tau_p fs. STRUCTURE
is any file ASE reads (every frame becomes a system of the batch) or an mlip HDF5
conformer FILE.h5:GROUP[:INDEX]. NPT ensembles (npt-langevin, npt-bussi) need periodic
cells. With a committee model (mlip train --committee K) the log gets each system's
largest per-atom force std (eV/A); --max-force-std stops a system above it,
--collect-force-std with --collect FILE keeps its frames above it. A system that blows
up ends the run with exit status 2 (the trajectory keeps every frame logged before).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlip.cli.options import add_command, add_options, given
from mlip.md.config import MDConfig

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": MDConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "md",
        "batched molecular dynamics (NVE, Langevin, Bussi, Nose-Hoover, NPT) on CPU or GPU",
        __doc__,
    )
    parser.add_argument("model", help="model file (mlip.model.load_model)")
    parser.add_argument(
        "structure",
        nargs="?",
        help="ASE-readable file (all frames) or FILE.h5:GROUP[:INDEX]; optional with --restart",
    )
    add_options(parser, MDConfig)
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> MDConfig:
    """The :class:`MDConfig` of the parsed arguments; the CSV log defaults to the
    trajectory's name with ``.csv``."""
    values = given(args, MDConfig)
    traj = values.get("traj") or values.get("restart")
    if values.get("log") is None and traj:
        values["log"] = str(Path(traj).with_suffix(".csv"))
    return MDConfig(**values)


def run(args: argparse.Namespace) -> int:
    from mlip.fields import resolve_device
    from mlip.md import read_structures, run_md
    from mlip.model import load_model

    config = config_from_args(args)
    if args.structure is None and config.restart is None:
        raise ValueError("give a STRUCTURE or --restart TRAJ.h5")
    model = load_model(args.model, device=resolve_device(config.device), dtype=config.dtype)
    atoms = None if config.restart else read_structures(args.structure)
    print(run_md(model, atoms, config=config).summary())
    return 0
