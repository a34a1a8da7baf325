"""TorchSim adapter: a ``torch_sim`` ``ModelInterface`` for any mlip energy model.

:class:`MLIPTorchSimModel` lets TorchSim's batched integrators, optimisers and runners
(``torch_sim.integrate``, ``torch_sim.optimize``, ``torch_sim.static``) drive an mlip
model (learned or classical). Units are TorchSim's "metal" units, which are mlip's:
eV, Angstrom, eV/A, and stress in eV/A^3 with ASE's sign (sigma = (1/V) dE/d(strain),
positive under tension; TorchSim's own models use the same).

TorchSim stores cells as column vectors (``state.cell[s, :, k]`` is lattice vector k);
mlip batches hold them as rows, so the adapter reads ``state.row_vector_cell`` (or
transposes the ``cell`` of a plain state dict). The neighbour list is mlip's device
list (:class:`mlip.md.neighbors.VerletList`, cutoff r_max + skin), rebuilt when an
atom moved more than skin / 2, the cell deformed beyond its limit or the systems
changed (TorchSim's autobatchers swap systems in and out); energies, forces and stress
are :func:`mlip.derivatives.compute`'s.

TorchSim is optional: ``pip install -e .[torchsim]`` (``torch-sim-atomistic``).
"""

from __future__ import annotations

import os

import torch

try:
    from torch_sim.models.interface import ModelInterface
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"mlip.integrations.torchsim needs TorchSim ({err}); "
        "pip install 'mlip[torchsim]' (or: pip install torch-sim-atomistic)"
    ) from err

from mlip import keys
from mlip.calculator import load_calculator_model
from mlip.derivatives import compute
from mlip.errors import check_known_elements
from mlip.md.neighbors import VerletList


class MLIPTorchSimModel(ModelInterface):
    """TorchSim model of an mlip energy model (a module or a model file).

    ``compute_stress`` adds the stress (periodic states only); ``skin`` (A) is the
    Verlet skin of the neighbour list. Returns ``energy`` (n_systems,) eV, ``forces``
    (n_atoms, 3) eV/A and, with stress, ``stress`` (n_systems, 3, 3) eV/A^3.
    """

    def __init__(
        self,
        model: torch.nn.Module | str | os.PathLike,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
        compute_stress: bool = False,
        skin: float = 1.0,
    ) -> None:
        super().__init__()
        self._device = torch.device(device or "cpu")
        self._dtype = dtype
        self._compute_stress = bool(compute_stress)
        self._compute_forces = True
        self._memory_scales_with = "n_atoms_x_density"
        self.model = load_calculator_model(model, self._device, dtype)
        r_max = float(self.model.r_max)
        self.neighbors = VerletList(r_max, skin) if r_max > 0 else None
        known = getattr(self.model, "atomic_numbers", None)
        self.known_numbers = None if known is None else {int(z) for z in known}
        self._checked: set[int] = set()

    @ModelInterface.compute_stress.setter
    def compute_stress(self, value: bool) -> None:
        self._compute_stress = bool(value)

    @ModelInterface.compute_forces.setter
    def compute_forces(self, value: bool) -> None:
        if not value:
            raise NotImplementedError("forces are always computed (integrators need them)")

    def forward(self, state, **kwargs) -> dict[str, torch.Tensor]:  # noqa: ANN001, ANN003
        """Energies, forces (and stress) of a ``SimState`` or a state dict (positions,
        cell as column vectors, pbc, atomic_numbers, system_idx)."""
        positions, cell, pbc, numbers, system_idx = self._unpack(state)
        present = set(torch.unique(numbers).tolist())
        if not present <= self._checked:
            check_known_elements(present, self.known_numbers)
            self._checked |= present
        n_systems = cell.shape[0]
        num_atoms = torch.bincount(system_idx, minlength=n_systems)
        if self.neighbors is None:
            edge_index = torch.zeros((2, 0), dtype=torch.long, device=positions.device)
            edge_shifts = torch.zeros((0, 3), dtype=positions.dtype, device=positions.device)
        else:
            n = self.neighbors
            same_systems = n.reference_system_idx is not None and torch.equal(
                n.reference_system_idx, system_idx
            )
            if not same_systems or bool(n.is_stale(positions, cell)):
                n.build(positions, cell, pbc, system_idx, num_atoms.tolist())
            edge_index, edge_shifts = n.edge_index, n.edge_shifts
        batch = {
            keys.POSITIONS: positions,
            keys.ATOMIC_NUMBERS: numbers,
            keys.BATCH: system_idx,
            keys.NUM_ATOMS: num_atoms,
            keys.CELL: cell,
            keys.PBC: pbc,
            keys.EDGE_INDEX: edge_index,
            keys.EDGE_SHIFTS: edge_shifts,
        }
        stress = self._compute_stress
        if stress and not bool(pbc.all()):
            raise ValueError("stress needs periodic cells (pbc on all axes): compute_stress=False")
        out = compute(self.model, batch, forces=True, stress=stress)
        results = {"energy": out[keys.ENERGY], "forces": out[keys.FORCES]}
        if stress:
            results["stress"] = out[keys.STRESS]
        return results

    def _unpack(self, state) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
        get = state.get if isinstance(state, dict) else lambda name: getattr(state, name)
        positions = get("positions").to(self._device, self._dtype)
        if isinstance(state, dict):
            cell = get("cell").transpose(-1, -2)  # column vectors -> rows
        else:
            cell = state.row_vector_cell
        cell = cell.to(self._device, self._dtype).reshape(-1, 3, 3)
        system_idx = get("system_idx")
        if system_idx is None:
            system_idx = torch.zeros(len(positions), dtype=torch.long)
        system_idx = system_idx.to(self._device, torch.long)
        pbc = torch.as_tensor(get("pbc"), dtype=torch.bool, device=self._device)
        pbc = pbc.reshape(-1, 3) if pbc.numel() > 1 else pbc.reshape(1, 1)
        pbc = pbc.expand(cell.shape[0], 3).contiguous()
        numbers = get("atomic_numbers").to(self._device, torch.long)
        return positions, cell, pbc, numbers, system_idx
