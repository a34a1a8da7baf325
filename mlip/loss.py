"""Sobolev loss: energies, forces, stress and Hessians (by random Hessian-vector probes).

For a batch of systems s with N_s atoms the loss is

    L = w_E * mean_s  rho((E_s - E_s^ref) / N_s)                    (eV/atom)^2
      + w_F * mean_{a,x} rho(F_ax - F_ax^ref)                        (eV/A)^2
      + w_H * mean_{k,a,x} rho((H_s v_sk)_ax - (H_s^ref v_sk)_ax)     (eV/A^2)^2
      + w_S * mean_{s,x,y} rho(sigma_sxy - sigma_sxy^ref)            (eV/A^3)^2

with rho(x) = x^2 (or 2 * Huber_delta(x): x^2 for |x| <= delta, 2 delta |x| - delta^2
beyond). Every mean runs only over the systems that carry that label (HAS_FORCES,
HAS_HESSIAN, HAS_STRESS masks), so a batch may mix labelled and unlabelled systems;
the force mean is over Cartesian components (the MACE/NequIP convention).

The Hessian term never forms a model Hessian. Each step draws K probe vectors v_sk per
system: random unit vectors of R^{3 N_s} ("gaussian") or random unit coordinate
vectors ("onehot", i.e. random Hessian rows). The model's H_s v_sk is one extra
reverse pass through the forces (double backprop), the reference H_s^ref v_sk a
matrix-vector product with the stored block. Since E[v v^T] = I / (3 N_s) for either
kind, the Hessian term is an unbiased estimate of mean_{ij} rho-error of the Hessian
elements (exactly so for squared errors), i.e. of ||H - H^ref||_F^2 / (3 N_s)^2.

Random probes weigh the Hessian's error in eV/A^2, so the stiff stretches dominate and
the soft torsions, whose frequencies matter as much, hardly count. Two probe kinds work
along the normal modes of the reference instead (:func:`mlip.modes.normal_modes`:
mass-weighted, translations and rotations projected out; q_k orthonormal, x_k = M^-1/2
q_k the Cartesian mode, lambda_k = omega_k^2 its eigenvalue), K random modes per system
and step:

    "modes"        v_k = w_k / max(|H^ref w_k|, floor),   w_k = x_k / |x_k|
    "frequencies"  v_k = x_k |x_k| / max(omega_k, omega_floor)

With "modes", |H v - H^ref v| is the error of the response along mode k relative to
its reference (floor = 0.5 eV/A^2 keeps near-zero modes bounded): soft modes weigh more
than stiff ones. With "frequencies", the component of H v - H^ref v along w_k is
(x_k^T dH x_k) / omega_k = d(lambda_k) / omega_k = 2 d(omega_k) to first order: the
term weighs the error of every frequency in absolute units, as a frequency MAE does
(omega_floor = 100 cm^-1 for the near-zero and imaginary modes of non-equilibrium
geometries). Systems without a Hessian get gaussian probes (unused by the loss).

The loss is built from per-term sums and counts (:meth:`SobolevLoss.terms`), so that
data-parallel ranks can normalise by the global counts and reproduce the loss of the
whole batch exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mlip import keys
from mlip.derivatives import compute
from mlip.modes import CM1_PER_SQRT_EV_A2_AMU, normal_modes

TERMS = ("energy", "forces", "hessian", "stress")
PROBE_KINDS = ("gaussian", "onehot", "modes", "frequencies")
MODE_KINDS = ("modes", "frequencies")  # probes along the reference normal modes


def check_loss_options(
    weights: dict[str, float],
    num_probes: int = 1,
    probe_kind: str = "gaussian",
    huber_delta: float | None = None,
    prefix: str = "",
) -> None:
    """The one check of the loss settings; ValueError naming the first bad one.

    ``weights`` maps each of :data:`TERMS` to its weight; ``prefix`` is prepended to
    the names in the message (``"loss."`` for the training config).
    """
    for name, weight in weights.items():
        if name not in TERMS:
            raise ValueError(f"unknown loss term {name!r}; terms are {TERMS}")
        if not weight >= 0:
            raise ValueError(f"{prefix}{name}_weight must be >= 0, got {weight}")
    if not any(weights.values()):
        raise ValueError("all loss weights are 0: nothing to train on")
    if num_probes < 1:
        raise ValueError(f"{prefix}hessian_probes must be >= 1, got {num_probes}")
    if probe_kind not in PROBE_KINDS:
        raise ValueError(
            f"{prefix}probe_kind must be one of {list(PROBE_KINDS)}, got {probe_kind!r}"
        )
    if huber_delta is not None and huber_delta <= 0:
        raise ValueError(f"{prefix}huber_delta must be > 0, got {huber_delta}")


class ProbeSampler:
    """Seeded probe vectors for the Hessian term, resampled every step.

    Each step draws one 63-bit step seed from a ``numpy`` PCG64 generator; the probes of
    the system with dataset index ``i`` are then drawn from ``default_rng([step_seed, i])``.
    The probes of a system therefore do not depend on which rank or which batch position
    it lands on (data-parallel runs equal single-process runs), and saving the step
    generator's state suffices to resume exactly.
    """

    def __init__(self, num_probes: int = 2, kind: str = "gaussian", seed: int = 0) -> None:
        check_loss_options({"hessian": 1.0}, num_probes, kind)
        self.num_probes, self.kind = int(num_probes), kind
        self.generator = np.random.default_rng(seed)
        self._modes: dict[int, np.ndarray | None] = {}  # sample id -> (n_vib, 3N) probes

    def next_seed(self) -> int:
        """The seed of the next step (advances the generator once)."""
        return int(self.generator.integers(0, 2**63 - 1))

    def probes(
        self,
        num_atoms: Sequence[int],
        sample_ids: Sequence[int],
        step_seed: int,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        structures: Sequence | None = None,
    ) -> torch.Tensor:
        """(K, n_atoms, 3) probes (atom-major layout): unit norm per system and probe, or
        scaled normal modes (kind "modes", which needs the ``structures`` with their
        reference Hessians)."""
        if self.kind in MODE_KINDS and structures is None:
            raise ValueError(f"probe kind {self.kind!r} needs the structures (reference Hessians)")
        blocks = []
        for s, (n, sample) in enumerate(zip(num_atoms, sample_ids, strict=True)):
            rng = np.random.default_rng([int(step_seed), int(sample)])
            dof = 3 * int(n)
            modes = None
            if self.kind in MODE_KINDS and structures[s].hessian is not None:
                modes = self._mode_probes(int(sample), structures[s])
            if modes is not None:
                v = modes[rng.integers(0, len(modes), self.num_probes)]
            elif self.kind != "onehot":
                v = rng.standard_normal((self.num_probes, dof))
                v /= np.linalg.norm(v, axis=1, keepdims=True)
            else:
                v = np.zeros((self.num_probes, dof))
                v[np.arange(self.num_probes), rng.integers(0, dof, self.num_probes)] = 1.0
            blocks.append(v.reshape(self.num_probes, int(n), 3))
        return torch.as_tensor(np.concatenate(blocks, axis=1), dtype=dtype, device=device)

    def _mode_probes(self, sample: int, structure) -> np.ndarray | None:  # noqa: ANN001
        """Scaled vibrational-mode probes of one reference Hessian (cached per sample)."""
        if sample not in self._modes:
            self._modes[sample] = mode_probes(structure, self.kind)
        return self._modes[sample]


#: frequency floor (sqrt(eV/A^2/amu), 100 cm^-1) of the "frequencies" probes: near-zero
#: and imaginary modes of non-equilibrium geometries stay bounded
FREQUENCY_FLOOR = 100.0 / CM1_PER_SQRT_EV_A2_AMU


def mode_probes(structure, kind: str = "modes", floor: float = 0.5) -> np.ndarray | None:  # noqa: ANN001
    """(n_vib, 3N) probes of a Structure's reference Hessian along its normal modes:
    ``kind`` "modes" or "frequencies" of the module docstring (floor in eV/A^2 for
    "modes"). None when no vibrational mode is left."""
    from ase.data import atomic_masses

    hessian = np.asarray(structure.hessian, dtype=np.float64)
    periodic = structure.pbc is not None and bool(np.any(structure.pbc))
    found = normal_modes(
        hessian,
        atomic_masses[structure.atomic_numbers],
        structure.positions,
        periodic=periodic,
    )
    if len(found.eigenvalues) == 0:
        return None
    x = found.cartesian  # (n_vib, 3N)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if kind == "frequencies":
        omega = np.sqrt(np.abs(found.eigenvalues))[:, None]
        return x * norms / np.maximum(omega, FREQUENCY_FLOOR)
    w = x / norms
    response = np.linalg.norm(w @ hessian.T, axis=1)
    return w / np.maximum(response, floor)[:, None]


def hessian_response_rms(
    structures: Sequence, num_probes: int = 2, kind: str = "gaussian", limit: int = 200
) -> float | None:
    """RMS of the reference H v components (eV/A^2) for probes of ``kind`` over up to
    ``limit`` of the structures that carry a Hessian: the label scale of the Hessian
    term (for unit gaussian or one-hot probes it is the RMS of the Hessian elements).
    None when none carries a Hessian."""
    sampler = ProbeSampler(num_probes, kind, seed=0)
    total, count = 0.0, 0
    chosen = [s for s in structures if s.hessian is not None][:limit]
    for k, structure in enumerate(chosen):
        n = structure.num_atoms
        v = sampler.probes([n], [k], 0, structures=[structure]).numpy().reshape(num_probes, 3 * n)
        response = v @ np.asarray(structure.hessian, dtype=np.float64).T
        total += float(np.square(response).sum())
        count += response.size
    return float(np.sqrt(total / count)) if count else None


def reference_hvp(
    hessian: torch.Tensor, num_atoms: torch.Tensor, has_hessian: torch.Tensor, probes: torch.Tensor
) -> torch.Tensor:
    """H_s^ref v_sk from flattened reference blocks: (K, n_atoms, 3), zero without a Hessian."""
    out = torch.zeros_like(probes)
    sizes = (3 * num_atoms) ** 2
    blocks = torch.split(hessian, sizes.tolist())
    start = 0
    for block, n, has in zip(blocks, num_atoms.tolist(), has_hessian.tolist(), strict=True):
        if has:
            dof = 3 * n
            v = probes[:, start : start + n].reshape(-1, dof)  # (K, 3N)
            out[:, start : start + n] = (v @ block.reshape(dof, dof).T).reshape(-1, n, 3)
        start += n
    return out


def predict(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    forces: bool = True,
    stress: bool = False,
    probes: torch.Tensor | None = None,
    training: bool = True,
) -> dict[str, torch.Tensor]:
    """Energies and the derivatives the loss needs, differentiable when ``training``.

    ``forces=False`` (and no probes, no stress) evaluates the energy alone: no reverse
    pass and no graph for second derivatives. ``probes`` (K, n_atoms, 3) adds
    HESSIAN_PROBED (K, n_atoms, 3) = H_s v_sk, the K products in one vectorised reverse
    pass through the forces (:func:`mlip.derivatives.compute`; no extra forward).
    """
    if not (forces or stress or probes is not None):
        with torch.set_grad_enabled(training):
            out = dict(model(batch))
        return out if training else {k: v.detach() for k, v in out.items()}
    if probes is not None and probes.shape[0] == 1:
        # one probe: a plain vector-Jacobian product, no vmap
        out = compute(
            model, batch, forces=True, stress=stress, training=training, hessian_probes=probes[0]
        )
        out[keys.HESSIAN_PROBED] = out[keys.HESSIAN_PROBED].unsqueeze(0)
        return out
    return compute(
        model,
        batch,
        forces=forces or probes is not None,
        stress=stress,
        training=training,
        hessian_probes=probes,
    )


def _rho(residual: torch.Tensor, huber_delta: float | None) -> torch.Tensor:
    """x^2, or twice the Huber function (equal to x^2 for |x| <= delta)."""
    if huber_delta is None:
        return residual.square()
    return 2.0 * torch.nn.functional.huber_loss(
        residual, torch.zeros_like(residual), reduction="none", delta=huber_delta
    )


class SobolevLoss:
    """Weighted energy/force/Hessian/stress loss; see the module docstring for the maths."""

    def __init__(
        self,
        energy_weight: float = 1.0,
        forces_weight: float = 100.0,
        hessian_weight: float = 100.0,
        stress_weight: float = 10.0,
        huber_delta: float | None = None,
    ) -> None:
        self.weights = {
            "energy": float(energy_weight),
            "forces": float(forces_weight),
            "hessian": float(hessian_weight),
            "stress": float(stress_weight),
        }
        check_loss_options(self.weights, huber_delta=huber_delta)
        self.huber_delta = huber_delta

    def needs(self, batch: dict[str, torch.Tensor]) -> dict[str, bool]:
        """Which predictions this batch needs: forces, stress, Hessian probes."""
        hessian = self.weights["hessian"] > 0 and bool(batch[keys.HAS_HESSIAN].any())
        stress = self.weights["stress"] > 0 and bool(batch[keys.HAS_STRESS].any())
        forces = self.weights["forces"] > 0 or hessian
        return {"forces": forces, "stress": stress, "hessian": hessian}

    def counts(self, batch: dict[str, torch.Tensor], num_probes: int) -> dict[str, torch.Tensor]:
        """Number of residual components of each weighted term (known before the forward)."""
        num_atoms = batch[keys.NUM_ATOMS].to(batch[keys.POSITIONS].dtype)
        out = {}
        if self.weights["energy"] > 0 and keys.ENERGY in batch:
            out["energy"] = num_atoms.new_tensor(float(len(num_atoms)))
        if self.weights["forces"] > 0:
            out["forces"] = 3.0 * (num_atoms * batch[keys.HAS_FORCES]).sum()
        if self.weights["hessian"] > 0:
            out["hessian"] = 3.0 * num_probes * (num_atoms * batch[keys.HAS_HESSIAN]).sum()
        if self.weights["stress"] > 0:
            out["stress"] = 9.0 * batch[keys.HAS_STRESS].sum().to(num_atoms)
        return out

    def terms(
        self,
        pred: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        probes: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Sum of rho(residual) of each weighted term over the labelled systems."""
        out: dict[str, torch.Tensor] = {}
        rho = lambda r: _rho(r, self.huber_delta).sum()
        if self.weights["energy"] > 0 and keys.ENERGY in batch:
            per_atom = (pred[keys.ENERGY] - batch[keys.ENERGY]) / batch[keys.NUM_ATOMS]
            out["energy"] = rho(per_atom)
        if self.weights["forces"] > 0:
            atom_mask = batch[keys.HAS_FORCES][batch[keys.BATCH]]
            out["forces"] = rho((pred[keys.FORCES] - batch[keys.FORCES])[atom_mask])
        if self.weights["hessian"] > 0:
            out["hessian"] = pred[keys.ENERGY].new_zeros(())
            if keys.HESSIAN_PROBED in pred and probes is not None:
                ref = reference_hvp(
                    batch[keys.HESSIAN], batch[keys.NUM_ATOMS], batch[keys.HAS_HESSIAN], probes
                )
                atom_mask = batch[keys.HAS_HESSIAN][batch[keys.BATCH]]
                out["hessian"] = rho((pred[keys.HESSIAN_PROBED] - ref)[:, atom_mask])
        if self.weights["stress"] > 0:
            out["stress"] = pred[keys.ENERGY].new_zeros(())
            if keys.STRESS in pred:
                mask = batch[keys.HAS_STRESS]
                out["stress"] = rho((pred[keys.STRESS] - batch[keys.STRESS])[mask])
        return out

    def combine(
        self, sums: dict[str, torch.Tensor], counts: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """sum_t w_t * sums_t / counts_t over the terms with a non-zero count."""
        total = next(iter(sums.values())).new_zeros(())
        for name, value in sums.items():
            count = counts[name]
            if float(count) > 0:
                total = total + self.weights[name] * value / count
        return total

    def __call__(
        self,
        pred: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        probes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of one (whole) batch."""
        num_probes = 0 if probes is None else probes.shape[0]
        return self.combine(self.terms(pred, batch, probes), self.counts(batch, num_probes))
