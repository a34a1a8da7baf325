"""Committees of energy models: the mean prediction and the members' spread.

A :class:`Committee` of K members (energy models of the package, e.g. several
:class:`mlip.model.MLIPModel` trained with different seeds) is itself an energy model:
``forward(batch)`` returns the committee mean

    E = (1/K) sum_k E_k          (eV)     NODE_ENERGY: the mean per-atom energies

and, under :data:`mlip.keys.MEMBER_ENERGY`, every member's energy (K, n_systems). Forces,
stress and Hessians of the mean come from :mod:`mlip.derivatives` like those of any
model; ``derivatives.compute(..., members=True)`` evaluates the members one by one and
adds each member's forces (:data:`mlip.keys.MEMBER_FORCES`), whose mean gives the
forces, so a committee costs K model evaluations, not K + 1. The spread
(:func:`committee_spread`, population standard deviations over the members):

    energy_std_s   = sqrt( (1/K) sum_k (E_k,s - E_s)^2 )                (eV)
    forces_std_a   = sqrt( (1/K) sum_k |F_k,a - F_a|^2 )                (eV/A, per atom)
    max_force_std_s = max over the atoms a of system s of forces_std_a  (eV/A)

Everything here stays on the device (no host synchronisation), so the MD engine can
evaluate the spread every step. Files: :meth:`Committee.save` writes one file
(``format = "mlip-committee"``) holding each member's model payload;
:func:`mlip.model.load_model` reads it back as a Committee. Units: eV, Angstrom.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from mlip import keys
from mlip.fileio import atomic_torch_save

COMMITTEE_FORMAT = "mlip-committee"
COMMITTEE_VERSION = 1


class Committee(torch.nn.Module):
    """Mean of K energy models with their spread; see the module docstring.

    ``members``: energy models (``r_max`` A, ``atomic_numbers``, ``forward(batch)``),
    at least one. The committee's ``r_max`` is the largest of the members' (each member
    ignores pairs beyond its own cutoff); every member must know the same elements.
    """

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("a committee needs at least one member")
        known = [getattr(m, "atomic_numbers", None) for m in members]
        first = None if known[0] is None else sorted(int(z) for z in known[0])
        for k, numbers in enumerate(known):
            mine = None if numbers is None else sorted(int(z) for z in numbers)
            if mine != first:
                raise ValueError(
                    f"committee member {k} knows elements {mine}, member 0 knows {first}"
                )
        self.members = torch.nn.ModuleList(members)
        self.r_max = max(float(m.r_max) for m in members)
        self.atomic_numbers = first

    @property
    def num_members(self) -> int:
        """K, the number of members."""
        return len(self.members)

    @property
    def check_elements(self) -> bool:
        """The members' own per-call element check (switched off by the MD engine)."""
        return all(getattr(m, "check_elements", True) for m in self.members)

    @check_elements.setter
    def check_elements(self, value: bool) -> None:
        for m in self.members:
            if hasattr(m, "check_elements"):
                m.check_elements = value

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outs = [member(batch) for member in self.members]
        member_energy = torch.stack([o[keys.ENERGY] for o in outs])  # (K, n_systems)
        node_energy = torch.stack([o[keys.NODE_ENERGY] for o in outs]).mean(0)
        return {
            keys.ENERGY: member_energy.mean(0),
            keys.NODE_ENERGY: node_energy,
            keys.MEMBER_ENERGY: member_energy,
        }

    def payload(self) -> dict:
        """The file content: every member's own payload (members need ``payload()``)."""
        for k, m in enumerate(self.members):
            if not hasattr(m, "payload"):
                raise TypeError(
                    f"committee member {k} ({type(m).__name__}) cannot be saved: no payload()"
                )
        return {
            "format": COMMITTEE_FORMAT,
            "version": COMMITTEE_VERSION,
            "members": [m.payload() for m in self.members],
            "units": {"energy": "eV", "length": "Angstrom"},
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the committee to one file, atomically (read by ``mlip.load_model``)."""
        atomic_torch_save(self.payload(), path)


def is_committee(model: object) -> bool:
    """Whether ``model`` is a committee (has members whose spread it reports)."""
    return hasattr(model, "num_members") and hasattr(model, "members")


def committee_spread(
    member_energy: torch.Tensor,
    member_forces: torch.Tensor,
    system_idx: torch.Tensor,
    n_systems: int,
) -> dict[str, torch.Tensor]:
    """Spread of a committee's predictions (see the module docstring), on the device.

    ``member_energy`` (K, n_systems) eV, ``member_forces`` (K, n_atoms, 3) eV/A,
    ``system_idx`` (n_atoms,) the system of each atom. Returns ``energy_std``
    (n_systems,) eV, ``forces_std`` (n_atoms,) eV/A and ``max_force_std`` (n_systems,)
    eV/A; population standard deviations (zero for identical members).
    """
    energy_std = member_energy.std(0, correction=0)
    deviation = member_forces - member_forces.mean(0, keepdim=True)
    forces_std = (deviation**2).sum(-1).mean(0).sqrt()
    largest = torch.zeros(n_systems, dtype=forces_std.dtype, device=forces_std.device)
    largest = largest.scatter_reduce(0, system_idx, forces_std, reduce="amax")
    return {"energy_std": energy_std, "forces_std": forces_std, "max_force_std": largest}
