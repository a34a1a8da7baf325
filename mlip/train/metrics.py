"""Error statistics (MAE, RMSE, mean bias), the per-epoch CSV log, TensorBoard, the table.

Errors are accumulated as sums (|r|, r^2, count, r) so that they can be summed over
batches and over data-parallel ranks before the means are taken. Reported units are
meV-based: energy meV/atom and meV, forces meV/A, Hessians meV/A^2 (elements of the full
Hessian, or components of H v for unit probe vectors v), stress meV/A^3 (all nine
components, and each Voigt component xx yy zz yz xz xy), and the pressure
P = -trace(sigma)/3 in GPa, whose mean bias (prediction - reference) shows an error in
the equation of state that a stress MAE over all components hides. The slope of the
predicted against the reference pressure over the cells (least squares, in %: 100 (slope
- 1)) is the relative error of the cells' energy-volume slope dE/dV = -P: a model whose
E(V) is too soft (bulk modulus too low) has it negative even when the bias is zero.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from typing import Any

import torch

from mlip import keys
from mlip.loss import reference_hvp

EV_PER_A3_IN_GPA = 160.21766208  # 1 eV/A^3 in GPa
VOIGT = (("xx", 0, 0), ("yy", 1, 1), ("zz", 2, 2), ("yz", 1, 2), ("xz", 0, 2), ("xy", 0, 1))

#: quantity -> (unit of the reported value, factor from the internal eV-based unit)
QUANTITIES: dict[str, tuple[str, float]] = {
    "energy_per_atom": ("meV/atom", 1000.0),
    "energy": ("meV", 1000.0),
    "forces": ("meV/A", 1000.0),
    "hessian": ("meV/A^2", 1000.0),
    "hvp": ("meV/A^2", 1000.0),
    "stress": ("meV/A^3", 1000.0),
    "pressure": ("GPa", EV_PER_A3_IN_GPA),
    **{f"stress_{name}": ("meV/A^3", 1000.0) for name, _, _ in VOIGT},
}
LABELS = {
    "energy_per_atom": "E",
    "energy": "E",
    "forces": "F",
    "hessian": "H",
    "hvp": "Hv",
    "stress": "S",
    "pressure": "P",
    **{f"stress_{name}": f"S{name}" for name, _, _ in VOIGT},
}
#: quantities of the main table (the stress components are listed on their own line)
TABLE = ("energy_per_atom", "energy", "forces", "hessian", "hvp", "stress", "pressure")


class ErrorStats:
    """Running sums of |r|, r^2, counts and r per quantity (float64)."""

    def __init__(self) -> None:
        self.sums = torch.zeros(len(QUANTITIES), 4, dtype=torch.float64)
        self._row = {name: k for k, name in enumerate(QUANTITIES)}
        # pressures of the cells, reference r and prediction p: n, sum r, sum p, sum r^2,
        # sum r p (eV/A^3), for the slope of p against r
        self.pressure_sums = torch.zeros(5, dtype=torch.float64)

    def add(self, name: str, residual: torch.Tensor) -> None:
        """Add the residuals (any shape, eV-based units) of quantity ``name``."""
        r = residual.detach().reshape(-1).to("cpu", torch.float64)
        if r.numel() == 0:
            return
        row = self.sums[self._row[name]]
        row += torch.stack(
            [r.abs().sum(), r.square().sum(), r.new_tensor(float(r.numel())), r.sum()]
        )

    def add_stress(self, predicted: torch.Tensor, reference: torch.Tensor) -> None:
        """Stress residuals of (n, 3, 3) tensors (eV/A^3): all components, each Voigt
        component and the pressure -trace/3."""
        residual = predicted - reference
        self.add("stress", residual)
        for name, i, j in VOIGT:
            self.add(f"stress_{name}", residual[:, i, j])
        self.add("pressure", -torch.diagonal(residual, dim1=1, dim2=2).sum(-1) / 3.0)
        r, p = (-torch.diagonal(t.detach(), dim1=1, dim2=2).sum(-1).to("cpu", torch.float64) / 3
                for t in (reference, predicted))  # fmt: skip
        self.pressure_sums += torch.stack(
            [r.new_tensor(float(r.numel())), r.sum(), p.sum(), (r * r).sum(), (r * p).sum()]
        )

    def reduce(self, context: Any) -> ErrorStats:
        """Sum over data-parallel ranks (``context``: a DistContext); returns self."""
        if getattr(context, "enabled", False):
            buffer = torch.cat([self.sums.reshape(-1), self.pressure_sums]).to(context.device)
            context.all_reduce(buffer)
            buffer = buffer.cpu()
            self.sums = buffer[: self.sums.numel()].reshape(self.sums.shape)
            self.pressure_sums = buffer[self.sums.numel() :]
        return self

    def summary(self) -> dict[str, float]:
        """``{name_mae, name_rmse, name_bias, name_count}`` in reported units, for measured
        quantities (bias: the mean of prediction - reference)."""
        out: dict[str, float] = {}
        for name, (_, factor) in QUANTITIES.items():
            abs_sum, sq_sum, count, total = self.sums[self._row[name]].tolist()
            if count > 0:
                out[f"{name}_mae"] = factor * abs_sum / count
                out[f"{name}_rmse"] = factor * math.sqrt(sq_sum / count)
                out[f"{name}_bias"] = factor * total / count
                out[f"{name}_count"] = count
        slope = self.pressure_slope()
        if slope is not None:
            out["pressure_slope_error"] = 100.0 * (slope - 1.0)
        return out

    def pressure_slope(self) -> float | None:
        """Least-squares slope of the predicted against the reference pressure over the
        cells (None for fewer than three cells or reference pressures all equal)."""
        n, r, p, rr, rp = self.pressure_sums.tolist()
        spread = rr - r * r / n if n >= 3 else 0.0
        if spread <= 1e-12 * max(rr, 1e-30):
            return None
        return (rp - r * p / n) / spread


class MetricsLog:
    """One CSV row per epoch (``metrics.csv``) and, when installed, TensorBoard scalars.

    On resume, rows of epochs after the checkpoint's are dropped first, so the log
    matches the run that continues.
    """

    def __init__(self, path: str, keep_until_epoch: int | None = None, tensorboard: bool = True):
        self.path = path
        self.columns: list[str] | None = None
        if keep_until_epoch is not None and os.path.exists(path):
            self._truncate(keep_until_epoch)
        elif os.path.exists(path):
            os.remove(path)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(os.path.join(os.path.dirname(path), "tensorboard"))

    def _truncate(self, epoch: int) -> None:
        with open(self.path, newline="") as handle:
            reader = csv.DictReader(handle)
            self.columns = reader.fieldnames
            rows = [r for r in reader if r.get("epoch") and float(r["epoch"]) <= epoch + 1e-9]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns or [])
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self.columns).writeheader()
        extra = [k for k in row if k not in self.columns]
        if extra:
            warnings.warn(
                f"metrics {extra} appeared after the first epoch; not in the CSV", stacklevel=2
            )
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writerow({k: row.get(k, "") for k in self.columns})
            handle.flush()
        if self.writer is not None:
            step = int(row.get("epoch", 0))
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def progress_postfix(metrics: dict[str, float]) -> dict[str, str]:
    """Short validation errors for the progress bar: MAE of E meV/atom, F meV/A, H(v)
    meV/A^2, S meV/A^3, and the pressure MAE and mean bias P, Pbias GPa."""
    out = {}
    for name, label in (
        ("energy_per_atom", "E"),
        ("forces", "F"),
        ("hvp", "Hv"),
        ("hessian", "H"),
        ("stress", "S"),
        ("pressure", "P"),
    ):
        key = f"valid_{name}_mae"
        if key in metrics:
            out[label] = f"{metrics[key]:.3g}"
    if "valid_pressure_bias" in metrics:
        out["Pbias"] = f"{metrics['valid_pressure_bias']:+.3g}"
    return out


def format_table(results: dict[str, dict[str, float]]) -> str:
    """Fixed-width table of MAE / RMSE per split (rows) and quantity (columns); the
    pressure column also gives the mean bias, and lines per split list the stress
    MAE of each Voigt component and the error of the energy-volume slope."""
    names = [n for n in TABLE if any(f"{n}_mae" in r for r in results.values())]
    headers = ["split", "N"] + [f"{LABELS[n]} MAE/RMSE [{QUANTITIES[n][0]}]" for n in names]
    if "pressure" in names:
        headers[2 + names.index("pressure")] = "P MAE/RMSE/bias [GPa]"
    rows = []
    for split, metrics in results.items():
        count = metrics.get("num_structures", metrics.get("energy_count", float("nan")))
        row = [split, f"{int(count)}" if count == count else "-"]
        for n in names:
            if f"{n}_mae" in metrics:
                cell = f"{metrics[f'{n}_mae']:.4g} / {metrics[f'{n}_rmse']:.4g}"
                if n == "pressure":
                    cell += f" / {metrics['pressure_bias']:+.3g}"
                row.append(cell)
            else:
                row.append("-")
        rows.append(row)
    widths = [max(len(str(r[k])) for r in [headers, *rows]) for k in range(len(headers))]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))
    lines = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]
    for split, metrics in results.items():
        parts = [
            f"{name} {metrics[f'stress_{name}_mae']:.3g}"
            for name, _, _ in VOIGT
            if f"stress_{name}_mae" in metrics
        ]
        if parts:
            lines.append(f"{split}: stress MAE per component [meV/A^3]: " + ", ".join(parts))
        if "pressure_slope_error" in metrics:
            lines.append(
                f"{split}: energy-volume slope dE/dV = -P against the reference's, over the "
                f"cells: {metrics['pressure_slope_error']:+.2f} %"
            )
    return "\n".join(lines)


def accumulate_errors(
    stats: ErrorStats, pred: dict | None, batch: dict, probes: torch.Tensor | None
) -> None:
    """Add the residuals of one evaluated batch (from :func:`mlip.loss.predict` or
    :func:`mlip.derivatives.compute`) to ``stats``."""
    if pred is None:
        return
    if keys.ENERGY in batch:
        diff = pred[keys.ENERGY] - batch[keys.ENERGY]
        stats.add("energy", diff)
        stats.add("energy_per_atom", diff / batch[keys.NUM_ATOMS])
    atom_forces = batch[keys.HAS_FORCES][batch[keys.BATCH]]
    if keys.FORCES in pred:
        stats.add("forces", (pred[keys.FORCES] - batch[keys.FORCES])[atom_forces])
    if keys.STRESS in pred:
        mask = batch[keys.HAS_STRESS]
        stats.add_stress(pred[keys.STRESS][mask], batch[keys.STRESS][mask])
    if keys.HESSIAN_PROBED in pred and probes is not None:
        ref = reference_hvp(
            batch[keys.HESSIAN], batch[keys.NUM_ATOMS], batch[keys.HAS_HESSIAN], probes
        )
        atom_hessian = batch[keys.HAS_HESSIAN][batch[keys.BATCH]]
        stats.add("hvp", (pred[keys.HESSIAN_PROBED] - ref)[:, atom_hessian])
