"""Phonons from the exact Hessian: analytic spring crystal, phonopy's displacement method,
the sum rule, the CLI on the shipped Cu model and bad input.

The analytic model is fcc with nearest-neighbour central springs: Lennard-Jones with its
minimum r0 = 2^(1/6) sigma at the nearest-neighbour distance (no tension) and a cutoff
between the first and second shells, so each pair is a spring k = V''(r0) = 72 eps/r0^2.
Its dynamical matrix D(q) = (k/m) sum_nn (1 - cos q.r) r^ r^ gives, at X = 2pi/a (1,0,0),
w^2 = 8k/m (longitudinal) and 4k/m (twice); at L = pi/a (1,1,1), 8k/m and 2k/m (twice).
"""

from __future__ import annotations

import json
import os
import sys
import types

import numpy as np
import pytest
import scipy.constants as si
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from support import small_model

from mlip.calculator import MLIPCalculator
from mlip.integrations import phonopy as ph
from mlip.potentials import LennardJones

A = 3.61  # A, fcc lattice constant
R0 = A / np.sqrt(2)  # nearest-neighbour distance
EPS = 0.05  # eV
CU_TINY = os.path.join(os.path.dirname(__file__), "..", "datasets", "cu_tiny.pt")


def thz(eigenvalue: float) -> float:
    """Frequency (THz) of a mass-weighted eigenvalue in eV/A^2/amu, from SI constants."""
    return float(np.sqrt(eigenvalue * si.e / (1e-20 * si.atomic_mass)) / (2 * np.pi) / 1e12)


def springs() -> LennardJones:
    return LennardJones(epsilon=EPS, sigma=R0 / 2 ** (1 / 6), r_max=1.2 * R0)


def analytic_x_and_l() -> np.ndarray:
    mass = bulk("Cu").get_masses()[0]
    k = 72 * EPS / R0**2
    x = [thz(4 * k / mass)] * 2 + [thz(8 * k / mass)]
    l_point = [thz(2 * k / mass)] * 2 + [thz(8 * k / mass)]
    return np.array([x, l_point])


@pytest.mark.parametrize("method", ph.METHODS)
def test_spring_crystal_x_and_l_are_analytic(method) -> None:
    phonon = ph.make_phonopy(bulk("Cu", "fcc", a=A), (3, 3, 3))
    info = ph.exact_force_constants(phonon, MLIPCalculator(springs()), method=method)
    assert info.irreducible_atoms == [0]
    assert info.products == (1 if method == "directions" else 3)
    frequencies = ph.frequencies_at(phonon, [[0.0, 0.5, 0.5], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(frequencies, analytic_x_and_l(), rtol=1e-6)
    # q in the conventional cell: X = (1, 0, 0), L = (1/2, 1/2, 1/2) there too
    cubic = ph.make_phonopy(bulk("Cu", "fcc", a=A, cubic=True), (2, 2, 2))
    ph.exact_force_constants(cubic, MLIPCalculator(springs()), method=method)
    q = ph.primitive_qpoints(cubic, [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(ph.frequencies_at(cubic, q), analytic_x_and_l(), rtol=1e-6)
    np.testing.assert_allclose(ph.unitcell_qpoints(cubic, q), [[1, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def cu_model():  # noqa: ANN201
    return small_model([29])


@pytest.mark.parametrize(
    "cell",
    [
        bulk("Cu", "fcc", a=3.61, cubic=True),
        bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)[1:],  # a vacancy: 5 irreducible atoms
    ],
    ids=["fcc", "vacancy"],
)
def test_exact_force_constants_equal_displacements(cell, cu_model) -> None:
    """Both methods agree to rounding; phonopy's +/-0.005 A displacements differ from
    them by the finite-difference error, O(d^2): 3e-5 and 8e-5 of the largest constant
    here (at 0.01 A the vacancy cell reached 3.1e-4: the model's ZBL term bends sharply
    just inside its 2.64 A cutoff, where the neighbours sit)."""
    supercell = (2, 2, 2) if len(cell) == 4 else (1, 1, 1)
    calc = MLIPCalculator(cu_model)
    constants = {}
    for method in ph.METHODS:
        phonon = ph.make_phonopy(cell, supercell)
        info = ph.exact_force_constants(phonon, calc, method=method, symmetrize=False)
        constants[method] = phonon.force_constants.copy()
        assert info.sum_rule_residual < 1e-10  # raw rows: translations change no force
    reference = ph.make_phonopy(cell, supercell)
    fd = ph.displacement_force_constants(reference, calc, distance=0.005, plusminus=True)
    scale = np.abs(constants["rows"]).max()
    np.testing.assert_allclose(constants["directions"], constants["rows"], atol=1e-10 * scale)
    difference = np.abs(constants["rows"] - reference.force_constants).max()
    assert 1e-9 * scale < difference < 3e-4 * scale, difference / scale
    if len(cell) > 4:
        assert len(info.irreducible_atoms) == 5 and info.products == 15
        assert (
            fd.products > ph.exact_force_constants(ph.make_phonopy(cell, supercell), calc).products
        )


def test_acoustic_sum_rule_and_gamma(cu_model) -> None:
    phonon = ph.make_phonopy(bulk("Cu", "fcc", a=3.61, cubic=True), (2, 2, 2))
    ph.exact_force_constants(phonon, MLIPCalculator(cu_model))
    fc = phonon.force_constants  # (N, N, 3, 3) after phonopy's symmetrisation
    assert np.abs(fc.sum(axis=1)).max() < 1e-10 * np.abs(fc).max()
    assert np.abs(fc.sum(axis=0)).max() < 1e-10 * np.abs(fc).max()
    gamma = ph.frequencies_at(phonon, [[0.0, 0.0, 0.0]])[0]
    np.testing.assert_allclose(gamma[:3], 0.0, atol=1e-5)


def fake_model_loader(monkeypatch, model) -> None:  # noqa: ANN001
    import mlip.model as real

    fake = types.ModuleType("mlip.model")
    fake.load_model = lambda path, device="cpu", dtype=None: model
    fake.interaction_layers = real.interaction_layers  # the calculator's receptive field
    monkeypatch.setitem(sys.modules, "mlip.model", fake)


def test_cli_on_spring_crystal(tmp_path, monkeypatch, capsys) -> None:
    from mlip.cli import main

    fake_model_loader(monkeypatch, springs())
    (tmp_path / "springs.pt").write_bytes(b"")
    bulk("Cu", "fcc", a=A, cubic=True).write(tmp_path / "cu.cif")
    out, png = tmp_path / "out" / "cu.json", tmp_path / "out" / "cu.png"
    argv = ["phonons", str(tmp_path / "springs.pt"), str(tmp_path / "cu.cif")]
    argv += [
        "--supercell",
        "2",
        "2",
        "2",
        "--qpoints",
        "1 0 0; 0.5 0.5 0.5",
        "--mesh",
        "8",
        "8",
        "8",
    ]
    argv += ["--tmax", "300", "--tstep", "100", "--json", str(out), "--plot", str(png)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "no imaginary modes" in captured.out and "warning" not in captured.err
    assert "1 exact Hessian-vector products" in captured.out
    saved = json.loads(out.read_text())
    assert saved["qpoints"] == [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5]]
    np.testing.assert_allclose(saved["frequencies_THz"], analytic_x_and_l(), rtol=1e-6)
    thermal = saved["thermal"]
    assert thermal["temperature_K"] == [0.0, 100.0, 200.0, 300.0]
    assert thermal["entropy_eV_per_K"][0] == 0.0 and thermal["heat_capacity_eV_per_K"][-1] > 0
    # the harmonic limit: F(T) -> ZPE at 0 K, then falls; Cv below 3 k_B per atom
    assert np.all(np.diff(thermal["free_energy_eV"]) < 0)
    assert max(thermal["heat_capacity_eV_per_K"]) < 3 * si.k / si.e
    assert saved["imaginary"] == [] and saved["dos"]["mesh"] == [8, 8, 8]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.parent.iterdir()) == ["cu.json", "cu.png"]


@pytest.fixture(scope="module")
def emt_reference() -> tuple[float, np.ndarray]:
    """EMT's relaxed primitive cell length and its X and L frequencies (THz)."""
    atoms = bulk("Cu", "fcc", a=3.61)
    atoms.calc = EMT()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4)
    phonon = ph.make_phonopy(atoms, (3, 3, 3))
    ph.displacement_force_constants(phonon, EMT())
    return float(atoms.cell.lengths()[0]), ph.frequencies_at(
        phonon, [[0.0, 0.5, 0.5], [0.5, 0.5, 0.5]]
    )


def test_cli_on_shipped_copper_model(tmp_path, capsys, emt_reference) -> None:
    """datasets/cu_tiny.pt (EMT copper, 3 minutes of training): relaxed, its X and L
    phonons within 10 % of EMT's, no imaginary modes, real thermal functions."""
    from mlip.cli import main

    assert os.path.getsize(CU_TINY) < 200_000
    strained = bulk("Cu", "fcc", a=3.65)
    strained.write(tmp_path / "cu.xyz")
    argv = ["phonons", CU_TINY, str(tmp_path / "cu.xyz"), "--supercell", "3", "3", "3"]
    argv += ["--qpoints", "0 0.5 0.5; 0.5 0.5 0.5", "--json", str(tmp_path / "cu.json")]
    assert main(argv) == 0  # not relaxed: a warning naming the residual stress
    assert "residual stress" in capsys.readouterr().err
    assert main(argv + ["--relax"]) == 0
    captured = capsys.readouterr()
    assert "relaxation converged" in captured.out and "stationary" not in captured.err
    saved = json.loads((tmp_path / "cu.json").read_text())
    length, reference = emt_reference
    np.testing.assert_allclose(saved["frequencies_THz"], reference, rtol=0.1)
    assert saved["imaginary"] == [] and saved["force_constants"]["products"] == 1
    assert len(saved["thermal"]["free_energy_eV"]) == 21


def test_bad_input_is_named_and_writes_nothing(tmp_path, monkeypatch, capsys, cu_model) -> None:
    from mlip.cli import main

    fake_model_loader(monkeypatch, cu_model)
    (tmp_path / "m.pt").write_bytes(b"")
    out = tmp_path / "never.json"
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.3]])
    molecule.write(tmp_path / "dimer.xyz")
    salt = bulk("NaCl", "rocksalt", a=5.64)
    salt.write(tmp_path / "salt.cif")
    base = ["phonons", str(tmp_path / "m.pt")]
    tail = ["--supercell", "2", "2", "2", "--json", str(out)]
    assert main(base + [str(tmp_path / "dimer.xyz")] + tail) == 1
    err = capsys.readouterr().err
    assert "dimer.xyz: phonons need a crystal with a 3D periodic cell" in err
    assert main(base + [str(tmp_path / "salt.cif")] + tail) == 1
    assert (
        "salt.cif: element(s) Na, Cl not known to the model; it knows Cu" in capsys.readouterr().err
    )
    assert main(base + [str(tmp_path / "dimer.xyz"), "--supercell", "0", "1", "1"]) == 1
    assert "supercell must be three integers >= 1" in capsys.readouterr().err
    assert (
        main(base + [str(tmp_path / "dimer.xyz"), "--supercell", "1", "1", "1", "--qpoints", "0 0"])
        == 1
    )
    assert "expected three numbers" in capsys.readouterr().err
    assert not out.exists()


def test_thin_supercell_warning_names_both_lengths(tmp_path, cu_model) -> None:
    from mlip.phonons import PhononConfig, run_phonons

    bulk("Cu", "fcc", a=3.61).write(tmp_path / "cu.cif")
    lines = []
    config = PhononConfig(structure=str(tmp_path / "cu.cif"), supercell=(2, 2, 2), mesh=(4, 4, 4))
    result = run_phonons(config, calculator=MLIPCalculator(cu_model), log=lines.append)
    (warning,) = [w for w in result.warnings if "interaction range" in w]
    assert "4.17 A" in warning and "10.00 A (num_layers 2 x r_max 5 A)" in warning
    assert any("interaction range" in line for line in lines)


def test_benchmark_script_smoke() -> None:
    """benchmarks/phonons.py on the spring crystal: the three methods agree."""
    from support.benchmarks import load_benchmark

    bench = load_benchmark("phonons")
    assert [len(c.repeat(s)) for c, s in bench.systems().values()] == [108, 107]
    cell = bulk("Cu", "fcc", a=A, cubic=True)
    row = bench.time_system(MLIPCalculator(springs()), cell, (2, 2, 2), repeats=1)
    assert [row[m][2] for m in ("directions", "rows", "displacements")] == [1, 3, 1]
    assert row["max_dnu"] < 1e-3 * row["fmax_THz"]


def test_band_path_labels_follow_the_cell_setting() -> None:
    """The same orthorhombic crystal with its axes permuted (and phonopy's primitive cell
    the input cell): each labelled point has the same frequencies in both settings."""
    lj = LennardJones(epsilon=0.05, sigma=2.5, r_max=5.5)
    by_label = []
    for lengths in [(3.0, 3.4, 3.8), (3.8, 3.0, 3.4)]:
        cell = Atoms("Ar", cell=np.diag(lengths), pbc=True)
        phonon = ph.make_phonopy(cell, (3, 3, 3), primitive_matrix=np.eye(3))
        ph.exact_force_constants(phonon, MLIPCalculator(lj))
        bands = ph.band_structure(phonon, npoints=5)
        points = {}
        for frequencies, (start, end) in zip(
            bands.frequencies, bands.segment_labels(), strict=True
        ):
            points[start], points[end] = frequencies[0], frequencies[-1]
        by_label.append(points)
    assert sorted(by_label[0]) == ["Gamma", "R", "S", "T", "U", "X", "Y", "Z"]
    for label, frequencies in by_label[0].items():
        np.testing.assert_allclose(by_label[1][label], frequencies, atol=1e-6, err_msg=label)
