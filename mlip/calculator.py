"""ASE calculator for mlip energy models (learned or classical). Units: eV, Angstrom.

:class:`MLIPCalculator` wraps any module with the model interface (``r_max``,
``atomic_numbers``, ``forward(batch) -> {ENERGY, NODE_ENERGY}``) and returns

* energy, free_energy  E (eV);  energies: per-atom contributions (eV, NODE_ENERGY)
* forces    F = -dE/dR (N, 3) eV/A
* stress    sigma = (1/V) dE/d(strain) = -W/V (W the virial), Voigt 6 (xx yy zz yz xz
            xy), eV/A^3, ASE sign (positive under tension, pressure P = -tr(sigma)/3);
            only for periodic systems with a 3D cell
* :meth:`MLIPCalculator.get_hessian`: H = d2E/dR dR (3N, 3N) eV/A^2, exact (autograd);
  with ``indices`` (or ``FixAtoms``) only the rows of the selected atoms, (3k, 3N), at a
  cost proportional to k
* :meth:`MLIPCalculator.get_hessian_products`: H v for K displacement vectors (K, N, 3)
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
from mlip.data.selection import coordinates, selected_atoms
from mlip.derivatives import auto_hessian_chunk, compile_model, compute, split_hessian
from mlip.errors import CheckpointError, check_known_elements
from mlip.fields import resolve_device

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
    :func:`mlip.model.load_model`. ``device``: torch device (``auto``: cuda if torch sees
    a GPU, else cpu); ``dtype``: "float64"
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
        self.device = resolve_device(device)
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

    @property
    def interaction_range(self) -> float:
        """Receptive field, Angstrom: num_layers x r_max for a message-passing model
        (``model.config.num_layers``), r_max for a model without layers. An atom's energy
        depends on the atoms within this distance (force constants reach up to twice it)."""
        from mlip.model import interaction_layers  # lazy: the model module is optional here

        return float(interaction_layers(self.model)) * self.cutoff

    def calculate(
        self,
        atoms=None,  # noqa: ANN001 (ase.Atoms)
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Energy, per-atom energies, forces and (periodic) stress; Hessian if asked."""
        self._evaluate(atoms, list(properties or ["energy"]), system_changes)

    def _evaluate(
        self,
        atoms,  # noqa: ANN001 (ase.Atoms)
        properties: list[str],
        system_changes: list[str],
        rows: np.ndarray | None = None,
        vectors: np.ndarray | None = None,
    ) -> dict[str, torch.Tensor]:
        """One model evaluation: the ASE results, plus Hessian rows of the atoms ``rows``
        or products with ``vectors`` (K, N, 3) if given (returned, not cached here)."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        self._check_elements(atoms.numbers)
        periodic = bool(atoms.pbc.any()) and atoms.cell.rank == 3
        want_hessian = "hessian" in properties
        second = want_hessian or rows is not None or vectors is not None
        batch = atoms_to_batch(atoms, self.cutoff, dtype=self.dtype, device=self.device)
        model = self.model if second else self._compiled
        extra = {}
        if rows is not None:
            extra["hessian_atoms"] = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        if vectors is not None:
            extra["hessian_probes"] = torch.as_tensor(vectors, dtype=self.dtype, device=self.device)
            extra["hessian_chunk"] = auto_hessian_chunk(batch[keys.EDGE_INDEX].shape[1])
        out = compute(
            model,
            batch,
            forces=True,
            stress=periodic,
            hessian=want_hessian,
            members=self.committee,
            **extra,
        )

        energy = float(_numpy(out[keys.ENERGY])[0])
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        if keys.NODE_ENERGY in out:
            self.results["energies"] = _numpy(out[keys.NODE_ENERGY]).reshape(len(atoms))
        self.results["forces"] = _numpy(out[keys.FORCES]).reshape(len(atoms), 3)
        if periodic:
            self.results["stress"] = matrix_to_voigt(_numpy(out[keys.STRESS])[0])
        if keys.MEMBER_FORCES in out:
            spread = committee_spread(
                out[keys.MEMBER_ENERGY], out[keys.MEMBER_FORCES], batch[keys.BATCH], 1
            )
            self.results["energy_std"] = float(_numpy(spread["energy_std"])[0])
            self.results["forces_std"] = _numpy(spread["forces_std"]).reshape(len(atoms))
        if want_hessian:
            (block,) = split_hessian(out[keys.HESSIAN], batch[keys.NUM_ATOMS])
            self.results["hessian"] = _numpy(block)
        return out

    def get_hessian(self, atoms=None, indices=None) -> np.ndarray:  # noqa: ANN001 (ase.Atoms, ints)
        """Exact Hessian d2E/dR dR, eV/A^2, atom-major (x0, y0, z0, x1, ...).

        Rows of the selected atoms, (3k, 3N): ``indices`` as given (in that order,
        constraints notwithstanding), or else every atom no ``FixAtoms`` holds, the rule
        of ASE's ``Vibrations`` (:func:`mlip.data.selection.selected_atoms`). Without
        either, the full (3N, 3N) Hessian. Rows cost 3k Hessian-vector products, so k
        atoms of N cost about k/N of the full Hessian. Cached like the other properties
        until the atoms change (a full Hessian serves any rows).
        """
        atoms = self._atoms_or_attached(atoms, "get_hessian")
        chosen = selected_atoms(atoms, indices)
        system_changes = self.check_state(atoms)
        if system_changes:
            self.reset()
        everything = len(chosen) == len(atoms) and (chosen == np.arange(len(atoms))).all()
        if "hessian" not in self.results and everything:
            self._evaluate(atoms, ["energy", "forces", "hessian"], system_changes or all_changes)
        if "hessian" in self.results:
            return self.results["hessian"][coordinates(chosen)].copy()
        cache = self.results.setdefault("hessian_rows", {})
        key = tuple(chosen.tolist())
        if key not in cache:
            out = self._evaluate(
                atoms, ["energy", "forces"], system_changes or all_changes, rows=chosen
            )
            cache = self.results.setdefault("hessian_rows", {})
            cache[key] = _numpy(out[keys.HESSIAN_ROWS])
        return cache[key].copy()

    def get_hessian_products(self, atoms=None, vectors=None) -> np.ndarray:  # noqa: ANN001
        """H v for displacement vectors ``vectors`` (K, N, 3) (A): (K, N, 3), eV/A.

        The exact linear response of the forces to a displacement v is -H v (no finite
        difference); K products cost K Hessian-vector products (one model evaluation,
        vectorised in chunks). Not cached.
        """
        atoms = self._atoms_or_attached(atoms, "get_hessian_products")
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 3 or vectors.shape[1:] != (len(atoms), 3):
            raise ValueError(f"vectors must have shape (K, {len(atoms)}, 3), got {vectors.shape}")
        system_changes = self.check_state(atoms)
        if system_changes:
            self.reset()
        if len(vectors) == 0:
            return np.zeros((0, len(atoms), 3))
        out = self._evaluate(
            atoms, ["energy", "forces"], system_changes or all_changes, vectors=vectors
        )
        return _numpy(out[keys.HESSIAN_PROBED]).reshape(len(vectors), len(atoms), 3)

    def _atoms_or_attached(self, atoms, name: str):  # noqa: ANN001, ANN202 (ase.Atoms)
        if atoms is None:
            atoms = self.atoms
            if atoms is None:
                raise ValueError(f"{name} needs atoms (none given and none attached)")
        return atoms

    def _check_elements(self, numbers: np.ndarray) -> None:
        """UnknownElementError (:func:`mlip.errors.check_known_elements`) for a new element."""
        check_known_elements(numbers, self.known_numbers)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()
