"""Vibrational spectrum plot (matplotlib, Agg backend; frequencies in cm^-1)."""

from __future__ import annotations

import os

import numpy as np

BROADENINGS = ("lorentzian", "none")


def lorentzian_spectrum(
    frequencies: np.ndarray, grid: np.ndarray, width: float = 10.0
) -> np.ndarray:
    """Sum of unit-area Lorentzians L(x) = (w/2) / (pi ((x - nu)^2 + (w/2)^2)), FWHM w cm^-1."""
    if width <= 0:
        raise ValueError(f"width (FWHM, cm^-1) must be > 0, got {width}")
    half = 0.5 * width
    diff = grid[:, None] - np.asarray(frequencies)[None, :]
    return (half / np.pi / (diff**2 + half**2)).sum(axis=1)


def plot_spectrum(
    frequencies: np.ndarray,
    path: str | os.PathLike,
    width: float = 10.0,
    broadening: str = "lorentzian",
) -> None:
    """Save a stick spectrum of the real modes (unit intensities), optionally broadened.

    Imaginary modes (negative entries) are drawn as dashed red sticks at -|nu|.
    """
    if broadening not in BROADENINGS:
        raise ValueError(f"broadening must be one of {BROADENINGS}, got {broadening!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frequencies = np.asarray(frequencies, dtype=np.float64)
    real = frequencies[frequencies >= 0]
    imag = frequencies[frequencies < 0]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.vlines(real, 0, 1, color="k", lw=1, label="modes")
    if len(imag):
        ax.vlines(imag, 0, 1, color="r", lw=1, ls="--", label="imaginary")
    if broadening == "lorentzian" and len(real):
        top = max(float(real.max()) * 1.1, 100.0)
        grid = np.linspace(0.0, top, 4000)
        curve = lorentzian_spectrum(real, grid, width)
        label = f"Lorentzian {width:g} cm$^{{-1}}$"
        ax.plot(grid, curve / curve.max(), color="C0", lw=1, label=label)
    ax.set_xlabel("wavenumber / cm$^{-1}$")
    ax.set_ylabel("intensity (arb.)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
