"""MD stability benchmark: how long do R Langevin replicas of a molecule stay intact?

Units: temperature K, time step fs, simulated time ps, lengths Angstrom, friction 1/fs.

R replicas of one molecule (default: the xTB minimum of ethanol) start from the same
geometry with different Maxwell-Boltzmann velocities (one generator seeded with
``--seed``) and independent Langevin noise, and are integrated together by the batched
engine of :mod:`mlip.md` (BAOAB, 500 K, 0.5 fs). A replica counts as *broken* at the
first check where

* a covalent bond of the starting geometry (``ase.neighborlist.natural_cutoffs``,
  bonded when d < r_cov,a + r_cov,b) is longer than ``stretch`` (1.5) times its starting
  length, or
* a non-bonded pair is closer than ``min_contact`` (0.75 A), or
* the engine flags it as exploded (:class:`mlip.md.MDExplosionError`: non-finite or
  huge forces, atoms closer than 0.5 A).

Design. The engine's chunk loop (``Simulation.run``) advances the batch; the geometric
test runs on the device after every engine chunk (every step on the CPU, every
``check_every`` = 20 steps on a GPU) and only records the first bad step per replica in
a device tensor; the host reads it once per chunk of ``--chunk-ps``. The engine stops
the whole batch with ``MDExplosionError`` when one system blows up, but only after
finishing the requested steps for every system, and systems never interact; so the
error is caught, the flagged replicas are recorded at the exact step the monitor saw,
and broken replicas are dropped from the batch (``Simulation.select``: same force field
and integrator, whose noise stream continues). ``--max-wall-minutes`` stops cleanly
(between engine chunks) and the report says how far the replicas got.

    python benchmarks/md_stability.py --model model.pt                       # 100 ps, CPU
    python benchmarks/md_stability.py --model model.pt --device cuda --replicas 64
    python benchmarks/md_stability.py --model model.pt --ps 100 --max-wall-minutes 30
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import ase
import numpy as np
import torch
from ase.neighborlist import build_neighbor_list, natural_cutoffs

from mlip.md import (
    DEFAULTS,
    ForceField,
    MDExplosionError,
    MDState,
    Simulation,
    from_atoms,
    make_integrator,
    maxwell_boltzmann,
)

STRETCH, CONTACT, EXPLOSION = 1, 2, 3
REASONS = {STRETCH: "bond stretched", CONTACT: "close contact", EXPLOSION: "engine explosion"}


# --- break detection ---------------------------------------------------------------------
def covalent_pairs(atoms: ase.Atoms, mult: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(bonds (B, 2), non_bonded (P, 2)) atom pairs i < j of a molecule's geometry.

    Bonded: d_ij < mult (r_cov,i + r_cov,j) with ASE's covalent radii (natural cutoffs).
    Non-bonded: every other pair. Raises ValueError for periodic systems.
    """
    if atoms.pbc.any():
        raise ValueError(f"md_stability needs a molecule, got pbc={atoms.pbc.tolist()}")
    if len(atoms) < 2:
        raise ValueError(f"need at least 2 atoms, got {len(atoms)}")
    nl = build_neighbor_list(
        atoms, natural_cutoffs(atoms, mult=mult), self_interaction=False, bothways=False
    )
    bonded = nl.get_connectivity_matrix(sparse=False)
    i, j = np.triu_indices(len(atoms), k=1)
    is_bond = (bonded[i, j] + bonded[j, i]) > 0
    return np.stack([i[is_bond], j[is_bond]], 1), np.stack([i[~is_bond], j[~is_bond]], 1)


class BondWatch:
    """Device-side break test for R replicas of one molecule (no host synchronisation).

    A replica is bad when max_b d_b / (stretch d0_b) > 1 over the bonds b (d0: lengths in
    the starting geometry) or min_p d_p < min_contact (A) over the non-bonded pairs p.
    """

    def __init__(
        self,
        atoms: ase.Atoms,
        stretch: float = 1.5,
        min_contact: float = 0.75,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if not stretch > 1.0:
            raise ValueError(f"stretch must be > 1 (a multiple of the bond length), got {stretch}")
        if min_contact < 0:
            raise ValueError(f"min_contact must be >= 0 A, got {min_contact}")
        bonds, others = covalent_pairs(atoms)
        if len(bonds) == 0:
            raise ValueError(f"no covalent bonds found in {atoms.get_chemical_formula()}")
        self.n_atoms, self.stretch, self.min_contact = len(atoms), float(stretch), min_contact
        self.bonds, self.others = bonds, others
        d0 = np.linalg.norm(atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], axis=1)
        self.d0 = d0
        self._bonds = torch.as_tensor(bonds, device=device)
        self._others = torch.as_tensor(others.reshape(-1, 2), device=device)
        self._limit = torch.as_tensor(stretch * d0, dtype=dtype, device=device)

    def pair_name(self, code: int, index: int, symbols: Sequence[str]) -> str:
        """'C0-O2'-like label of a bond (code STRETCH) or non-bonded pair (CONTACT)."""
        a, b = (self.bonds if code == STRETCH else self.others)[index]
        return f"{symbols[a]}{a}-{symbols[b]}{b}"

    def check(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(code, pair index, distance A) per replica; code 0 = intact, STRETCH or CONTACT."""
        pos = positions.reshape(-1, self.n_atoms, 3)
        d = (pos[:, self._bonds[:, 1]] - pos[:, self._bonds[:, 0]]).norm(dim=-1)
        ratio, worst = (d / self._limit).max(dim=1)
        code = torch.where(ratio > 1.0, STRETCH, 0)
        index, value = worst, d.gather(1, worst[:, None])[:, 0]
        if self._others.shape[0] and self.min_contact > 0:
            dn = (pos[:, self._others[:, 1]] - pos[:, self._others[:, 0]]).norm(dim=-1)
            closest, near = dn.min(dim=1)
            contact = (closest < self.min_contact) & (code == 0)
            code = torch.where(contact, CONTACT, code)
            index, value = torch.where(contact, near, index), torch.where(contact, closest, value)
        return code, index, value


# --- results -------------------------------------------------------------------------------
@dataclass
class ReplicaRecord:
    """One replica: broken or not, when (ps) and why; ps reached; mean temperature (K)."""

    replica: int
    broken: bool = False
    break_ps: float | None = None
    reason: str = ""
    ps_reached: float = 0.0
    temperature_K: float | None = None


@dataclass
class StabilityResult:
    """Per-replica records, run settings and timings (wall s, atom-steps/s)."""

    replicas: list[ReplicaRecord]
    settings: dict
    ps_target: float
    ps_run: float  # simulated time of the batch when the run stopped
    wall_seconds: float
    atom_steps: int
    stopped_by_wall_clock: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def atom_steps_per_second(self) -> float:
        return self.atom_steps / max(self.wall_seconds, 1e-9)

    def summary(self) -> dict:
        """Stable fraction, mean/min ps reached, mean temperature (K), throughput."""
        reached = np.array([r.ps_reached for r in self.replicas])
        temps = [r.temperature_K for r in self.replicas if r.temperature_K is not None]
        broken = [r for r in self.replicas if r.broken]
        return {
            "replicas": len(self.replicas),
            "stable": len(self.replicas) - len(broken),
            "stable_fraction": 1.0 - len(broken) / len(self.replicas),
            "ps_target": self.ps_target,
            "ps_run": self.ps_run,
            "mean_ps_reached": float(reached.mean()),
            "min_ps_reached": float(reached.min()),
            "mean_temperature_K": float(np.mean(temps)) if temps else None,
            "atom_steps_per_second": self.atom_steps_per_second,
            "wall_seconds": self.wall_seconds,
            "stopped_by_wall_clock": self.stopped_by_wall_clock,
        }

    def to_json(self) -> dict:
        return {
            "summary": self.summary(),
            "settings": self.settings,
            "replicas": [asdict(r) for r in self.replicas],
            "notes": self.notes,
        }


# --- the run ---------------------------------------------------------------------------------
class _Tracker:
    """Device accumulators for the systems currently in the batch (reset on removal)."""

    def __init__(self, n: int, state: MDState) -> None:
        long = dict(dtype=torch.long, device=state.device)
        self.first_bad = torch.full((n,), -1, **long)
        self.code, self.pair = torch.zeros(n, **long), torch.zeros(n, **long)
        self.value = torch.zeros(n, dtype=state.dtype, device=state.device)
        self.t_sum = torch.zeros(n, dtype=state.dtype, device=state.device)
        self.t_count = torch.zeros(n, dtype=state.dtype, device=state.device)

    def update(self, state: MDState, watch: BondWatch, sample_temperature: bool) -> None:
        code, pair, value = watch.check(state.positions)
        new = (code > 0) & (self.first_bad < 0)
        self.first_bad = torch.where(new, state.step, self.first_bad)
        self.code = torch.where(new, code, self.code)
        self.pair = torch.where(new, pair, self.pair)
        self.value = torch.where(new, value, self.value)
        if sample_temperature:
            intact = (self.first_bad < 0).to(state.dtype)
            self.t_sum = self.t_sum + intact * state.kinetic_temperature()
            self.t_count = self.t_count + intact


def run_stability(
    model: torch.nn.Module,
    atoms: ase.Atoms,
    replicas: int = 16,
    temperature: float | Sequence[float] = 500.0,
    timestep: float = DEFAULTS.timestep,
    ps: float = 100.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    chunk_ps: float = 1.0,
    stretch: float = 1.5,
    min_contact: float = 0.75,
    friction: float = DEFAULTS.friction,
    warmup_ps: float = 0.2,
    max_wall_minutes: float | None = None,
    check_every: int | None = None,
    report: Callable[[str], None] | None = None,
    compile_model: bool = False,
) -> StabilityResult:
    """Langevin (BAOAB) MD of ``replicas`` copies of a molecule until ``ps`` or all broke.

    temperature K (one value or one per replica), timestep fs, ps and chunk_ps in ps,
    friction 1/fs, min_contact A, stretch a multiple of each bond's starting length.
    The mean temperature of a replica averages T = 2 K / (3N k_B) over its intact
    samples after ``warmup_ps`` (None if there are none). ``report`` gets one progress
    line per chunk; ``compile_model`` runs the model through ``torch.compile``.
    """
    if replicas < 1 or not ps > 0 or not chunk_ps > 0 or not timestep > 0:
        raise ValueError(
            f"need replicas >= 1 and ps, chunk_ps, timestep > 0, got {replicas}, {ps}, "
            f"{chunk_ps}, {timestep}"
        )
    if max_wall_minutes is not None and not max_wall_minutes > 0:
        raise ValueError(f"max_wall_minutes must be > 0, got {max_wall_minutes}")
    watch = BondWatch(atoms, stretch, min_contact, device, dtype)
    state = from_atoms(atoms, replicas, temperature, device, dtype)
    state = maxwell_boltzmann(state, generator=torch.Generator(state.device).manual_seed(seed))
    force_field = ForceField(model, compile=compile_model)
    integrator = make_integrator("nvt-langevin", timestep, friction=friction, seed=seed)
    sim = Simulation(state, force_field, integrator, check_every=check_every)
    ids = np.arange(replicas)  # original replica of each system in the batch
    records = [ReplicaRecord(replica=r) for r in range(replicas)]
    t_sum, t_count = np.zeros(replicas), np.zeros(replicas)
    tracker = _Tracker(replicas, sim.state)
    total_steps, chunk_steps = (
        round(ps * 1000 / timestep),
        max(1, round(chunk_ps * 1000 / timestep)),
    )
    warmup_step = warmup_ps * 1000 / timestep
    budget = math.inf if max_wall_minutes is None else 60.0 * max_wall_minutes
    start, atom_steps, stopped = time.perf_counter(), 0, False
    symbols = atoms.get_chemical_symbols()

    def harvest(exploded: torch.Tensor | None) -> np.ndarray:
        """Read the chunk's flags (one host sync), record broken replicas; mask of survivors."""
        first, code = tracker.first_bad.cpu().numpy(), tracker.code.cpu().numpy()
        pair, value = tracker.pair.cpu().numpy(), tracker.value.cpu().numpy()
        t_sum[ids] += tracker.t_sum.cpu().numpy()
        t_count[ids] += tracker.t_count.cpu().numpy()
        boom = np.full(len(ids), -1) if exploded is None else exploded.cpu().numpy()
        for k, rid in enumerate(ids):
            steps = [s for s in (first[k], boom[k]) if s >= 0]
            if not steps:
                continue
            rec = records[rid]
            rec.broken, rec.break_ps = True, float(min(steps) * timestep / 1000)
            if boom[k] >= 0 and (first[k] < 0 or boom[k] < first[k]):
                rec.reason = REASONS[EXPLOSION]
            else:
                label = watch.pair_name(int(code[k]), int(pair[k]), symbols)
                rec.reason = f"{REASONS[int(code[k])]}: {label} at {float(value[k]):.3f} A"
        return (first < 0) & (boom < 0)

    while sim.state.step < total_steps and len(ids):
        chunk_end, exploded = min(sim.state.step + chunk_steps, total_steps), None
        first_step = sim.state.step
        try:
            for _ in sim.run(chunk_end - first_step):
                tracker.update(sim.state, watch, sim.state.step >= warmup_step)
                if time.perf_counter() - start > budget:
                    stopped = True
                    break
        except MDExplosionError:  # the state is that of the end of the engine chunk
            exploded = sim.monitor.first_bad
            tracker.update(sim.state, watch, sim.state.step >= warmup_step)
        atom_steps += (sim.state.step - first_step) * sim.state.n_atoms
        survivors = harvest(exploded)
        for rid in ids[survivors]:
            records[rid].ps_reached = sim.state.time / 1000
        if not survivors.all():
            ids = ids[survivors]
            if len(ids):
                sim.select(torch.as_tensor(survivors, device=sim.state.device))
        tracker = _Tracker(len(ids), sim.state)
        if report is not None:
            wall = time.perf_counter() - start
            report(
                f"t = {sim.state.time / 1000:8.3f} ps  intact {len(ids):4d}/{replicas}  "
                f"wall {wall:7.1f} s  {atom_steps / max(wall, 1e-9):.4g} atom-steps/s"
            )
        if stopped:
            break
    wall = time.perf_counter() - start
    for rec in records:
        if rec.broken:
            rec.ps_reached = rec.break_ps
        if t_count[rec.replica] > 0:
            rec.temperature_K = float(t_sum[rec.replica] / t_count[rec.replica])
    settings = dict(
        replicas=replicas, temperature_K=temperature, timestep_fs=timestep, seed=seed,
        friction_per_fs=friction, stretch=stretch, min_contact_A=min_contact,
        chunk_ps=chunk_ps, warmup_ps=warmup_ps, max_wall_minutes=max_wall_minutes,
        check_every=sim.check_every, compiled=compile_model, device=str(sim.state.device),
        dtype=str(dtype),
        n_atoms=len(atoms), formula=atoms.get_chemical_formula(),
        bonds=[watch.pair_name(STRETCH, b, symbols) for b in range(len(watch.bonds))],
    )  # fmt: skip
    result = StabilityResult(
        records, settings, ps, sim.state.time / 1000, wall, atom_steps, stopped
    )
    if stopped:
        result.notes.append(
            f"stopped by the wall-clock budget ({max_wall_minutes} min) at "
            f"{result.ps_run:.3f} ps of {ps} ps"
        )
    return result


# --- command line ----------------------------------------------------------------------------
def format_table(result: StabilityResult) -> str:
    """Per-replica rows and the summary, as plain text."""
    lines = [f"{'replica':>7} {'status':>8} {'ps reached':>11} {'T (K)':>8}  reason"]
    for r in result.replicas:
        t = "n/a" if r.temperature_K is None else f"{r.temperature_K:.1f}"
        status = "broken" if r.broken else "intact"
        lines.append(f"{r.replica:>7} {status:>8} {r.ps_reached:>11.3f} {t:>8}  {r.reason}")
    s = result.summary()
    t = "n/a" if s["mean_temperature_K"] is None else f"{s['mean_temperature_K']:.1f} K"
    lines += [
        "",
        f"replicas             {s['replicas']}",
        f"stable fraction      {s['stable_fraction']:.3f} ({s['stable']}/{s['replicas']}) "
        f"up to {s['ps_run']:.3f} ps of {s['ps_target']:g} ps",
        f"ps reached           mean {s['mean_ps_reached']:.3f}, min {s['min_ps_reached']:.3f}",
        f"mean temperature     {t}  (target {result.settings['temperature_K']} K)",
        f"throughput           {s['atom_steps_per_second']:.4g} atom-steps/s "
        f"({s['wall_seconds'] / 60:.2f} min wall)",
    ]
    return "\n".join(lines + result.notes)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True, help="model file (mlip.model.load_model)")
    p.add_argument(
        "--structure",
        default="datasets/ethanol_small.h5:ethanol_minimum",
        help="FILE.h5:GROUP[:INDEX] or an ASE-readable file (first frame)",
    )
    p.add_argument("--replicas", type=int, default=16)
    p.add_argument("--temperature", type=float, default=500.0, help="K")
    p.add_argument("--timestep", type=float, default=DEFAULTS.timestep, help="fs")
    p.add_argument("--ps", type=float, default=100.0, help="simulated time per replica, ps")
    p.add_argument("--friction", type=float, default=DEFAULTS.friction, help="Langevin gamma, 1/fs")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    p.add_argument("--chunk-ps", type=float, default=1.0, help="host reads flags every X ps")
    p.add_argument("--stretch", type=float, default=1.5, help="broken bond: d > X * d0")
    p.add_argument("--min-contact", type=float, default=0.75, help="non-bonded pair closer, A")
    p.add_argument("--warmup-ps", type=float, default=0.2, help="excluded from mean T, ps")
    p.add_argument("--check-every", type=int, help="steps per engine sync (1 CPU, 20 GPU)")
    p.add_argument("--max-wall-minutes", type=float, help="stop cleanly after this wall time")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--json", default="md_stability.json", help="output file ('' for none)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from mlip.md import read_structures
    from mlip.model import load_model

    dtype = getattr(torch, args.dtype)
    model = load_model(args.model, device=args.device, dtype=dtype)
    atoms = read_structures(args.structure)[0]
    print(
        f"model {args.model}; {atoms.get_chemical_formula()} from {args.structure}; "
        f"{args.replicas} replicas, Langevin BAOAB {args.temperature} K, dt {args.timestep} fs, "
        f"{args.ps} ps; device {args.device}, {args.dtype}, {torch.get_num_threads()} threads",
        flush=True,
    )
    result = run_stability(
        model, atoms, args.replicas, args.temperature, args.timestep, args.ps, args.seed,
        args.device, dtype, args.chunk_ps, args.stretch, args.min_contact, args.friction,
        args.warmup_ps, args.max_wall_minutes, args.check_every,
        report=lambda line: print(line, flush=True), compile_model=args.compile,
    )  # fmt: skip
    result.settings.update(model=args.model, structure=args.structure)
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.to_json(), f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
