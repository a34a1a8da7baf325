"""Transition states: :func:`find_transition_state`, Sella with the exact Hessian.

Steps (units: eV, Angstrom, cm^-1):

1. a first-order saddle search from the guess (:func:`mlip.integrations.sella.find_saddle`,
   order 1, ``hessian_function`` = the model's exact Hessian); a search that does not
   reach ``fmax`` in ``steps`` is an error (nothing is written);
2. the harmonic analysis of the saddle (:func:`mlip.vib.analyse_atoms`): exactly one
   frequency below -``imaginary_tol``, or an error naming the imaginary frequencies;
3. the two minima the saddle connects: step ``displacement`` (largest atomic step)
   along +/- the imaginary mode and relax (:func:`mlip.vib.relax`, BFGS then Newton
   steps with the exact Hessian) to ``minimum_fmax``;
4. barriers E_saddle - E_minimum on both sides and the reaction energy.

:func:`write_outputs` writes the JSON, the search trajectory and the path (reverse
minimum, saddle, forward minimum) atomically, after all of them are ready.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from mlip.errors import ConvergenceError, UnknownElementError, check_known_elements
from mlip.fileio import atomic_path, atomic_write_text
from mlip.integrations.sella import find_saddle
from mlip.ts.config import TSConfig
from mlip.vib import analyse_atoms, read_structure, relax
from mlip.vib.harmonic import HarmonicResult, format_frequency


@dataclass
class Minimum:
    """A minimum reached from the saddle along one sign of the imaginary mode."""

    side: str  # "forward" (+mode) or "reverse" (-mode)
    atoms: Atoms
    energy: float  # eV
    fmax: float  # eV/A
    steps: int  # optimiser + Newton steps
    displacement: float  # A, RMS distance from the saddle


@dataclass
class TransitionState:
    """Result of :func:`find_transition_state` (see the module docstring)."""

    config: TSConfig
    saddle: Atoms
    energy: float  # eV
    search_steps: int
    search_fmax: float  # eV/A
    hessians: int  # exact Hessians Sella asked for
    vibrations: HarmonicResult
    mode: np.ndarray  # (N, 3) Cartesian imaginary mode, largest atomic step 1 A
    minima: list[Minimum]
    trajectory: str | None = None  # temporary file of the search (written by write_outputs)
    warnings: list[str] = field(default_factory=list)
    scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def imaginary_frequency(self) -> float:
        """The imaginary frequency, cm^-1 (negative)."""
        return float(self.vibrations.frequencies[0])

    @property
    def barriers(self) -> dict[str, float]:
        """E_saddle - E_minimum (eV) for the forward and reverse sides, and the reaction
        energy E_forward - E_reverse."""
        by_side = {m.side: m.energy for m in self.minima}
        return {
            "forward": self.energy - by_side["forward"],
            "reverse": self.energy - by_side["reverse"],
            "reaction_energy": by_side["forward"] - by_side["reverse"],
        }

    def as_dict(self) -> dict:
        return {
            "units": {"energy": "eV", "frequencies": "cm^-1", "positions": "Angstrom"},
            "converged": True,
            "search_steps": self.search_steps,
            "search_fmax": self.search_fmax,
            "exact_hessians": self.hessians,
            "saddle_energy": self.energy,
            "imaginary_frequency": self.imaginary_frequency,
            "frequencies": self.vibrations.frequencies.tolist(),
            "imaginary_mode": self.mode.tolist(),
            "barrier_forward": self.barriers["forward"],
            "barrier_reverse": self.barriers["reverse"],
            "reaction_energy": self.barriers["reaction_energy"],
            "minima": {
                m.side: {
                    "energy": m.energy,
                    "fmax": m.fmax,
                    "steps": m.steps,
                    "rms_from_saddle": m.displacement,
                    "positions": m.atoms.positions.tolist(),
                }
                for m in self.minima
            },
            "numbers": self.saddle.numbers.tolist(),
            "saddle_positions": self.saddle.positions.tolist(),
            "warnings": self.warnings,
        }

    def summary(self) -> str:
        b = self.barriers
        lines = [
            f"saddle converged in {self.search_steps} Sella steps ({self.hessians} exact "
            f"Hessians): max force {self.search_fmax:.2e} eV/A, energy {self.energy:.6f} eV",
            f"one imaginary mode: {format_frequency(self.imaginary_frequency)} cm^-1; "
            f"lowest real: {format_frequency(self.vibrations.frequencies[1])} cm^-1"
            if self.vibrations.num_modes > 1
            else f"one imaginary mode: {format_frequency(self.imaginary_frequency)} cm^-1",
        ]
        for m in self.minima:
            lines.append(
                f"{m.side} minimum (along {'+' if m.side == 'forward' else '-'}mode): energy "
                f"{m.energy:.6f} eV, max force {m.fmax:.1e} eV/A, {m.steps} steps, RMS "
                f"{m.displacement:.3f} A from the saddle"
            )
        lines.append(
            f"barrier forward {b['forward']:.6f} eV, reverse {b['reverse']:.6f} eV, "
            f"reaction energy {b['reaction_energy']:+.6f} eV"
        )
        return "\n".join(lines)


def find_transition_state(
    config: TSConfig,
    calculator=None,  # noqa: ANN001 (MLIPCalculator; default: one for config.model)
    workdir: str | None = None,
) -> TransitionState:
    """Saddle, its check and the two minima (see the module docstring). ``workdir``
    holds the search trajectory until :func:`write_outputs` (default: a new temporary
    folder)."""
    from mlip.calculator import MLIPCalculator

    atoms, _ = read_structure(config.guess)
    if calculator is None:
        calculator = MLIPCalculator(config.model, device=config.device, dtype=config.dtype)
    try:
        check_known_elements(atoms.numbers, calculator.known_numbers)
    except UnknownElementError as err:
        raise UnknownElementError(f"{config.guess}: {err}") from err
    atoms.calc = calculator
    every = np.arange(len(atoms))

    def hessian(a: Atoms) -> np.ndarray:  # the full (3N, 3N) Hessian Sella expects
        return calculator.get_hessian(a, indices=every)

    trajectory, scratch = None, None
    if config.traj:
        if workdir is None:  # removed with the result
            scratch = tempfile.TemporaryDirectory(prefix="mlip-ts-")
            workdir = scratch.name
        trajectory = os.path.join(workdir, "search.traj")
    search = find_saddle(
        atoms,
        hessian,
        fmax=config.fmax,
        steps=config.steps,
        trajectory=trajectory,
        internal=config.internal,
        hessian_every=config.hessian_every,
    )
    if not search.converged:
        raise ConvergenceError(
            f"{config.guess}: the saddle search did not converge after {search.steps} steps "
            f"(largest force {search.fmax:.2e} eV/A, fmax {config.fmax:g} eV/A); try another "
            f"guess, more --steps or --internal"
        )
    vibrations = analyse_atoms(atoms, calculator)  # FixAtoms: a partial analysis
    imaginary = vibrations.frequencies < -config.imaginary_tol
    if int(imaginary.sum()) != 1:
        listed = ", ".join(format_frequency(f) for f in vibrations.frequencies[imaginary])
        raise ConvergenceError(
            f"{config.guess}: the stationary point found has {int(imaginary.sum())} imaginary "
            f"modes (below -{config.imaginary_tol:g} cm^-1{': ' + listed if listed else ''}), "
            f"not exactly one: not a first-order saddle"
        )
    mode = _full_mode(vibrations, len(atoms))
    energy = float(atoms.get_potential_energy())
    saddle = atoms.copy()
    minima = [
        _relax_side(saddle, calculator, sign * mode, side, config)
        for sign, side in ((1.0, "forward"), (-1.0, "reverse"))
    ]
    warnings = []
    apart = np.sqrt(((minima[0].atoms.positions - minima[1].atoms.positions) ** 2).sum(1).mean())
    if apart < 1e-2:
        warnings.append(
            f"both sides relaxed to the same minimum (RMS {apart:.1e} A apart); try a larger "
            f"--displacement"
        )
    for m in minima:
        if m.energy >= energy:
            warnings.append(f"the {m.side} minimum is not below the saddle ({m.energy:.6f} eV)")
    saddle.calc = None
    return TransitionState(
        config=config,
        saddle=saddle,
        energy=energy,
        search_steps=search.steps,
        search_fmax=search.fmax,
        hessians=search.hessians,
        vibrations=vibrations,
        mode=mode,
        minima=minima,
        trajectory=trajectory,
        warnings=warnings,
        scratch=scratch,
    )


def _full_mode(vibrations: HarmonicResult, n_atoms: int) -> np.ndarray:
    """The imaginary mode as (N, 3) Cartesian displacements, largest atomic step 1 A
    (zero on atoms a partial analysis left fixed)."""
    mode = np.zeros((n_atoms, 3))
    atoms = np.arange(n_atoms) if vibrations.indices is None else vibrations.indices
    mode[atoms] = vibrations.modes[0]
    return mode / np.linalg.norm(mode, axis=1).max()


def _relax_side(
    saddle: Atoms, calculator, mode: np.ndarray, side: str, config: TSConfig
) -> Minimum:  # noqa: ANN001
    atoms = saddle.copy()
    atoms.positions += config.displacement * mode
    outcome = relax(atoms, calculator, fmax=config.minimum_fmax, steps=config.minimum_steps)
    if not outcome.converged:
        raise ConvergenceError(
            f"{config.guess}: the relaxation along the {side} side of the imaginary mode did "
            f"not converge after {outcome.optimizer_steps} steps (largest force "
            f"{outcome.fmax:.2e} eV/A, fmax {config.minimum_fmax:g} eV/A)"
        )
    rms = float(np.sqrt(((atoms.positions - saddle.positions) ** 2).sum(1).mean()))
    atoms.calc = None
    return Minimum(
        side=side,
        atoms=atoms,
        energy=outcome.energy,
        fmax=outcome.fmax,
        steps=outcome.optimizer_steps + outcome.newton_steps,
        displacement=rms,
    )


def write_outputs(result: TransitionState) -> list[str]:
    """Write the JSON, trajectory and path files the config names, each atomically,
    after the result is complete; returns the paths written."""
    import ase.io

    config = result.config
    written = []
    if config.traj and result.trajectory:
        with atomic_path(config.traj) as temp:
            shutil.copyfile(result.trajectory, temp)
        written.append(config.traj)
    if config.path:
        frames = [m.atoms for m in sorted(result.minima, key=lambda m: m.side != "reverse")]
        frames.insert(1, result.saddle)
        with atomic_path(config.path) as temp:
            ase.io.write(temp, frames, format="extxyz")
        written.append(config.path)
    if config.json:
        atomic_write_text(config.json, json.dumps(result.as_dict(), indent=1))
        written.append(config.json)
    return written
