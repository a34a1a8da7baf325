"""MD throughput: the batched engine (mlip.md) vs ASE's VelocityVerlet + MLIPCalculator.

Prints atom-steps per second (NVE velocity Verlet, 0.5 fs by default) for ethanol replicas
(1, 8, 64, 512 in one batch) and fcc Cu cells of 108 and 864 atoms, all measured in
this run. ASE integrates one system at a time, so its rate for R replicas is the rate
of one system (R sequential runs); it is measured once per structure.

    python benchmarks/md_throughput.py                    # CPU, untrained default model
    python benchmarks/md_throughput.py --device cuda      # GPU figures (when present)
    python benchmarks/md_throughput.py --model model.pt --steps 20
    python benchmarks/md_throughput.py --compile          # adds a torch.compile column

The default run takes well under a minute on a 2-core CPU (one torch thread).
Timings exclude the first force evaluation and one warm-up step; neighbour-list
rebuilds inside the timed steps are included and counted.
"""

from __future__ import annotations

import argparse
import time

import torch
from ase.build import bulk, molecule
from md_common import model_for

from mlip.md import DEFAULTS


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", help="model file (default: an untrained mlip.model.MLIPModel)")
    p.add_argument("--timestep", type=float, default=DEFAULTS.timestep, help="fs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--steps", type=int, default=8, help="timed steps per row (at most)")
    p.add_argument("--budget", type=float, default=12.0, help="seconds per measurement (at most)")
    p.add_argument("--replicas", default="1,8,64,512", help="ethanol replica counts")
    p.add_argument("--cu-repeats", default="3,6", help="cubic fcc Cu repeats (3: 108, 6: 864)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on small shared CPUs more threads oversubscribe "
        "and are much slower; 0 = torch's default)",
    )
    p.add_argument("--skip-ase", action="store_true", help="batched engine only")
    p.add_argument(
        "--compile",
        action="store_true",
        help="also time the engine with torch.compile (compilation excluded from the timing)",
    )
    p.add_argument(
        "--check-every", type=int, help="host checks every k steps (default: 1 CPU, 20 GPU)"
    )
    return p.parse_args()


def default_model(dtype: torch.dtype, device: str) -> tuple[torch.nn.Module, str]:
    """(model, description): an untrained MLIPModel for H, C, O, Cu."""
    from mlip.model import MLIPModel, ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(atomic_numbers=[1, 6, 8, 29])
    model = MLIPModel(config).to(device=device, dtype=dtype).eval()
    text = (
        f"untrained MLIPModel (r_max {config.r_max} A, {config.num_layers} layers, "
        f"{config.num_channels} channels, l_max {config.l_max})"
    )
    return model, text


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def thermalised(atoms, replicas: int, args, dtype):
    """State of R replicas with 300 K Maxwell-Boltzmann momenta (fixed seed)."""
    from mlip.md import from_atoms, maxwell_boltzmann

    state = from_atoms(atoms, replicas=replicas, temperature=300.0, device=args.device, dtype=dtype)
    generator = torch.Generator(device=state.device).manual_seed(0)
    return maxwell_boltzmann(state, generator=generator)


def time_batched(
    model, atoms, replicas, args, dtype, compile_model: bool = False
) -> tuple[float, int, int]:
    """(atom-steps/s, timed steps, neighbour-list builds during them) of the engine."""
    from mlip.md import ForceField, Simulation, make_integrator

    state = thermalised(atoms, replicas, args, dtype)
    force_field = ForceField(model, compile=compile_model)
    integrator = make_integrator("nve", args.timestep)
    sim = Simulation(state, force_field, integrator, check_every=args.check_every)
    chunk = sim.check_every
    sim.advance(chunk if chunk > 1 else 1)  # warm-up (and compilation)
    if compile_model:
        sim.advance(chunk)  # a second call: guards settled, no compilation left in the timing
    sync(args.device)
    builds = sim.force_field.neighbors.builds
    start, steps = time.perf_counter(), 0
    while steps < args.steps and (time.perf_counter() - start < args.budget or steps < 2):
        sim.advance(chunk)
        steps += chunk
    sync(args.device)
    wall = time.perf_counter() - start
    return state.n_atoms * steps / wall, steps, sim.force_field.neighbors.builds - builds


def time_ase(model, atoms, args, dtype) -> float:
    """atom-steps/s of ASE's VelocityVerlet with the package's calculator (one system)."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from mlip.calculator import MLIPCalculator

    atoms = thermalised(atoms, 1, args, dtype).to_atoms()[0]  # same start as the engine
    atoms.calc = MLIPCalculator(model, device=args.device, dtype=dtype)
    dyn = VelocityVerlet(atoms, timestep=args.timestep * units.fs)
    dyn.run(1)  # first evaluation and warm-up
    start, steps = time.perf_counter(), 0
    while steps < args.steps and (time.perf_counter() - start < args.budget or steps < 2):
        dyn.run(1)
        steps += 1
    return len(atoms) * steps / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no GPU present: --device cuda ignored, measuring on the CPU")
        args.device = "cpu"
    dtype = getattr(torch, args.dtype)
    if args.model:
        from mlip.model import load_model

        model, text = load_model(args.model, device=args.device, dtype=dtype), args.model
    else:
        model, text = default_model(dtype, args.device)
    run_ase = not args.skip_ase
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else (
        f"CPU, {torch.get_num_threads()} torch threads"
    )  # fmt: skip
    print(f"model: {text}; {args.dtype}; device: {args.device} ({where})")
    print(f"NVE velocity Verlet, dt {args.timestep} fs, 300 K Maxwell-Boltzmann start")
    if not run_ase:
        print("ASE column skipped: --skip-ase")

    ethanol = molecule("CH3CH2OH")
    rows = [(f"ethanol x{r}", ethanol, int(r)) for r in args.replicas.split(",")]
    for k in args.cu_repeats.split(","):
        cell = bulk("Cu", "fcc", a=3.61, cubic=True) * int(k)
        rows.append((f"Cu fcc {len(cell)}", cell, 1))
    header = (
        f"{'system':<14}{'atoms':>7}{'batched':>14}{'ms/step':>10}{'steps':>7}{'NL builds':>10}"
    )
    header += f"{'compiled':>14}{'gain':>7}" if args.compile else ""
    header += f"{'ASE (seq.)':>14}{'speed-up':>10}" if run_ase else ""
    print(header + "\n" + "-" * len(header))
    ase_rate: dict[str, float] = {}
    for name, atoms, replicas in rows:
        model_here, note = model_for(model, atoms)
        rate, steps, builds = time_batched(model_here, atoms, replicas, args, dtype)
        n = len(atoms) * replicas
        line = f"{name:<14}{n:>7}{rate:>14.4g}{1000 * n / rate:>10.1f}{steps:>7}{builds:>10}"
        if args.compile:
            compiled, _, _ = time_batched(model_here, atoms, replicas, args, dtype, True)
            line += f"{compiled:>14.4g}{compiled / rate:>6.2f}x"
        if run_ase:
            key = atoms.get_chemical_formula()
            if key not in ase_rate:
                ase_rate[key] = time_ase(model_here, atoms, args, dtype)
            line += f"{ase_rate[key]:>14.4g}{rate / ase_rate[key]:>9.1f}x"
        print(line + note, flush=True)
    print("rates in atom-steps/s; ASE runs replicas one after the other (rate of one system)")
    if args.compile:
        print("compiled: ForceField(compile=True), mlip.derivatives.compile_model")


if __name__ == "__main__":
    main()
