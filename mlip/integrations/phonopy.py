"""phonopy adapter: cells, exact force constants, and phonopy's results as arrays.

Units: Angstrom, eV, amu; force constants eV/A^2; frequencies THz (phonopy's default
unit conversion for eV and Angstrom); thermal properties converted from phonopy's
kJ/mol and J/K/mol to eV and eV/K per primitive cell.

**Exact force constants.** Phonopy's finite-displacement method displaces each
symmetry-irreducible atom of the supercell along a few directions u, fits
Phi = -F / u from the forces and fills in the other atoms by the space group. The
exact Hessian gives the same input without a displacement amplitude: the linear
response of the forces to a displacement u of atom i is exactly -H u, one
Hessian-vector product (:meth:`mlip.calculator.MLIPCalculator.get_hessian_products`).
:func:`exact_force_constants` hands phonopy those responses as a displacement
dataset (unit vectors, forces -H u) and lets phonopy's own solver use the site
symmetry, distribute to all atoms and symmetrise; since the response is linear, the
result does not depend on the vectors' length and has no finite-difference error.
Two choices of directions:

* ``"directions"`` (default): phonopy's symmetry-reduced directions (one for an fcc
  atom, at most three per irreducible atom), as many products as phonopy has
  displacements without the +/- pairs;
* ``"rows"``: the three Cartesian rows of every irreducible atom (3 products each,
  :meth:`~mlip.calculator.MLIPCalculator.get_hessian` with ``indices``).

:func:`displacement_force_constants` is phonopy's finite-displacement method through
any ASE calculator, the reference of tests and benchmarks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from mlip.errors import MissingDependencyError

#: eV per kJ/mol (phonopy's energy unit for thermal properties, per primitive cell)
EV_PER_KJ_MOL = float(units.kJ / units.mol)
METHODS = ("directions", "rows")


def to_phonopy_atoms(atoms: Atoms):  # noqa: ANN201 (phonopy.structure.atoms.PhonopyAtoms)
    """The cell, positions, symbols and (ASE's) masses of ``atoms`` as a PhonopyAtoms."""
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.array(atoms.cell[:], dtype=float),
        scaled_positions=atoms.get_scaled_positions(wrap=False),
        masses=atoms.get_masses(),
    )


def to_ase_atoms(cell) -> Atoms:  # noqa: ANN001 (PhonopyAtoms)
    """A periodic ``ase.Atoms`` of a PhonopyAtoms (same order, masses kept)."""
    atoms = Atoms(
        symbols=list(cell.symbols),
        cell=np.array(cell.cell),
        scaled_positions=np.array(cell.scaled_positions),
        pbc=True,
    )
    if cell.masses is not None:
        atoms.set_masses(np.array(cell.masses))
    return atoms


def make_phonopy(
    unitcell: Atoms,
    supercell_matrix: Sequence[int] | np.ndarray,
    primitive_matrix: str | np.ndarray | None = "auto",
    symprec: float = 1e-5,
):  # noqa: ANN201 (phonopy.Phonopy)
    """``Phonopy(unitcell, supercell_matrix)`` (3 integers: a diagonal matrix)."""
    from phonopy import Phonopy

    matrix = np.asarray(supercell_matrix, dtype=int)
    if matrix.shape == (3,):
        matrix = np.diag(matrix)
    with warnings.catch_warnings():  # "auto" is asked for here, not a silent default
        warnings.filterwarnings("ignore", message="primitive_matrix defaulted")
        return Phonopy(
            to_phonopy_atoms(unitcell),
            supercell_matrix=matrix,
            primitive_matrix=primitive_matrix,
            symprec=symprec,
            log_level=0,
        )


def supercell_atoms(phonon) -> Atoms:  # noqa: ANN001 (phonopy.Phonopy)
    """The perfect supercell as ``ase.Atoms``."""
    return to_ase_atoms(phonon.supercell)


def irreducible_atoms(phonon) -> np.ndarray:  # noqa: ANN001
    """Indices of the symmetry-irreducible atoms of the supercell (phonopy's symmetry)."""
    return np.asarray(phonon.symmetry.get_independent_atoms(), dtype=np.int64)


@dataclass
class ForceConstantsInfo:
    """How the force constants were made: ``method``, number of Hessian-vector products
    (or displaced supercells), the irreducible atoms and the raw acoustic-sum residual
    max_i,a,b |sum_j Phi_ij,ab| (eV/A^2) before phonopy's symmetrisation."""

    method: str
    products: int
    irreducible_atoms: list[int]
    sum_rule_residual: float


def exact_force_constants(
    phonon,  # noqa: ANN001 (phonopy.Phonopy; its force constants are set)
    calculator,  # noqa: ANN001 (MLIPCalculator: get_hessian_products / get_hessian)
    method: str = "directions",
    symmetrize: bool = True,
) -> ForceConstantsInfo:
    """Set ``phonon.force_constants`` (full, (N, N, 3, 3) eV/A^2) from the exact Hessian.

    See the module docstring; ``symmetrize`` applies phonopy's translational and
    permutation symmetrisation afterwards.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    supercell = supercell_atoms(phonon)
    n = len(supercell)
    atoms = irreducible_atoms(phonon)
    if method == "rows":
        rows = calculator.get_hessian(supercell, indices=atoms)  # (3k, 3N)
        numbers = np.repeat(atoms, 3)
        directions = np.tile(np.eye(3), (len(atoms), 1))
        responses = rows.reshape(-1, n, 3)  # H e_a for atom i: row 3i + a (H symmetric)
    else:
        phonon.generate_displacements(distance=1.0, is_plusminus=False)
        first = phonon.dataset["first_atoms"]
        numbers = np.array([d["number"] for d in first], dtype=np.int64)
        directions = np.array([d["displacement"] for d in first], dtype=float)
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        vectors = np.zeros((len(first), n, 3))
        vectors[np.arange(len(first)), numbers] = directions
        responses = calculator.get_hessian_products(supercell, vectors)  # (K, N, 3)
    residual = float(np.abs(responses.sum(axis=1)).max()) if len(responses) else 0.0
    phonon.dataset = {
        "natom": n,
        "first_atoms": [
            {"number": int(i), "displacement": u, "forces": -response}
            for i, u, response in zip(numbers, directions, responses, strict=True)
        ],
    }
    phonon.produce_force_constants(show_drift=False)
    if symmetrize:
        phonon.symmetrize_force_constants(show_drift=False)
    return ForceConstantsInfo(method, len(responses), atoms.tolist(), residual)


def displacement_force_constants(
    phonon,  # noqa: ANN001 (phonopy.Phonopy; its force constants are set)
    calculator,  # noqa: ANN001 (any ASE calculator)
    distance: float = 0.01,
    plusminus: bool | str = "auto",
    symmetrize: bool = True,
) -> ForceConstantsInfo:
    """phonopy's finite-displacement method: ``distance`` (A) displacements, forces from
    ``calculator`` on each displaced supercell, ``produce_force_constants``."""
    phonon.generate_displacements(distance=distance, is_plusminus=plusminus)
    forces = []
    for cell in phonon.supercells_with_displacements:
        atoms = to_ase_atoms(cell)
        atoms.calc = calculator
        forces.append(atoms.get_forces().copy())
    phonon.forces = np.array(forces)
    phonon.produce_force_constants(show_drift=False)
    if symmetrize:
        phonon.symmetrize_force_constants(show_drift=False)
    atoms = sorted({int(d["number"]) for d in phonon.dataset["first_atoms"]})
    return ForceConstantsInfo(f"displacements {distance:g} A", len(forces), atoms, float("nan"))


# --- results as arrays ------------------------------------------------------------


def primitive_qpoints(phonon, qpoints: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """q-points (K, 3) in reduced coordinates of the input unit cell's reciprocal
    lattice -> those of phonopy's primitive cell (q_p = P^T q_u, P the primitive matrix)."""
    return np.asarray(qpoints, dtype=float).reshape(-1, 3) @ np.asarray(phonon.primitive_matrix)


def unitcell_qpoints(phonon, qpoints: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The inverse of :func:`primitive_qpoints`."""
    inverse = np.linalg.inv(np.asarray(phonon.primitive_matrix))
    return np.asarray(qpoints, dtype=float).reshape(-1, 3) @ inverse


def frequencies_at(phonon, qpoints: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Frequencies (K, bands), THz, ascending, imaginary as negative, at q-points (K, 3)
    in reduced coordinates of phonopy's primitive cell."""
    phonon.run_qpoints(np.asarray(qpoints, dtype=float).reshape(-1, 3))
    return np.array(phonon.qpoints.frequencies)


@dataclass
class BandStructure:
    """Along seekpath's path (:func:`band_structure`): per segment q-points (reduced
    coordinates of phonopy's primitive cell), distances (1/A, without 2 pi) and
    frequencies (THz); labels of the segment ends (phonopy's compressed list) and
    whether each segment connects to the next."""

    qpoints: list[np.ndarray]
    distances: list[np.ndarray]
    frequencies: list[np.ndarray]
    labels: list[str]
    connections: list[bool]

    def segment_labels(self) -> list[tuple[str, str]]:
        """(start, end) label of every segment, as plain text ("Gamma", "X"): phonopy
        keeps one label per junction of connected segments and two where the path jumps."""
        plain = [_plain_label(label) for label in self.labels]
        if not plain:
            return [("", "")] * len(self.qpoints)
        ends, k = [], 0
        for connected in self.connections:
            ends.append((plain[k], plain[k + 1]))
            k += 1 if connected else 2
        return ends


def _plain_label(label: str) -> str:
    text = label.replace("$", "").replace("\\mathrm{", "").replace("}", "")
    return "Gamma" if text in ("\\Gamma", "G", "GAMMA") else text


def band_structure(phonon, npoints: int = 51) -> BandStructure:  # noqa: ANN001
    """The band structure along seekpath's path for phonopy's primitive cell, as arrays.

    Like phonopy's ``auto_band_structure`` (the same HPKOT path and labels), except that
    seekpath's special points, given in its standardised (possibly permuted and rotated)
    primitive cell, are converted to phonopy's primitive cell first: phonopy uses them
    as they are, which puts them under the wrong labels when its primitive cell is not
    seekpath's (e.g. an explicit ``primitive_matrix`` of a cell in a non-standard
    setting; phonopy's "auto" primitive is standardised and agrees). ``npoints`` q-points on
    the longest segment, the others in proportion (at least 2).
    """
    ends, labels, connections = seekpath_path(phonon)
    lattice = np.asarray(phonon.primitive.cell)  # rows, A
    reciprocal = np.linalg.inv(lattice).T  # rows, 1/A without 2 pi
    lengths = [np.linalg.norm((b - a) @ reciprocal) for a, b in ends]
    longest = max(lengths) if lengths and max(lengths) > 0 else 1.0
    paths = []
    for (start, end), length in zip(ends, lengths, strict=True):
        count = max(2, int(round((npoints - 1) * length / longest)) + 1)
        paths.append(start + np.linspace(0.0, 1.0, count)[:, None] * (end - start))
    phonon.run_band_structure(paths, path_connections=connections, labels=labels)
    bands = phonon.band_structure
    return BandStructure(
        qpoints=[np.array(q) for q in bands.qpoints],
        distances=[np.array(d) for d in bands.distances],
        frequencies=[np.array(f) for f in bands.frequencies],
        labels=list(bands.labels or labels),
        connections=list(bands.path_connections),
    )


def seekpath_path(phonon) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str], list[bool]]:  # noqa: ANN001
    """Segment end points (reduced coordinates of phonopy's primitive cell), labels in
    phonopy's compressed form (one per junction of connected segments) and connections.

    seekpath gives q in reduced coordinates of its standardised primitive cell, whose
    Cartesian frame is the input's rotated by ``rotation_matrix`` R (v_std = R v): the
    Cartesian q of the input frame is R^T q_std, and its reduced coordinates in
    phonopy's primitive cell are a_i . q (a_i the primitive vectors, no 2 pi).
    """
    try:
        import seekpath
    except ImportError as err:
        raise MissingDependencyError(
            f"the band path needs seekpath ({err}); pip install seekpath"
        ) from err
    primitive = phonon.primitive
    path = seekpath.get_path(
        (np.asarray(primitive.cell), np.asarray(primitive.scaled_positions), primitive.numbers)
    )
    rotation = np.asarray(path["rotation_matrix"])
    reciprocal_std = np.asarray(path["reciprocal_primitive_lattice"]) / (2 * np.pi)  # rows
    lattice = np.asarray(primitive.cell)

    def convert(label: str) -> np.ndarray:
        q_std = np.asarray(path["point_coords"][label]) @ reciprocal_std  # Cartesian, std
        return np.round(lattice @ (rotation.T @ q_std), 10) + 0.0  # no -0.0 or 1e-17

    segments = path["path"]
    ends = [(convert(a), convert(b)) for a, b in segments]
    connections = [segments[k][1] == segments[k + 1][0] for k in range(len(segments) - 1)]
    connections.append(False)
    labels = [_tex_label(segments[0][0])]
    for k, (_, b) in enumerate(segments):
        labels.append(_tex_label(b))
        if not connections[k] and k + 1 < len(segments):
            labels.append(_tex_label(segments[k + 1][0]))
    return ends, labels, connections


def _tex_label(name: str) -> str:
    """seekpath's "GAMMA", "X_1" -> phonopy-style labels ("$\\Gamma$", "$\\mathrm{X_1}$")."""
    return "$\\Gamma$" if name == "GAMMA" else f"$\\mathrm{{{name}}}$"


@dataclass
class Mesh:
    """Irreducible mesh q-points (primitive reduced coordinates), weights, frequencies
    (THz), the total DOS (states/THz per primitive cell) on ``dos_frequencies`` and the
    mesh numbers."""

    qpoints: np.ndarray
    weights: np.ndarray
    frequencies: np.ndarray
    dos_frequencies: np.ndarray
    dos: np.ndarray
    numbers: list[int]


def mesh_and_dos(phonon, mesh: float | Sequence[int] = 30.0) -> Mesh:  # noqa: ANN001
    """``run_mesh`` (``mesh``: three numbers, or a length in A for phonopy's automatic
    mesh; Gamma-centred, so that the point group reduces it) and ``run_total_dos``."""
    phonon.run_mesh(mesh, is_gamma_center=True)
    phonon.run_total_dos()
    result, dos = phonon.mesh, phonon.total_dos
    return Mesh(
        qpoints=np.array(result.qpoints),
        weights=np.array(result.weights),
        frequencies=np.array(result.frequencies),
        dos_frequencies=np.array(dos.frequency_points),
        dos=np.array(dos.dos),
        numbers=[int(k) for k in result.mesh_numbers],
    )


def thermal_properties(
    phonon,  # noqa: ANN001 (after mesh_and_dos)
    t_min: float = 0.0,
    t_max: float = 1000.0,
    t_step: float = 50.0,
) -> dict[str, list[float]]:
    """Harmonic thermal properties on the mesh, per primitive cell: temperature_K,
    free_energy_eV (Helmholtz, with the zero-point energy), entropy_eV_per_K,
    heat_capacity_eV_per_K (constant volume). Imaginary modes and the three acoustic
    modes at Gamma (zero frequency) are left out."""
    phonon.run_thermal_properties(
        t_min=t_min, t_max=t_max, t_step=t_step, exclude_gamma_acoustic=True
    )
    tp = phonon.thermal_properties
    per_kelvin = EV_PER_KJ_MOL / 1000.0  # J/K/mol -> eV/K
    return {
        "temperature_K": np.asarray(tp.temperatures, dtype=float).tolist(),
        "free_energy_eV": (np.asarray(tp.free_energy) * EV_PER_KJ_MOL).tolist(),
        "entropy_eV_per_K": (np.asarray(tp.entropy) * per_kelvin).tolist(),
        "heat_capacity_eV_per_K": (np.asarray(tp.heat_capacity) * per_kelvin).tolist(),
    }
