"""ASE calculator for mlip energy models (learned or classical). Units: eV, Angstrom.

:class:`MLIPCalculator` wraps any module with the model interface (``r_max``,
``atomic_numbers``, ``forward(batch) -> {ENERGY, NODE_ENERGY}``) and returns

* energy, free_energy  E (eV);  energies: per-atom contributions (eV, NODE_ENERGY)
* forces    F = -dE/dR (N, 3) eV/A
* stress    sigma = (1/V) dE/d(strain) = -W/V (W the virial), Voigt 6 (xx yy zz yz xz
            xy), eV/A^3, ASE sign (positive under tension, pressure P = -tr(sigma)/3);
            only for periodic systems with a 3D cell
* :meth:`MLIPCalculator.get_hessian`: H = d2E/dR dR (3N, 3N) eV/A^2, exact (autograd)
* for a committee (:class:`mlip.committee.Committee`, e.g. a ``mlip train --committee K``
  file) the values above are the committee mean, and ``results`` also holds
  ``energy_std`` (eV) and ``forces_std`` (N,) eV/A, the members' spread per atom
  (:func:`mlip.committee.committee_spread`)

All derivatives come from :func:`mlip.derivatives.compute`. The model is evaluated in
the calculator's own dtype/device; torch's global default dtype is never changed.
With ``compile=True`` energies, forces and stress go through
:func:`mlip.derivatives.compile_model` (the first call compiles; results equal the eager
model's to rounding); Hessians need double backward, which torch.compile does not
support, and use the eager model.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from mlip import keys
from mlip.committee import committee_spread, is_committee
from mlip.data.graph import atoms_to_batch, matrix_to_voigt
from mlip.derivatives import compile_model, compute, split_hessian
from mlip.errors import CheckpointError, check_known_elements

DTYPES = {"float32": torch.float32, "float64": torch.float64}
SPREAD = ("energy_std", "forces_std")  # committee results (eV, eV/A per atom)


def _resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def load_calculator_model(
    model_or_path: torch.nn.Module | str | os.PathLike,
    device: str | torch.device,
    dtype: torch.dtype,
) -> torch.nn.Module:
    """The model on ``device`` in ``dtype`` and eval mode, loaded if given as a path.

    A module that already matches is used as is (put in eval mode); otherwise a copy
    is converted, so the caller's module is left untouched.
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        from mlip.model import load_model  # lazy: the model module is optional here

        path = os.fspath(model_or_path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"model file not found: {path}")
        try:
            model = load_model(path, device=device, dtype=dtype)
        except CheckpointError as err:
            if path in str(err):
                raise
            raise CheckpointError(f"{path}: {err}") from err
    elif isinstance(model_or_path, torch.nn.Module):
        model = model_or_path
    else:
        raise TypeError(
            f"model_or_path must be a torch.nn.Module or a path, got {type(model_or_path)}"
        )
    for attribute in ("r_max", "atomic_numbers"):
        if not hasattr(model, attribute):
            raise TypeError(f"the model has no attribute {attribute!r} (see mlip.potentials)")
    device = torch.device(device)
    tensors = list(model.parameters()) + list(model.buffers())
    matches = all(
        t.device.type == device.type
        and (device.index is None or t.device.index == device.index)
        and (not t.is_floating_point() or t.dtype == dtype)
        for t in tensors
    )
    if not matches:
        model = copy.deepcopy(model).to(device=device, dtype=dtype)
    return model.eval()


class MLIPCalculator(Calculator):
    """ASE calculator for an mlip model (eV, Angstrom); see the module docstring.

    ``model_or_path``: a module with the model interface, or a path for
    :func:`mlip.model.load_model`. ``device``: torch device; ``dtype``: "float64"
    (default, for MD and Hessians) or "float32". ``compile``: run energies, forces and
    stress through ``torch.compile`` (see the module docstring).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model_or_path: torch.nn.Module | str | os.PathLike,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float64",
        compile: bool = False,  # noqa: A002 (torch's own name for it)
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.dtype = _resolve_dtype(dtype)
        self.device = torch.device(device)
        self.model = load_calculator_model(model_or_path, self.device, self.dtype)
        self._compiled = compile_model(self.model) if compile else self.model
        self.committee = is_committee(self.model)
        if self.committee:
            self.implemented_properties = [*self.implemented_properties, *SPREAD]
        known = getattr(self.model, "atomic_numbers", None)
        self.known_numbers: set[int] | None = None if known is None else {int(z) for z in known}

    @property
    def cutoff(self) -> float:
        """Neighbour-list cutoff, Angstrom (the model's r_max)."""
        return float(self.model.r_max)  # 0 for models without a neighbour list

    def calculate(
        self,
        atoms=None,  # noqa: ANN001 (ase.Atoms)
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Energy, per-atom energies, forces and (periodic) stress; Hessian if asked."""
        properties = list(properties or ["energy"])
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        self._check_elements(atoms.numbers)
        periodic = bool(atoms.pbc.any()) and atoms.cell.rank == 3
        want_hessian = "hessian" in properties
        batch = atoms_to_batch(atoms, self.cutoff, dtype=self.dtype, device=self.device)
        model = self.model if want_hessian else self._compiled
        out = compute(
            model, batch, forces=True, stress=periodic, hessian=want_hessian, members=self.committee
        )

        def numpy(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float64).numpy()

        energy = float(numpy(out[keys.ENERGY])[0])
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        if keys.NODE_ENERGY in out:
            self.results["energies"] = numpy(out[keys.NODE_ENERGY]).reshape(len(atoms))
        self.results["forces"] = numpy(out[keys.FORCES]).reshape(len(atoms), 3)
        if periodic:
            self.results["stress"] = matrix_to_voigt(numpy(out[keys.STRESS])[0])
        if keys.MEMBER_FORCES in out:
            spread = committee_spread(
                out[keys.MEMBER_ENERGY], out[keys.MEMBER_FORCES], batch[keys.BATCH], 1
            )
            self.results["energy_std"] = float(numpy(spread["energy_std"])[0])
            self.results["forces_std"] = numpy(spread["forces_std"]).reshape(len(atoms))
        if want_hessian:
            (block,) = split_hessian(out[keys.HESSIAN], batch[keys.NUM_ATOMS])
            self.results["hessian"] = numpy(block)

    def get_hessian(self, atoms=None) -> np.ndarray:  # noqa: ANN001 (ase.Atoms)
        """Exact Hessian d2E/dR dR, (3N, 3N) atom-major (x0, y0, z0, x1, ...), eV/A^2.

        Cached like the other properties until the atoms change.
        """
        if atoms is None:
            atoms = self.atoms
            if atoms is None:
                raise ValueError("get_hessian needs atoms (none given and none attached)")
        system_changes = self.check_state(atoms)
        if system_changes:
            self.reset()
        if "hessian" not in self.results:
            self.calculate(atoms, ["energy", "forces", "hessian"], system_changes or all_changes)
        return self.results["hessian"].copy()

    def _check_elements(self, numbers: np.ndarray) -> None:
        """UnknownElementError (:func:`mlip.errors.check_known_elements`) for a new element."""
        check_known_elements(numbers, self.known_numbers)
