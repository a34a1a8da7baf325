"""Band structure and DOS plot (matplotlib, Agg backend; frequencies in THz)."""

from __future__ import annotations

from typing import IO

import numpy as np

from mlip.integrations.phonopy import BandStructure, Mesh


def plot_bands_and_dos(
    bands: BandStructure, mesh: Mesh, target: str | IO[bytes], title: str = ""
) -> None:
    """Save a PNG: the bands along the path (left; imaginary modes as negative THz below
    a dashed zero line) and the total DOS (right, states/THz per primitive cell)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (ax_bands, ax_dos) = plt.subplots(
        1, 2, figsize=(8, 4.5), sharey=True, gridspec_kw={"width_ratios": [3, 1]}
    )
    ticks, names = [], []
    segments = zip(bands.distances, bands.frequencies, bands.segment_labels(), strict=True)
    for distances, frequencies, ends in segments:
        ax_bands.plot(distances, frequencies, color="C0", linewidth=1.0)
        for name, distance in ((ends[0], distances[0]), (ends[1], distances[-1])):
            if ticks and abs(ticks[-1] - distance) < 1e-9:
                if names[-1] != name:
                    names[-1] = f"{names[-1]}|{name}"
                continue
            ticks.append(distance)
            names.append(name)
    for tick in ticks:
        ax_bands.axvline(tick, color="0.7", linewidth=0.6)
    lowest = min(float(np.min(f)) for f in bands.frequencies)
    if lowest < 0:
        ax_bands.axhline(0.0, color="C3", linestyle="--", linewidth=0.8)
    ax_bands.set_xticks(ticks, [_tex(name) for name in names])
    ax_bands.set_xlim(bands.distances[0][0], bands.distances[-1][-1])
    ax_bands.set_ylabel("frequency (THz)")
    ax_bands.set_title(title)
    ax_dos.plot(mesh.dos, mesh.dos_frequencies, color="C1", linewidth=1.0)
    ax_dos.set_xlabel("DOS (1/THz)")
    ax_dos.set_xlim(left=0.0)
    figure.tight_layout()
    figure.savefig(target, format="png", dpi=120)
    plt.close(figure)


def _tex(name: str) -> str:
    """Matplotlib mathtext of a plain label ("Gamma" -> Greek, "X|K" kept)."""
    return "|".join(f"$\\{p}$" if p == "Gamma" else p for p in name.split("|"))
