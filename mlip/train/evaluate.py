"""Error table and parity plots of a model on labelled conformers.

Per split: MAE and RMSE of the energy (meV/atom and meV), force components (meV/A),
elements of the full Hessian (meV/A^2; exact model Hessians by
``derivatives.compute(..., hessian=True)`` on the conformers that carry a reference
Hessian), stress components (meV/A^3, all and per Voigt component) and the pressure
(GPa, with its mean bias and the relative error of the cells' energy-volume slope
dE/dV = -P, :mod:`mlip.train.metrics`), each over the conformers carrying the label.
A run directory is evaluated on the train/valid/test split of its ``split.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mlip import keys
from mlip.data.graph import Structure, build_batch
from mlip.data.hdf5 import H5Dataset
from mlip.derivatives import compute
from mlip.fields import device_field, dtype_field, option, resolve_device
from mlip.train.config import read_yaml
from mlip.train.metrics import QUANTITIES, ErrorStats, accumulate_errors, format_table
from mlip.train.split import SPLITS, check_split, load_split

PARITY = ("energy_per_atom", "forces", "hessian", "stress")


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation (``mlip eval``): a model file or run directory, the data (none: a
    run directory's own data and split), the outputs. Each field's help (metadata) is
    its ``mlip eval`` option."""

    model: str = option("", "model file (model.pt) or run directory")
    data: tuple[str, ...] = option(
        (), "mlip-HDF5 file(s) (none: the run directory's data and split)"
    )
    groups: tuple[str, ...] | None = option(None, "group(s) (none: all)", flag="--group")
    json: str | None = option(None, "write the metrics as JSON", metavar="OUT.json")
    plot: str | None = option(None, "write parity plots (PNG) into this folder", metavar="DIR")
    batch_size: int = option(16, "conformers per batch")
    hessian: bool = option(True, "errors of the full Hessians (where labelled)")
    device: str = device_field()
    dtype: str = dtype_field("float64")

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(self.data))
        if self.groups is not None:
            object.__setattr__(self, "groups", tuple(self.groups))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class EvalResult:
    """Metrics (meV units, see :mod:`mlip.train.metrics`) and parity data (eV units)."""

    metrics: dict[str, float]
    parity: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def evaluate(
    model: torch.nn.Module,
    structures: Iterable[Structure],
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    hessian: bool = True,
) -> EvalResult:
    """Errors of ``model`` on ``structures``; ``hessian=False`` skips the full Hessians."""
    stats = ErrorStats()
    parity: dict[str, tuple[list, list]] = {name: ([], []) for name in PARITY}
    count = 0
    chunk: list[Structure] = []
    for structure in structures:
        chunk.append(structure)
        if len(chunk) == batch_size:
            _evaluate_chunk(model, chunk, stats, parity, device, dtype, hessian)
            count += len(chunk)
            chunk = []
    if chunk:
        _evaluate_chunk(model, chunk, stats, parity, device, dtype, hessian)
        count += len(chunk)
    metrics = {"num_structures": float(count), **stats.summary()}
    arrays = {
        name: (np.concatenate(ref), np.concatenate(pred))
        for name, (ref, pred) in parity.items()
        if ref
    }
    return EvalResult(metrics, arrays)


def _evaluate_chunk(model, chunk, stats, parity, device, dtype, hessian) -> None:  # noqa: ANN001
    r_max = float(model.r_max)
    batch = build_batch(chunk, r_max, dtype, device)
    stress = bool(batch[keys.HAS_STRESS].any())
    # not under torch.no_grad: derivatives.compute(stress=True) needs grad mode on
    pred = compute(model, batch, forces=True, stress=stress)
    accumulate_errors(stats, pred, batch, None)

    def keep(name: str, ref: torch.Tensor, out: torch.Tensor) -> None:
        parity[name][0].append(ref.detach().cpu().numpy().reshape(-1))
        parity[name][1].append(out.detach().cpu().numpy().reshape(-1))

    n = batch[keys.NUM_ATOMS]
    keep("energy_per_atom", batch[keys.ENERGY] / n, pred[keys.ENERGY] / n)
    atoms = batch[keys.HAS_FORCES][batch[keys.BATCH]]
    if atoms.any():
        keep("forces", batch[keys.FORCES][atoms], pred[keys.FORCES][atoms])
    if stress:
        mask = batch[keys.HAS_STRESS]
        keep("stress", batch[keys.STRESS][mask], pred[keys.STRESS][mask])
    with_hessian = [s for s in chunk if s.hessian is not None]
    if hessian and with_hessian:
        hb = build_batch(with_hessian, r_max, dtype, device)
        hp = compute(model, hb, forces=True, hessian=True)
        stats.add("hessian", hp[keys.HESSIAN] - hb[keys.HESSIAN])
        keep("hessian", hb[keys.HESSIAN], hp[keys.HESSIAN])


# -- run directories ----------------------------------------------------------------------


def evaluate_splits(
    model: torch.nn.Module,
    dataset: H5Dataset,
    split: dict[str, np.ndarray] | None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    hessian: bool = True,
) -> dict[str, EvalResult]:
    """Evaluate each non-empty split (or the whole dataset as ``"all"`` without a split)."""
    parts = split if split is not None else {"all": np.arange(len(dataset))}
    out = {}
    for name, indices in parts.items():
        if len(indices) == 0:
            continue
        out[name] = evaluate(model, dataset.iterate(indices), batch_size, device, dtype, hessian)
    return out


def run_dataset(
    run_dir: str, data: list[str] | None = None, groups: list[str] | None = None
) -> tuple[H5Dataset, dict[str, np.ndarray] | None]:
    """The dataset and split of a run directory (``config.yaml``, ``split.json``).

    With other ``data``/``groups`` than the run's, the whole given data is evaluated.
    """
    config = read_yaml(os.path.join(run_dir, "config.yaml"))
    run_paths = config.get("data", {}).get("paths")
    run_groups = config.get("data", {}).get("groups")
    paths = list(data) if data else run_paths
    if groups is None:
        groups = None if data else run_groups  # other files: all their groups
    same_files = [os.path.abspath(p) for p in paths] == [os.path.abspath(p) for p in run_paths]
    if not (same_files and groups == run_groups):
        return H5Dataset(paths, groups), None
    dataset = H5Dataset(run_paths, run_groups)
    path = os.path.join(run_dir, "split.json")
    split, _ = load_split(path)
    check_split(split, len(dataset), path)
    return dataset, {k: split[k] for k in SPLITS}


def summary(results: dict[str, EvalResult]) -> dict[str, dict[str, float]]:
    return {name: result.metrics for name, result in results.items()}


def write_json(
    results: dict[str, EvalResult],
    path: str,
    meta: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
):
    """The metrics as JSON (``extra``: more top-level entries, e.g. a calibration)."""
    from mlip.fileio import atomic_write_text

    units = {name: unit for name, (unit, _) in QUANTITIES.items()}
    payload = {"meta": meta or {}, "units": units, "splits": summary(results), **(extra or {})}
    atomic_write_text(path, json.dumps(payload, indent=1))


def parity_plots(results: dict[str, EvalResult], directory: str) -> list[str]:
    """One PNG per quantity (reference vs prediction, one colour per split); returns paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    titles = {
        "energy_per_atom": ("energy per atom (shifted to zero mean)", "eV/atom"),
        "forces": ("force components", "eV/A"),
        "hessian": ("Hessian elements", "eV/A^2"),
        "stress": ("stress components", "eV/A^3"),
    }
    written = []
    for name, (title, unit) in titles.items():
        present = {s: r.parity[name] for s, r in results.items() if name in r.parity}
        if not present:
            continue
        shift = 0.0
        if name == "energy_per_atom":
            shift = float(np.mean(np.concatenate([ref for ref, _ in present.values()])))
        fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
        lo, hi = np.inf, -np.inf
        for split, (ref, pred) in present.items():
            mae = results[split].metrics.get(f"{name}_mae", float("nan"))
            ax.scatter(
                ref - shift,
                pred - shift,
                s=4,
                alpha=0.5,
                label=f"{split}: MAE {mae:.3g} {QUANTITIES[name][0]}",
            )
            lo = min(lo, float(np.min(ref - shift)), float(np.min(pred - shift)))
            hi = max(hi, float(np.max(ref - shift)), float(np.max(pred - shift)))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"reference [{unit}]")
        ax.set_ylabel(f"model [{unit}]")
        ax.set_title(title)
        ax.legend(fontsize=7, markerscale=3)
        fig.tight_layout()
        path = os.path.join(directory, f"parity_{name}.png")
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def report(results: dict[str, EvalResult]) -> str:
    """The error table of :func:`mlip.train.metrics.format_table`."""
    return format_table(summary(results))


def run_evaluation(config: EvalConfig, log: Callable[[str], None] = print) -> list[str]:
    """``mlip eval``: the error table of ``config.model`` (a committee's calibration too)
    sent to ``log``; writes the JSON and the parity plots asked for and returns their
    paths. A run directory without data is evaluated on its own data and split."""
    from mlip.committee import is_committee
    from mlip.model import load_model
    from mlip.train.calibration import committee_calibration, format_calibration

    device, dtype = resolve_device(config.device), getattr(torch, config.dtype)
    groups = None if config.groups is None else list(config.groups)
    is_run = os.path.isdir(config.model)
    model_path = os.path.join(config.model, "model.pt") if is_run else config.model
    model = load_model(model_path, device, dtype)
    if is_run:
        dataset, split = run_dataset(config.model, list(config.data) or None, groups)
    elif config.data:
        dataset, split = H5Dataset(list(config.data), groups), None
    else:
        raise ValueError("give DATA (mlip-HDF5 file) to evaluate a model file on")
    results = evaluate_splits(
        model, dataset, split, config.batch_size, device, dtype, config.hessian
    )
    log(report(results))
    extra = None
    if is_committee(model):  # calibration of the spread against the error of the mean
        parts = split if split is not None else {"all": np.arange(len(dataset))}
        calibration = {
            name: committee_calibration(
                model, dataset.iterate(idx), config.batch_size, device, dtype
            )
            for name, idx in parts.items()
            if len(idx)
        }
        log(format_calibration(calibration))
        extra = {"calibration": calibration}
    written = []
    if config.json:
        meta = {"model": model_path, "data": dataset.paths,
                "groups": [g.name for g in dataset.groups]}  # fmt: skip
        write_json(results, config.json, meta, extra=extra)
    if config.plot:
        written += parity_plots(results, config.plot)
    return written
