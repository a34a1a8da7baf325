"""How well a committee's spread predicts its error: calibration on labelled conformers.

For every conformer with reference forces, with F the committee mean, F_k the members'
forces and sigma_a the per-atom force std (:func:`mlip.committee.committee_spread`):

    predicted  sigma_rms = sqrt(mean_a sigma_a^2),   sigma_max = max_a sigma_a     (eV/A)
    true       err_rms   = sqrt(mean_a |F_a - F_ref,a|^2),   err_max = max_a |...|  (eV/A)

and the Spearman rank correlation between predicted and true, over the conformers
(``spearman_rms``, ``spearman_max``; 1: the spread orders the conformers exactly as their
errors do). ``rms_error_over_std`` (RMS of err_rms over RMS of sigma_rms) tells whether
the spread is too small (> 1) or too large (< 1) as an error bar. The error of the mean
is set against the members' own errors: force MAE (meV/A, over components) and energy
MAE (meV/atom) of the committee mean and of each member.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from mlip import keys
from mlip.committee import committee_spread
from mlip.data.graph import Structure, build_batch
from mlip.derivatives import compute


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of ``values``, ties sharing their mean rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    for value in np.unique(values[np.r_[np.diff(values[order]) == 0, False]]):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of x and y (NaN for fewer than 3 points or no spread)."""
    if len(x) < 3:
        return float("nan")
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def committee_calibration(
    model: torch.nn.Module,
    structures: Iterable[Structure],
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> dict[str, float | list[float]]:
    """Calibration metrics of a committee on the conformers with forces (module docstring)."""
    rows: dict[str, list] = {k: [] for k in ("sigma_rms", "sigma_max", "err_rms", "err_max")}
    force_abs = None  # sum |dF| per member (K,) and of the mean
    energy_abs = None
    mean_force_abs = mean_energy_abs = 0.0
    components = conformers = 0
    chunk: list[Structure] = []

    def flush() -> None:
        nonlocal force_abs, energy_abs, mean_force_abs, mean_energy_abs, components, conformers
        batch = build_batch(chunk, float(model.r_max), dtype, device)
        out = compute(model, batch, forces=True, members=True)
        n_systems = len(chunk)
        spread = committee_spread(
            out[keys.MEMBER_ENERGY], out[keys.MEMBER_FORCES], batch[keys.BATCH], n_systems
        )
        sigma = spread["forces_std"].detach().cpu().double().numpy()
        error = (out[keys.FORCES] - batch[keys.FORCES]).detach().cpu().double().numpy()
        members = out[keys.MEMBER_FORCES].detach().cpu().double().numpy()
        reference = batch[keys.FORCES].detach().cpu().double().numpy()
        system = batch[keys.BATCH].cpu().numpy()
        n_atoms = batch[keys.NUM_ATOMS].cpu().numpy()
        e_members = out[keys.MEMBER_ENERGY].detach().cpu().double().numpy()
        e_ref = batch[keys.ENERGY].detach().cpu().double().numpy()
        e_mean = out[keys.ENERGY].detach().cpu().double().numpy()
        if force_abs is None:
            force_abs, energy_abs = np.zeros(len(members)), np.zeros(len(members))
        force_abs += np.abs(members - reference[None]).sum(axis=(1, 2))
        energy_abs += np.abs((e_members - e_ref[None]) / n_atoms[None]).sum(1)
        mean_force_abs += float(np.abs(error).sum())
        mean_energy_abs += float(np.abs((e_mean - e_ref) / n_atoms).sum())
        components += error.size
        conformers += n_systems
        norm = np.linalg.norm(error, axis=-1)
        for s in range(n_systems):
            mine = system == s
            rows["sigma_rms"].append(float(np.sqrt(np.mean(sigma[mine] ** 2))))
            rows["sigma_max"].append(float(sigma[mine].max()))
            rows["err_rms"].append(float(np.sqrt(np.mean(norm[mine] ** 2))))
            rows["err_max"].append(float(norm[mine].max()))

    for structure in structures:
        if structure.forces is None:
            continue
        chunk.append(structure)
        if len(chunk) == batch_size:
            flush()
            chunk = []
    if chunk:
        flush()
    if conformers == 0:
        return {"num_structures": 0.0}
    values = {k: np.asarray(v) for k, v in rows.items()}
    sigma_rms = float(np.sqrt(np.mean(values["sigma_rms"] ** 2)))
    return {
        "num_structures": float(conformers),
        "spearman_rms": spearman(values["sigma_rms"], values["err_rms"]),
        "spearman_max": spearman(values["sigma_max"], values["err_max"]),
        "mean_force_std": 1000.0 * float(values["sigma_rms"].mean()),
        "rms_error_over_std": float(np.sqrt(np.mean(values["err_rms"] ** 2))) / sigma_rms
        if sigma_rms > 0
        else float("inf"),
        "forces_mae_mean": 1000.0 * mean_force_abs / components,
        "forces_mae_members": [1000.0 * float(v) / components for v in force_abs],
        "energy_per_atom_mae_mean": 1000.0 * mean_energy_abs / conformers,
        "energy_per_atom_mae_members": [1000.0 * float(v) / conformers for v in energy_abs],
    }


def format_calibration(results: dict[str, dict]) -> str:
    """Lines per split: Spearman(std, error), error of the mean against the members'."""
    lines = ["committee calibration (force std vs force error of the mean, per conformer):"]
    for split, m in results.items():
        if not m.get("num_structures"):
            continue
        members = ", ".join(f"{v:.3g}" for v in m["forces_mae_members"])
        lines.append(
            f"  {split} ({int(m['num_structures'])}): Spearman rms {m['spearman_rms']:.3f}, "
            f"max {m['spearman_max']:.3f}; mean std {m['mean_force_std']:.3g} meV/A, "
            f"RMS error / RMS std {m['rms_error_over_std']:.2f}; F MAE mean "
            f"{m['forces_mae_mean']:.3g} meV/A (members {members}); E MAE mean "
            f"{m['energy_per_atom_mae_mean']:.3g} meV/atom (members "
            + ", ".join(f"{v:.3g}" for v in m["energy_per_atom_mae_members"])
            + ")"
        )
    return "\n".join(lines)
