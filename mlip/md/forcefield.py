"""Energies and forces of a batched MD state: model + device neighbour list.

Synchronisation policy. Rebuilding a neighbour list needs the host (its size is data
dependent), deciding whether to rebuild needs one boolean from the device. A
:class:`ForceField` has two modes:

* ``deferred = False`` (default): ``is_stale`` is read every call, one small
  device-to-host copy per step; exact, and free on the CPU.
* ``deferred = True``: the staleness test runs on the device every call and is OR-ed
  into ``stale_flag`` without reading it. The caller reads the flag every k steps and,
  if it was raised, rolls back to a snapshot taken before those steps, rebuilds and
  redoes them in exact mode (see :mod:`mlip.md.runner`). Forces computed after the flag
  went up may miss pairs, which is why those steps are discarded.

Pruning. The Verlet list holds pairs up to r_max + skin, (1 + skin/r_max)^3 times more
than the model needs (1.7x for r_max = 5 A, skin = 1 A). Models zero the extra edges,
so passing them is correct but wastes the model's time. With ``prune`` the edges
longer than r_max are dropped before every evaluation (one gather and a boolean mask).
A boolean mask has a data-dependent size, which costs a host sync on a GPU, so by
default pruning is on for CPU states only.

Stress and moving cells. With ``stress = True`` every call also computes the stress
sigma = (1/V) dE/d(strain) (n_systems, 3, 3), eV/A^3, ASE sign, so that the potential
pressure is -tr(sigma)/3, by the strain derivative of :func:`mlip.derivatives.compute`,
and stores it in ``state.stress`` (otherwise ``state.stress`` is None). It costs one
more input to the backward pass, so it is on only for the ensembles that need it
(NPT): the runner switches it on from the ensemble registry (:mod:`mlip.md.registry`,
:func:`mlip.md.runner.configure_force_field`); integrators never change it. With
``variable_cell = True`` (default: same as ``stress``) the neighbour-list staleness
test also accounts for the change of the cells since the list was built
(:meth:`mlip.md.neighbors.VerletList.is_stale`).

Compilation. With ``compile=True`` the model's forward pass goes through
:func:`mlip.derivatives.compile_model` (TorchInductor: fused kernels, C++ on the CPU,
Triton on a GPU); forces are still the autograd gradient of its energy, so results agree
with the eager model to rounding (tested). The first call compiles (seconds to a minute);
edge and atom counts are symbolic, so neighbour-list rebuilds do not recompile. Double
backward (training, Hessians) is not supported by torch.compile, which is why only MD
uses it.

Committees. For a :class:`mlip.committee.Committee` the dynamics follow the committee
mean, and every call also sets ``state.force_std`` (n_systems,), the largest per-atom
force std of each system (eV/A, :func:`mlip.committee.committee_spread`), and
``state.force_std_max``, its running maximum since the runner last cleared it; both stay
on the device (read at the host checks, :mod:`mlip.md.uncertainty`).
"""

from __future__ import annotations

import torch

from mlip import keys
from mlip.committee import committee_spread, is_committee
from mlip.derivatives import EnergyModel, compile_model, compute
from mlip.errors import check_known_elements
from mlip.md.config import DEFAULTS
from mlip.md.neighbors import VerletList
from mlip.md.state import MDState
from mlip.nn.geometry import pair_vectors


class ForceField:
    """Callable ``state -> state`` with ``energy`` (eV), ``forces`` (eV/A) (and ``stress``).

    ``model`` is any energy model of the package (``r_max`` in A, ``forward(batch)``);
    the list is built with cutoff ``model.r_max + skin`` (A). A model with r_max = 0
    (e.g. :class:`mlip.potentials.HarmonicBonds`) gets no edges and no list.
    ``prune`` (default: on the CPU only) drops edges longer than r_max before each
    model call; ``compile`` runs the model through ``torch.compile``; ``stress`` adds
    the stress (eV/A^3) to the state and ``variable_cell`` makes the list follow changing
    cells; see the module docstring. MD is inference: a ``torch.nn.Module`` model is put
    in eval mode (``model.eval()``, the caller's model itself), whose features run without
    a host sync; a model trained further afterwards must be put back with ``train()``.
    """

    def __init__(
        self,
        model: EnergyModel,
        skin: float = DEFAULTS.skin,
        max_candidates: int = 2**20,
        deferred: bool = False,
        prune: bool | None = None,
        compile: bool = False,  # noqa: A002 (torch's own name for it)
        stress: bool = False,
        variable_cell: bool | None = None,
    ) -> None:
        if isinstance(model, torch.nn.Module):
            model.eval()  # MD is inference: eval mode has no host sync (TangentBelow)
        self.model = model
        self.committee = is_committee(model)
        self.stress = bool(stress)
        self.variable_cell = self.stress if variable_cell is None else bool(variable_cell)
        self._forward = compile_model(model) if compile else model
        self.prune = prune
        r_max = float(model.r_max)
        self.neighbors = VerletList(r_max, skin, max_candidates) if r_max > 0 else None
        self.deferred = deferred
        self.stale_flag: torch.Tensor | None = None
        self._sizes: list[int] | None = None
        self._sizes_key: torch.Tensor | None = None

    def check_elements(self, state: MDState) -> None:
        """Raise UnknownElementError if the state holds an element the model lacks.

        Once validated, a model's own per-call check (``check_elements``, a host sync
        per evaluation) is switched off.
        """
        known = getattr(self.model, "atomic_numbers", None)
        if known is None:
            return
        check_known_elements(torch.unique(state.atomic_numbers).tolist(), known)
        if hasattr(self.model, "check_elements"):
            self.model.check_elements = False

    def _num_atoms(self, state: MDState) -> list[int]:
        if self._sizes_key is not state.num_atoms:  # cached: one host copy per new batch
            self._sizes = state.num_atoms.tolist()
            self._sizes_key = state.num_atoms
        return self._sizes

    def rebuild(self, state: MDState) -> None:
        """Rebuild the neighbour list now and clear the stale flag."""
        if self.neighbors is not None:
            self.neighbors.build(
                state.positions, state.cell, state.pbc, state.system_idx, self._num_atoms(state)
            )
        self.stale_flag = torch.zeros((), dtype=torch.bool, device=state.device)

    def _update_list(self, state: MDState) -> None:
        if self.neighbors is None:
            return
        n = self.neighbors
        if n.reference is None or n.reference.shape != state.positions.shape:
            self.rebuild(state)
            return
        stale = n.is_stale(state.positions, state.cell if self.variable_cell else None)
        if self.deferred:
            self.stale_flag = self.stale_flag | stale
        elif bool(stale):  # one host sync
            self.rebuild(state)

    def batch(self, state: MDState) -> dict[str, torch.Tensor]:
        """The model input of :mod:`mlip.keys` for the current positions and list."""
        if self.neighbors is None or self.neighbors.edge_index is None:
            edge_index = torch.zeros((2, 0), dtype=torch.long, device=state.device)
            edge_shifts = torch.zeros((0, 3), dtype=state.dtype, device=state.device)
        else:
            edge_index, edge_shifts = self.neighbors.edge_index, self.neighbors.edge_shifts
            prune = self.prune if self.prune is not None else state.device.type == "cpu"
            if prune:
                edge_index, edge_shifts = self._pruned(state, edge_index, edge_shifts)
        return {
            keys.POSITIONS: state.positions,
            keys.ATOMIC_NUMBERS: state.atomic_numbers,
            keys.BATCH: state.system_idx,
            keys.NUM_ATOMS: state.num_atoms,
            keys.CELL: state.cell,
            keys.PBC: state.pbc,
            keys.EDGE_INDEX: edge_index,
            keys.EDGE_SHIFTS: edge_shifts,
        }

    def _pruned(
        self, state: MDState, edge_index: torch.Tensor, edge_shifts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The edges with |R_j - R_i + S @ cell| < r_max."""
        vectors = pair_vectors(
            state.positions, edge_index, edge_shifts, state.cell, state.system_idx
        )
        keep = (vectors * vectors).sum(-1) < self.neighbors.r_max**2
        return edge_index[:, keep], edge_shifts[keep]

    def __call__(self, state: MDState) -> MDState:
        self._update_list(state)
        out = compute(
            self._forward,
            self.batch(state),
            forces=True,
            stress=self.stress,
            members=self.committee,
        )
        stress = out[keys.STRESS] if self.stress else None
        changes = {"energy": out[keys.ENERGY], "forces": out[keys.FORCES], "stress": stress}
        if self.committee:  # the committee mean drives the dynamics; its spread is recorded
            largest = committee_spread(
                out[keys.MEMBER_ENERGY], out[keys.MEMBER_FORCES], state.system_idx, state.n_systems
            )["max_force_std"]
            peak = state.force_std_max
            changes["force_std"] = largest
            changes["force_std_max"] = largest if peak is None else torch.maximum(peak, largest)
        return state.replace(**changes)

    def take_stale_flag(self) -> bool:
        """Read (one host sync) and clear the deferred stale flag."""
        if self.stale_flag is None:
            return False
        value = bool(self.stale_flag)
        self.stale_flag = torch.zeros_like(self.stale_flag)
        return value
