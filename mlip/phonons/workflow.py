"""Phonons of a crystal from the model's exact Hessian: :func:`run_phonons`.

Steps (units: Angstrom, eV, THz, K):

1. read the structure (any ASE file or ``FILE.h5[:GROUP[:INDEX]]``); it must have a 3D
   periodic cell and only elements the model knows;
2. optionally relax positions and cell (:func:`mlip.vib.relax_cell`), then warn if the
   structure is not a stationary point of the model (forces, residual stress);
3. build phonopy's supercell and warn if it is thinner than the model's interaction
   range (num_layers x r_max): the force constants would fold onto periodic images;
4. force constants from exact Hessian-vector products of the irreducible atoms
   (:func:`mlip.integrations.phonopy.exact_force_constants`), symmetrised by phonopy;
5. band structure on phonopy's automatic path, DOS and thermal properties on a mesh,
   frequencies at the requested q-points, imaginary modes reported by q-point.

:func:`write_outputs` then writes the JSON and the PNG, each atomically and only after
both are ready, so a failure leaves no partial output.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from mlip.errors import UnknownElementError, check_known_elements
from mlip.fileio import atomic_write, atomic_write_text
from mlip.integrations import phonopy as ph
from mlip.phonons.config import PhononConfig
from mlip.vib import read_structure, relax_cell, stationarity_warning


@dataclass
class ImaginaryMode:
    """A q-point with frequencies below -tol: where (band/mesh/qpoints), q in the input
    cell's and phonopy's primitive reduced coordinates, its label, count, lowest THz."""

    source: str
    q_input: list[float]
    q_primitive: list[float]
    label: str
    count: int
    lowest_THz: float


@dataclass
class PhononResult:
    """Everything :func:`run_phonons` computed (see the module docstring)."""

    config: PhononConfig
    atoms: Atoms  # the (relaxed) input cell
    supercell_atoms: int
    force_constants: ph.ForceConstantsInfo
    bands: ph.BandStructure
    mesh: ph.Mesh
    thermal: dict[str, list[float]]
    qpoints_input: np.ndarray  # (K, 3) reduced coordinates of the input cell
    qpoints_primitive: np.ndarray  # (K, 3) of phonopy's primitive cell
    qpoint_labels: list[str]
    frequencies: np.ndarray  # (K, bands) THz at those q-points
    imaginary: list[ImaginaryMode]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # s

    def as_dict(self) -> dict:
        """JSON-ready: q-points and frequencies, the thermal table, imaginary modes, the
        band structure, the DOS and how the force constants were made."""
        return {
            "units": {
                "qpoints": "reduced coordinates of the input cell's reciprocal lattice",
                "frequencies": "THz",
                "free_energy": "eV per primitive cell",
                "entropy": "eV/K per primitive cell",
                "heat_capacity": "eV/K per primitive cell",
                "band_distances": "1/A (without 2 pi)",
            },
            "qpoints": self.qpoints_input.tolist(),
            "qpoints_primitive": self.qpoints_primitive.tolist(),
            "qpoint_labels": self.qpoint_labels,
            "frequencies_THz": self.frequencies.tolist(),
            "thermal": self.thermal,
            "imaginary": [vars(mode) for mode in self.imaginary],
            "band_structure": {
                "labels": self.bands.labels,
                "connections": self.bands.connections,
                "qpoints_primitive": [q.tolist() for q in self.bands.qpoints],
                "distances": [d.tolist() for d in self.bands.distances],
                "frequencies_THz": [f.tolist() for f in self.bands.frequencies],
            },
            "dos": {
                "frequencies_THz": self.mesh.dos_frequencies.tolist(),
                "states_per_THz": self.mesh.dos.tolist(),
                "mesh": self.mesh.numbers,
            },
            "force_constants": vars(self.force_constants),
            "supercell": list(self.config.supercell),
            "supercell_atoms": self.supercell_atoms,
            "primitive_atoms": int(self.frequencies.shape[1] // 3),
            "warnings": self.warnings,
            "timings_s": self.timings,
        }

    def summary(self, max_imaginary: int = 10) -> str:
        """Text report: force constants, frequencies at the q-points, imaginary modes,
        thermal table."""
        fc = self.force_constants
        lines = [
            f"supercell {'x'.join(map(str, self.config.supercell))}: {self.supercell_atoms} "
            f"atoms, irreducible {fc.irreducible_atoms}, {fc.products} exact Hessian-vector "
            f"products ({fc.method}), {self.timings.get('force_constants', 0.0):.2f} s",
            "frequencies (THz) at the q-points (reduced coordinates of the input cell):",
        ]
        for q, label, row in zip(
            self.qpoints_input, self.qpoint_labels, self.frequencies, strict=True
        ):
            name = f" {label}" if label else ""
            values = " ".join(f"{f:8.3f}" for f in row)
            lines.append(f"  ({q[0]:.4g}, {q[1]:.4g}, {q[2]:.4g}){name}: {values}")
        if self.imaginary:
            worst = sorted(self.imaginary, key=lambda m: m.lowest_THz)
            lines.append(
                f"imaginary modes (below -{self.config.imaginary_tol:g} THz) at "
                f"{len(self.imaginary)} q-point(s); lowest first:"
            )
            for mode in worst[:max_imaginary]:
                q = mode.q_input
                label = f" {mode.label}" if mode.label else ""
                lines.append(
                    f"  {mode.source:>7} q = ({q[0]:.4g}, {q[1]:.4g}, {q[2]:.4g}){label}: "
                    f"{mode.count} imaginary, lowest {mode.lowest_THz:.3f} THz"
                )
            if len(worst) > max_imaginary:
                lines.append(f"  ... {len(worst) - max_imaginary} more in the JSON output")
        else:
            lines.append(f"no imaginary modes (below -{self.config.imaginary_tol:g} THz)")
        lines.append(f"thermal properties per primitive cell (harmonic, mesh {self.mesh.numbers}):")
        lines.append(f"  {'T/K':>7} {'F/eV':>12} {'S/(meV/K)':>12} {'Cv/(meV/K)':>12}")
        t = self.thermal
        for k, temperature in enumerate(t["temperature_K"]):
            lines.append(
                f"  {temperature:7.1f} {t['free_energy_eV'][k]:12.6f} "
                f"{1e3 * t['entropy_eV_per_K'][k]:12.6f} "
                f"{1e3 * t['heat_capacity_eV_per_K'][k]:12.6f}"
            )
        return "\n".join(lines)


def read_crystal(spec: str) -> Atoms:
    """The structure of ``spec``; ValueError naming it unless it has a 3D periodic cell."""
    atoms, _ = read_structure(spec)
    if not atoms.pbc.all() or atoms.cell.rank != 3:
        raise ValueError(
            f"{spec}: phonons need a crystal with a 3D periodic cell; this structure has "
            f"pbc {atoms.pbc.tolist()} and a cell of rank {atoms.cell.rank}"
        )
    return atoms


def check_elements(atoms: Atoms, calculator, spec: str) -> None:  # noqa: ANN001
    """UnknownElementError naming the structure and the elements the model lacks."""
    try:
        check_known_elements(atoms.numbers, calculator.known_numbers)
    except UnknownElementError as err:
        raise UnknownElementError(f"{spec}: {err}") from err


def supercell_range_warning(supercell: Atoms, interaction_range: float, calculator) -> str | None:  # noqa: ANN001
    """A warning when the supercell is thinner than the model's interaction range."""
    cell = np.asarray(supercell.cell[:])
    volume = abs(np.linalg.det(cell))
    widths = [
        volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)
    ]
    axis = int(np.argmin(widths))
    if widths[axis] >= interaction_range:
        return None
    layers = getattr(getattr(calculator.model, "config", None), "num_layers", 1)
    return (
        f"the supercell's width along cell vector {axis + 1} ({widths[axis]:.2f} A, between "
        f"opposite faces) is shorter than the model's interaction range {interaction_range:.2f}"
        f" A (num_layers {layers} x r_max {calculator.cutoff:g} A): force constants fold onto "
        f"periodic images and frequencies away from the supercell's q-points are not "
        f"converged; use a larger --supercell"
    )


def run_phonons(config: PhononConfig, calculator=None, log=print) -> PhononResult:  # noqa: ANN001
    """Phonons of ``config.structure`` with ``config.model`` (or ``calculator``, an
    MLIPCalculator); ``log`` gets progress lines (relaxation, warnings)."""
    from mlip.calculator import MLIPCalculator

    started = time.perf_counter()
    atoms = read_crystal(config.structure)
    if calculator is None:
        calculator = MLIPCalculator(config.model, device=config.device, dtype=config.dtype)
    check_elements(atoms, calculator, config.structure)
    atoms.calc = calculator
    result_notes, result_warnings = [], []
    if config.relax:
        import ase.optimize

        optimizer = getattr(ase.optimize, config.optimizer)
        outcome = relax_cell(atoms, fmax=config.fmax, steps=config.relax_steps, optimizer=optimizer)
        status = (
            "converged"
            if outcome.converged
            else f"NOT converged after {outcome.optimizer_steps} steps"
        )
        note = (
            f"relaxation {status}: max force {outcome.fmax:.2e} eV/A, energy "
            f"{outcome.energy:.6f} eV, {outcome.optimizer_steps} steps ({outcome.note}), "
            f"cell lengths {', '.join(f'{x:.5f}' for x in atoms.cell.lengths())} A"
        )
        result_notes.append(note)
        log(note)
    warning = stationarity_warning(
        atoms, fmax=config.warn_fmax, max_stress_gpa=config.warn_stress, fix="--relax"
    )
    if warning:
        result_warnings.append(warning)
        log(f"warning: {warning}")
    unitcell = atoms.copy()
    unitcell.calc = None
    phonon = ph.make_phonopy(unitcell, config.supercell, symprec=config.symprec)
    supercell = ph.supercell_atoms(phonon)
    warning = supercell_range_warning(supercell, calculator.interaction_range, calculator)
    if warning:
        result_warnings.append(warning)
        log(f"warning: {warning}")
    timings = {}
    start = time.perf_counter()
    info = ph.exact_force_constants(phonon, calculator, method=config.method)
    timings["force_constants"] = time.perf_counter() - start
    start = time.perf_counter()
    bands = ph.band_structure(phonon, npoints=config.band_points)
    mesh = ph.mesh_and_dos(phonon, config.mesh)
    thermal = ph.thermal_properties(phonon, config.t_min, config.t_max, config.t_step)
    if config.qpoints:
        q_input = np.array(config.qpoints, dtype=float)
        q_primitive = ph.primitive_qpoints(phonon, q_input)
        labels = [""] * len(q_input)
    else:  # the special points of the band path
        q_primitive, labels = _special_points(bands)
        q_input = ph.unitcell_qpoints(phonon, q_primitive)
    frequencies = ph.frequencies_at(phonon, q_primitive)
    timings["phonopy"] = time.perf_counter() - start
    imaginary = _imaginary_modes(
        phonon, bands, mesh, q_primitive, frequencies, config.imaginary_tol
    )
    timings["total"] = time.perf_counter() - started
    return PhononResult(
        config=config,
        atoms=unitcell,
        supercell_atoms=len(supercell),
        force_constants=info,
        bands=bands,
        mesh=mesh,
        thermal=thermal,
        qpoints_input=q_input,
        qpoints_primitive=q_primitive,
        qpoint_labels=labels,
        frequencies=frequencies,
        imaginary=imaginary,
        warnings=result_warnings,
        notes=result_notes,
        timings=timings,
    )


def _special_points(bands: ph.BandStructure) -> tuple[np.ndarray, list[str]]:
    """The distinct labelled end points of the band path (primitive coordinates)."""
    points, labels = [], []
    for segment, names in zip(bands.qpoints, bands.segment_labels(), strict=True):
        for q, name in ((segment[0], names[0]), (segment[-1], names[1])):
            if name not in labels:
                points.append(np.asarray(q, dtype=float))
                labels.append(name)
    return np.array(points).reshape(-1, 3), labels


def _imaginary_modes(
    phonon,  # noqa: ANN001 (phonopy.Phonopy)
    bands: ph.BandStructure,
    mesh: ph.Mesh,
    q_points: np.ndarray,
    frequencies: np.ndarray,
    tol: float,
) -> list[ImaginaryMode]:
    """One entry per q-point (band path, mesh, requested) with a frequency below -tol."""
    named = {}
    for segment, names in zip(bands.qpoints, bands.segment_labels(), strict=True):
        named[tuple(np.round(segment[0], 8))] = names[0]
        named[tuple(np.round(segment[-1], 8))] = names[1]
    sources = [
        ("band", q, f)
        for segment_q, segment_f in zip(bands.qpoints, bands.frequencies, strict=True)
        for q, f in zip(segment_q, segment_f, strict=True)
    ]
    sources += [("mesh", q, f) for q, f in zip(mesh.qpoints, mesh.frequencies, strict=True)]
    sources += [("qpoints", q, f) for q, f in zip(q_points, frequencies, strict=True)]
    found, seen = [], set()
    for source, q, f in sources:
        key = tuple(np.round(q, 8))
        bad = np.asarray(f) < -tol
        if not bad.any() or (source, key) in seen:
            continue
        seen.add((source, key))
        found.append(
            ImaginaryMode(
                source=source,
                q_input=ph.unitcell_qpoints(phonon, q)[0].tolist(),
                q_primitive=np.asarray(q, dtype=float).tolist(),
                label=named.get(key, ""),
                count=int(bad.sum()),
                lowest_THz=float(np.min(f)),
            )
        )
    return found


def write_outputs(result: PhononResult, json_path: str | None, plot_path: str | None) -> list[str]:
    """Write the JSON and the PNG (atomically, both prepared before either is written);
    returns the paths written."""
    from mlip.phonons.plot import plot_bands_and_dos

    payloads = []
    if json_path:
        payloads.append((json_path, json.dumps(result.as_dict(), indent=1)))
    if plot_path:
        buffer = io.BytesIO()
        plot_bands_and_dos(
            result.bands, result.mesh, buffer, title=result.atoms.get_chemical_formula()
        )
        payloads.append((plot_path, buffer.getvalue()))
    for path, payload in payloads:
        if isinstance(payload, str):
            atomic_write_text(path, payload)
        else:
            atomic_write(path, lambda handle, data=payload: handle.write(data))
    return [path for path, _ in payloads]
