"""No host synchronisation inside an MD chunk.

A CUDA host sync happens when the host needs a value the device computed: ``.item()``,
``bool(t)``, ``.tolist()``, and ops whose output size depends on data (``nonzero``,
boolean-mask indexing, ``unique``, ``repeat_interleave`` without ``output_size``,
``bincount``). On the CPU nothing waits, so these tests watch the aten ops themselves
with a ``TorchDispatchMode`` (it also sees the backward pass that computes forces):
every op that would block a GPU stream is recorded. Inside ``Simulation._steps`` in
deferred mode (what ``advance`` runs between host checks on a GPU) there must be none;
the host check at the end of a chunk must cost a bounded handful.
"""

from __future__ import annotations

import pytest
import torch
from ase.build import bulk, molecule
from support import small_model
from torch.utils._python_dispatch import TorchDispatchMode

from mlip.committee import Committee
from mlip.md import ForceField, Simulation, UncertaintyWatch, from_atoms, make_integrator
from mlip.potentials import LennardJones

pytestmark = pytest.mark.usefixtures("one_thread")

aten = torch.ops.aten
SYNCING = {
    aten._local_scalar_dense.default,  # item(), bool(), int(), float()
    aten.is_nonzero.default,
    aten.equal.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.repeat_interleave.Tensor,
    aten.bincount.default,
}


class SyncRecorder(TorchDispatchMode):
    """Records the aten ops that would synchronise a CUDA device with the host."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func in SYNCING:
            self.ops.append(str(func))
        elif func in (aten.index.Tensor, aten.index_put.default, aten.index_put_.default):
            indices = args[1]
            if any(i is not None and i.dtype == torch.bool for i in indices):
                self.ops.append(f"{func} with a boolean mask")
        return func(*args, **kwargs)


def make_simulation(model, atoms, ensemble: str, check_every: int = 10) -> Simulation:
    state = from_atoms(atoms, replicas=3, temperature=300.0)
    torch.manual_seed(0)
    state = state.replace(momenta=0.01 * torch.randn_like(state.momenta))
    integrator = make_integrator(ensemble, 0.5, seed=1)
    # prune=False: the GPU default (pruning uses a boolean mask, a sync; on for CPU only)
    force_field = ForceField(model, skin=0.5, prune=False)
    return Simulation(state, force_field, integrator, check_every=check_every)


@pytest.mark.parametrize("ensemble", ["nve", "nvt-langevin", "nvt-bussi", "nvt-nhc"])
@pytest.mark.parametrize(
    "system",
    ["ethanol-model", "argon-lj", "ethanol-committee"],
)
def test_chunk_has_no_host_sync(system: str, ensemble: str) -> None:
    if system == "ethanol-model":
        model, atoms = small_model(), molecule("CH3CH2OH")
    elif system == "ethanol-committee":  # member forces and force std every step
        model = Committee([small_model(seed=s) for s in range(3)])
        atoms = molecule("CH3CH2OH")
    else:
        model, atoms = LennardJones(0.0104, 3.4, 6.0), bulk("Ar", "fcc", 5.26, cubic=True) * 2
    sim = make_simulation(model, atoms, ensemble)
    sim.advance(10)  # warm-up: first list build, element check (syncs allowed here)
    force_field = sim.force_field
    force_field.deferred = True
    with SyncRecorder() as recorder:
        sim._steps(10)
    force_field.deferred = False
    assert recorder.ops == [], f"host syncs inside a chunk: {sorted(set(recorder.ops))}"
    if system == "ethanol-committee":
        assert sim.state.force_std is not None and sim.state.force_std_max is not None


def test_committee_chunk_end_reads_the_spread_once() -> None:
    """The uncertainty check at a host check: one copy of the two spread vectors."""
    model = Committee([small_model(seed=s) for s in range(2)])
    sim = make_simulation(model, molecule("CH3CH2OH"), "nvt-langevin", check_every=5)
    sim.advance(5)
    watch = UncertaintyWatch(max_force_std=1e6)
    with SyncRecorder() as recorder:
        assert watch.check(sim, log_step=False)
    assert len(recorder.ops) <= 2, recorder.ops
    assert sim.state.force_std_max is None  # cleared for the next chunk


def test_recorder_sees_syncs() -> None:
    """The recorder is not blind: exact mode reads the stale flag every step."""
    sim = make_simulation(LennardJones(0.0104, 3.4, 6.0), bulk("Ar", "fcc", 5.26) * 3, "nve")
    sim.advance(1)
    sim.force_field.deferred = False
    with SyncRecorder() as recorder:
        sim._steps(4)
    assert recorder.ops.count(str(aten._local_scalar_dense.default)) >= 4


def test_chunk_end_syncs_are_bounded() -> None:
    """One advance(k) costs O(1) syncs, not O(k): the flags are read once per chunk."""
    model, atoms = LennardJones(0.0104, 3.4, 6.0), bulk("Ar", "fcc", 5.26, cubic=True) * 2
    counts = []
    for steps in (5, 20):
        sim = make_simulation(model, atoms, "nvt-langevin", check_every=steps)
        sim.advance(steps)
        with SyncRecorder() as recorder:
            sim.advance(steps)
        counts.append(len(recorder.ops))
    assert counts[0] == counts[1], f"syncs grow with chunk length: {counts}"
    assert counts[1] <= 6, counts
