"""Shared test helpers: structures, small models and the equivariance check."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import bulk

from mlip import derivatives, keys
from mlip.data.graph import Structure, build_batch
from mlip.model import MLIPModel, ModelConfig

ETHANOL_Z = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])
ETHANOL_R = np.array(
    [
        [-0.9357, 0.0436, -0.0201],
        [0.4781, -0.5243, 0.0286],
        [1.3641, 0.5593, -0.2005],
        [-1.6251, -0.7931, 0.1021],
        [-1.1103, 0.7802, 0.7687],
        [-1.1342, 0.5417, -0.9796],
        [0.6391, -1.2812, -0.7602],
        [0.6778, -1.0161, 0.9912],
        [1.2302, 1.2137, 0.4769],
    ]
)


def ethanol(seed: int = 0, noise: float = 0.05) -> Structure:
    rng = np.random.default_rng(seed)
    return Structure(ETHANOL_Z.copy(), ETHANOL_R + noise * rng.standard_normal(ETHANOL_R.shape))


def copper(size: int = 1, cubic: bool = False, seed: int = 0, noise: float = 0.05) -> Structure:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=cubic).repeat(size)
    rng = np.random.default_rng(seed)
    atoms.positions += noise * rng.standard_normal(atoms.positions.shape)
    return Structure.from_atoms(atoms)


def small_model(atomic_numbers=(1, 6, 8, 29), seed: int = 0, **overrides) -> MLIPModel:
    """An untrained float64 model with non-trivial weights and statistics."""
    torch.manual_seed(seed)
    config = ModelConfig(atomic_numbers=list(atomic_numbers), **{"num_channels": 8, **overrides})
    model = MLIPModel(config).double()
    model.set_atomic_energies({z: -float(z) for z in atomic_numbers})
    model.set_scale(0.7)
    model.set_avg_num_neighbors(8.0)
    return model


def evaluate(model, structures, **kwargs) -> dict[str, torch.Tensor]:
    batch = build_batch(structures, model.r_max, labels=False)
    return derivatives.compute(model, batch, **kwargs)


def random_orthogonal(seed: int, reflect: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] *= -1
    return q


def transformed(structure: Structure, rotation: np.ndarray, shift: np.ndarray) -> Structure:
    """The structure with positions R -> R Q^T + t and cell rows rotated likewise."""
    return Structure(
        structure.atomic_numbers,
        structure.positions @ rotation.T + shift,
        None if structure.cell is None else structure.cell @ rotation.T,
        structure.pbc,
    )


def assert_equivariant(model, structure: Structure, seed: int = 0, tol: float = 1e-10) -> None:
    """E invariant, F equivariant (F' = F Q^T), stress S' = Q S Q^T, under O(3) x translations."""
    periodic = structure.pbc is not None and bool(np.any(structure.pbc))
    ref = evaluate(model, [structure], stress=periodic)
    for k, reflect in enumerate((False, True)):
        q = random_orthogonal(seed + k, reflect)
        shift = np.random.default_rng(seed + 10 + k).standard_normal(3) * 3.0
        out = evaluate(model, [transformed(structure, q, shift)], stress=periodic)
        qt = torch.as_tensor(q)
        e_ref, e = ref[keys.ENERGY], out[keys.ENERGY]
        assert torch.allclose(e, e_ref, rtol=tol, atol=0), (e - e_ref).abs().max()
        f_expected = ref[keys.FORCES] @ qt.T
        scale = ref[keys.FORCES].abs().max()
        assert (out[keys.FORCES] - f_expected).abs().max() <= tol * scale
        if periodic:
            s_expected = qt @ ref[keys.STRESS][0] @ qt.T
            s_scale = ref[keys.STRESS].abs().max()
            assert (out[keys.STRESS][0] - s_expected).abs().max() <= tol * s_scale
