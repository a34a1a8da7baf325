"""Committee MD cost: K members against one model, and against a joint-graph committee.

A step of committee MD (``mlip md`` / ``mlip learn`` with a committee file) needs each
member's forces for the spread (:mod:`mlip.committee`). This script times one force
evaluation (energy, forces, member forces; float64, ms) of ethanol replica batches for

* ``one model``: a single member, ``derivatives.compute(model, batch)``;
* ``committee``: ``derivatives.compute(committee, batch, members=True)``, the path of
  the MD engine (each member its own forward and reverse pass);
* ``joint graph``: the earlier path, measured here as the baseline: one forward of all
  members, then one reverse pass per member from its row of the stacked energies
  (every such pass walks every member's graph).

The ideal committee costs K times one model: the ``committee / one`` column.

    python benchmarks/committee_md.py                        # untrained 4-member committee
    python benchmarks/committee_md.py --model runs/al/model.pt --replicas 1,16,64

Well under a minute on a 2-core CPU (one torch thread).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from ase.build import molecule

from mlip import keys
from mlip.committee import Committee
from mlip.data.graph import atoms_to_batch
from mlip.derivatives import compute


def joint_graph_forces(committee: Committee, batch: dict) -> torch.Tensor:
    """(K, n_atoms, 3) member forces the earlier way (module docstring), for comparison."""
    positions = batch[keys.POSITIONS].detach().requires_grad_(True)
    member_energy = committee({**batch, keys.POSITIONS: positions})[keys.MEMBER_ENERGY]
    forces = []
    for energy in member_energy:
        (grad,) = torch.autograd.grad(energy.sum(), positions, retain_graph=True)
        forces.append(-grad)
    return torch.stack(forces)


def median_ms(function, repeats: int) -> float:  # noqa: ANN001
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", help="committee file (default: untrained members, --members)")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--num-channels", type=int, default=32, help="untrained members")
    p.add_argument("--replicas", default="1,16,64", help="ethanol replicas per batch")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from mlip.model import MLIPModel, ModelConfig, load_model

    if args.model:
        committee = load_model(args.model, dtype=torch.float64)
        if not isinstance(committee, Committee):
            p.error(f"{args.model} is not a committee file (mlip train --committee K)")
        text = f"{args.model} ({committee.num_members} members)"
    else:
        config = ModelConfig(atomic_numbers=[1, 6, 8], num_channels=args.num_channels)
        members = []
        for seed in range(args.members):
            torch.manual_seed(seed)
            members.append(MLIPModel(config).double())
        committee = Committee(members)
        text = f"{args.members} untrained MLIPModel members, {args.num_channels} channels"
    committee.eval()
    committee.check_elements = False
    one = committee.members[0]
    k = committee.num_members
    print(f"{text}; float64, {args.threads} thread(s); ms per force evaluation\n")
    print("| ethanol replicas | atoms | one model | committee | committee / one | "
          "joint graph | joint / committee |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for replicas in [int(r) for r in args.replicas.split(",")]:
        atoms = molecule("CH3CH2OH")
        batch = atoms_to_batch([atoms] * replicas, committee.r_max)
        ms_one = median_ms(lambda b=batch: compute(one, b), args.repeats)
        ms_com = median_ms(lambda b=batch: compute(committee, b, members=True), args.repeats)
        ms_joint = median_ms(lambda b=batch: joint_graph_forces(committee, b), args.repeats)
        # the two paths give the same member forces
        a = compute(committee, batch, members=True)[keys.MEMBER_FORCES]
        assert torch.allclose(a, joint_graph_forces(committee, batch), atol=1e-10)
        ratio, joint = ms_com / ms_one, ms_joint / ms_com
        print(f"| {replicas} | {9 * replicas} | {ms_one:.1f} | {ms_com:.1f} | "
              f"{ratio:.2f} (ideal {k}) | {ms_joint:.1f} | {joint:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
