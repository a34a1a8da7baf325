"""The per-round table (``rounds.csv``, printed) and plot (``rounds.png``) of ``mlip learn``.

Columns: round, labels (in all so far), new labels, Hessians, failed labels, validation
energy MAE (meV/atom) and force MAE (meV/A) of the round's committee, the largest and
the mean (over systems) of the largest force std seen in the round's MD (eV/A), the MD
time reached (mean and least over systems, ps), systems stopped above stop_force_std
and exploded, candidates, the selected frames above the trust window and the rattles
that filled a round whose MD found too few new frames, round 0's rattles left out of
the committee's training (``committee_energy_margin``), wall seconds of the round and
the stop reason, if any.
"""

from __future__ import annotations

import csv
import io
import math
import os

from mlip.fileio import atomic_write_text

COLUMNS = ("round", "labels", "new_labels", "hessians", "failed", "valid_energy_mae",
           "valid_forces_mae", "md_largest_std", "md_mean_std", "md_time_ps", "md_min_time_ps",
           "md_systems", "md_stopped", "md_exploded", "candidates", "above_window", "relaxed",
           "rattled", "left_out", "md_outliers", "wall_s", "note")  # fmt: skip


def _text(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def write_table(path: str | os.PathLike, rows: list[dict]) -> None:
    """``rounds.csv`` (atomically)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in COLUMNS])
    atomic_write_text(path, buffer.getvalue())


def format_table(rows: list[dict]) -> str:
    """The table as aligned text (the columns that carry values)."""
    shown = [c for c in COLUMNS if any(_text(r.get(c)) for r in rows)]
    cells = [[_text(r.get(c)) for c in shown] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(shown)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(shown, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def plot_rounds(path: str | os.PathLike, rows: list[dict]) -> None:
    """``rounds.png``: validation force MAE against labels; largest and mean force std and
    MD time reached against the round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlip.fileio import atomic_path

    def series(key: str) -> list[float]:
        values = []
        for row in rows:
            value = row.get(key)
            values.append(float("nan") if value in (None, "") else float(value))
        return values

    rounds = series("round")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=110)
    axes[0].plot(series("labels"), series("valid_forces_mae"), "o-")
    axes[0].set(xlabel="labels", ylabel="validation F MAE [meV/A]", yscale="log")
    axes[1].plot(rounds, series("md_largest_std"), "o-", label="largest")
    axes[1].plot(rounds, series("md_mean_std"), "s--", label="mean over systems")
    axes[1].set(xlabel="round", ylabel="MD force std [eV/A]", yscale="log")
    axes[1].legend(fontsize=8)
    axes[2].plot(rounds, series("md_time_ps"), "o-", label="mean")
    axes[2].plot(rounds, series("md_min_time_ps"), "s--", label="least")
    axes[2].set(xlabel="round", ylabel="MD time reached [ps]")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
