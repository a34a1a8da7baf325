"""LAMMPS with an mlip model against ``mlip md``: atom-steps/s on one and two MPI ranks.

    python benchmarks/lammps.py [MODEL] [--cu 4000,8788] [--ethanol 512] [--steps 5]
    python benchmarks/lammps.py --quick                    # smoke test: tiny systems

For fcc copper (about 4,000 atoms, and the largest size given) and a periodic box of
ethanol molecules, each measurement in a process of its own, as a user types it:

* ``mlip md MODEL STRUCTURE --ensemble nve`` with one torch thread (OMP_NUM_THREADS=1);
* ``mpiexec -n 1 mlip lammps IN --threads 1``, ``mpiexec -n 2 ... --threads 1`` and
  ``mpiexec -n 1 ... --threads 2`` (NVE, ``run N``: LAMMPS's loop time);

and prints atom-steps/s, LAMMPS on one rank over ``mlip md`` (target >= 0.8), two
ranks over one (target >= 1.6 at the largest copper), and per owned atom the LAMMPS
ghosts and the ghost atoms the coupling computes on two ranks (the halo that limits the
two-rank speed-up), from ``mlip lammps``'s summary line. Then, for the largest copper
split in two slabs as LAMMPS splits it, one rank's graph and the time of one energy +
forces + virial evaluation for the coupling's design (ghosts to L x r_max, layers
pruned, ghost forces sent to their owners) against a shell twice as wide with no
exchange (every energy that depends on an owned atom evaluated on the rank).

MODEL: a model file; an element it lacks makes the systems use its untrained twin with
the same architecture (:func:`mlip.model.covering_model`: timings measure cost, not
values). Without MODEL, an untrained MLIPModel with ``mlip train``'s default
architecture. float64, NVE, 0.5 fs, 300 K start. Run it alone on the machine: each row
takes minutes at the default sizes (4,000 atoms of the default model: seconds a step).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import write

ROOT = Path(__file__).resolve().parent.parent
LOOP = re.compile(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
SUMMARY = re.compile(
    r"per owned atom ([\d.]+) LAMMPS ghosts, ([\d.]+) ghost atoms computed, ([\d.]+) atoms"
)
MD_RATE = re.compile(r"([\d.eE+-]+) atom-steps/s")

INPUT = """units metal
atom_style atomic
atom_modify map array
read_data ${data}
pair_style mlip ${model}
pair_coeff * * ${elements}
velocity all create 300 4928459 mom yes rot yes dist gaussian
fix integrate all nve
timestep 0.0005
thermo ${steps}
run ${steps}
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", nargs="?", help="model file (default: untrained default architecture)")
    p.add_argument("--cu", default="4000,8788", help="fcc Cu sizes, atoms (rounded to cubes)")
    p.add_argument("--ethanol", type=int, default=512, help="ethanol molecules in the box")
    p.add_argument("--steps", type=int, default=5, help="timed MD steps per measurement")
    p.add_argument("--quick", action="store_true", help="smoke test: 108/256 Cu, 8 ethanol")
    p.add_argument("--keep", metavar="DIR", help="keep the inputs, logs and models in DIR")
    return p.parse_args()


def default_model() -> torch.nn.Module:
    from mlip.model import MLIPModel, ModelConfig

    torch.manual_seed(0)
    return MLIPModel(ModelConfig(atomic_numbers=[1, 6, 8, 29])).double().eval()


def copper(atoms: int) -> Atoms:
    n = max(1, round((atoms / 4) ** (1 / 3)))
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(n)


def ethanol_box(count: int, spacing: float = 5.0, seed: int = 0) -> Atoms:
    """``count`` ethanol molecules (rounded up to a cube) on a grid ``spacing`` A apart,
    randomly oriented with no two atoms of different molecules closer than 1.8 A."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(count ** (1 / 3) - 1e-9))
    template = molecule("CH3CH2OH")
    template.positions -= template.positions.mean(0)
    box = side * spacing
    placed = np.zeros((0, 3))
    numbers, positions = [], []
    for site in np.ndindex(side, side, side):
        centre = (np.array(site) + 0.5) * spacing
        for _ in range(200):
            rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
            trial = template.positions @ rotation.T + centre
            if len(placed) == 0:
                break
            delta = trial[:, None, :] - placed[None, :, :]
            delta -= box * np.round(delta / box)
            if np.sqrt((delta**2).sum(-1)).min() > 1.8:
                break
        placed = np.concatenate([placed, trial])
        numbers += list(template.numbers)
        positions.append(trial)
    return Atoms(numbers=numbers, positions=np.concatenate(positions), cell=[box] * 3, pbc=True)


def run(command: list[str], threads: int, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result.stdout


def time_mlip_md(model: Path, structure: Path, steps: int, cwd: Path) -> float:
    command = [sys.executable, "-m", "mlip.cli", "md", str(model), str(structure),
               "--ensemble", "nve", "--steps", str(steps), "--timestep", "0.5",
               "--temperature", "300", "--log-every", str(steps), "--no-progress",
               "--traj", str(cwd / f"md_{structure.stem}.h5"), "--overwrite"]  # fmt: skip
    return float(MD_RATE.search(run(command, 1, cwd)).group(1))


def time_lammps(ranks: int, threads: int, variables: dict[str, str], cwd: Path) -> dict:
    launcher = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "mpiexec"
    command = [launcher, "-n", str(ranks), sys.executable, "-m", "mlip.cli", "lammps",
               str(cwd / "bench.lmp"), "--threads", str(threads)]  # fmt: skip
    for name, value in variables.items():
        command += ["-var", name, value]
    out = run(command, threads, cwd)
    seconds, _, steps, atoms = LOOP.findall(out)[-1]
    ghosts, computed, per_layer = SUMMARY.search(out).groups()
    return {"rate": int(steps) * int(atoms) / float(seconds), "ghosts": float(ghosts),
            "computed": float(computed), "per_layer": float(per_layer)}  # fmt: skip


def halo_designs(model: torch.nn.Module, atoms: Atoms, skin: float = 1.0) -> list[str]:
    """One rank of two (z slabs), the coupling's graph against a double-width shell."""
    from mlip.derivatives import compute
    from mlip.integrations.lammps_domain import build_domain_graph
    from mlip.model import interaction_layers

    layers, r_max = interaction_layers(model), float(model.r_max)
    lines = []
    for design, shell, hops in (
        ("reverse exchange (mlip)", 1, layers),
        ("double shell", 2, 2 * layers),
    ):
        positions, tags, nlocal = slab_copies(atoms, shell * layers * r_max + 2.0)
        graph = build_domain_graph(positions, tags, nlocal, atoms.cell.array, r_max, skin, hops)
        step = graph.current(positions[graph.node_copy], atoms.cell.array, r_max, hops)
        copy = graph.node_copy[step.nodes]
        counts = step.hop_counts[hops - layers :]  # double shell: energies of the L-hop ball
        batch = step.batch(positions[copy], atoms.numbers[tags[copy] - 1], atoms.cell.array,
                           np.ones(3, dtype=bool), hop_counts=counts)  # fmt: skip
        compute(model, batch, stress=True)  # warm-up
        start = time.perf_counter()
        compute(model, batch, stress=True)
        seconds = time.perf_counter() - start
        per_layer = sum(counts[min(layers - t, len(counts) - 1)] for t in range(1, layers + 1))
        lines.append(
            f"{design:<26}{nlocal:>8}{len(positions) - nlocal:>10}{len(copy):>8}"
            f"{per_layer / layers / nlocal:>12.2f}{step.edge_index.shape[1]:>10}{seconds:>10.2f}"
        )
    return lines


def slab_copies(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Rank 0 of two z slabs: its atoms, then every periodic image within ``cutoff`` of
    the slab (LAMMPS's ghosts, ids 1-based)."""
    cell = atoms.cell.array
    frac = np.round(atoms.get_scaled_positions(wrap=True), 12) % 1.0  # planes at 0.5 go up
    margin = cutoff / np.diag(cell)
    lo, hi = np.zeros(3), np.array([1.0, 1.0, 0.5])
    owned = np.flatnonzero(np.all((frac >= lo) & (frac < hi), axis=1))
    positions, tags = [frac[owned] @ cell], [owned + 1]
    reach = np.ceil(margin).astype(int) + 1
    for shift in np.ndindex(*(2 * reach + 1)):
        offset = np.array(shift) - reach
        f = frac + offset
        inside = np.all((f >= lo - margin) & (f < hi + margin), axis=1)
        if not offset.any():
            inside[owned] = False
        positions.append(f[inside] @ cell)
        tags.append(np.flatnonzero(inside) + 1)
    return np.concatenate(positions), np.concatenate(tags), len(owned)


def main() -> None:
    args = parse_args()
    from mlip.model import covering_model, load_model

    if args.quick:
        args.cu, args.ethanol, args.steps = "108,256", 8, 2
    folder = Path(args.keep or tempfile.mkdtemp(prefix="mlip-bench-lammps-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.lmp").write_text(INPUT)
    base = load_model(args.model) if args.model else default_model()
    described = args.model or "untrained MLIPModel, mlip train's default architecture"
    config = getattr(base, "config", None)
    print(f"model: {described}" + (f" ({config.num_channels} channels, {config.num_layers} "
          f"layers, r_max {config.r_max} A, l_max {config.l_max})" if config else ""))  # fmt: skip
    print(f"float64, NVE 0.5 fs from 300 K, {args.steps} timed steps; one torch thread a rank "
          "unless said; rates in atom-steps/s")  # fmt: skip
    systems = [
        (f"Cu fcc {len(copper(int(n)))}", copper(int(n)), ["Cu"]) for n in args.cu.split(",")
    ]
    systems.append((f"ethanol x{args.ethanol}", ethanol_box(args.ethanol), ["C", "H", "O"]))
    header = (
        f"{'system':<18}{'atoms':>7}{'mlip md':>10}{'LAMMPS 1':>10}{'LAMMPS 2':>10}"
        f"{'1 rank 2 thr':>13}{'1/md':>7}{'2/1':>7}{'ghosts/owned':>14}{'computed':>10}"
    )
    rows = []
    for name, atoms, elements in systems:
        model = covering_model(base, atoms.numbers)
        note = "" if model is base else " (untrained twin)"
        model_path = folder / f"model_{name.split()[0]}.pt"
        model.save(model_path)
        structure = folder / f"{name.replace(' ', '_')}.extxyz"
        write(structure, atoms)
        data = folder / f"{name.replace(' ', '_')}.data"
        write(data, atoms, format="lammps-data", specorder=elements, masses=True, units="metal")
        variables = {"data": str(data), "model": str(model_path), "elements": " ".join(elements),
                     "steps": str(args.steps)}  # fmt: skip
        md = time_mlip_md(model_path, structure, args.steps, folder)
        one = time_lammps(1, 1, variables, folder)
        two = time_lammps(2, 1, variables, folder)
        threads = time_lammps(1, 2, variables, folder)
        line = (f"{name:<18}{len(atoms):>7}{md:>10.4g}{one['rate']:>10.4g}{two['rate']:>10.4g}"
                f"{threads['rate']:>13.4g}{one['rate'] / md:>7.2f}{two['rate'] / one['rate']:>7.2f}"
                f"{two['ghosts']:>14.2f}{two['computed']:>10.2f}{note}")  # fmt: skip
        rows.append(line)
        if len(rows) == 1:
            print(header + "\n" + "-" * len(header))
        print(line, flush=True)
    print("LAMMPS 1, 2: ranks (one thread each); 1/md: LAMMPS 1 rank over mlip md; 2/1: two "
          "ranks over one; ghosts/owned: LAMMPS ghost atoms per owned atom on two ranks; "
          "computed: ghost atoms the coupling evaluates per owned atom (other ranks' atoms "
          "within L hops, each once)")  # fmt: skip
    largest = max((s for s in systems if s[0].startswith("Cu")), key=lambda s: len(s[1]))
    torch.set_num_threads(1)
    model = covering_model(base, largest[1].numbers)
    print(f"\nhalo designs, rank 0 of 2 z slabs of {largest[0]} (one energy + forces + virial, "
          "one thread):")  # fmt: skip
    print(f"{'design':<26}{'owned':>8}{'ghosts':>10}{'nodes':>8}{'atoms/layer':>12}{'edges':>10}"
          f"{'seconds':>10}")  # fmt: skip
    for line in halo_designs(model, largest[1]):
        print(line, flush=True)
    print(
        "ghosts: periodic images within the shell; nodes: distinct atoms evaluated; "
        "atoms/layer: per owned atom, averaged over the layers (pruned)"
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
