"""Vibrational analysis against analytic spring models, SI constants and ASE."""

from __future__ import annotations

import json
import os
import sys
import types

import ase.io
import numpy as np
import pytest
import scipy.constants as si
import scipy.linalg
from ase import Atoms
from ase.build import bulk
from ase.constraints import FixAtoms
from ase.units import kB
from scipy.spatial.transform import Rotation

from mlip.calculator import MLIPCalculator
from mlip.data.graph import Structure
from mlip.data.writer import write_mlip_hdf5
from mlip.potentials import HarmonicBonds, LennardJones
from mlip.vib import (
    CM1_PER_SQRT_EV_A2_AMU,
    analyse_atoms,
    compare_modes,
    harmonic_analysis,
    plot_spectrum,
    read_reference,
    read_structure,
    relax,
    thermochemistry,
)

WATER_BONDS = [(0, 1), (0, 2), (1, 2)]
WATER_K = [52.0, 52.0, 6.0]  # eV/A^2: O-H, O-H, H...H
CO2_K = 100.0  # eV/A^2 per C-O spring


SMALL = os.path.join(os.path.dirname(__file__), "..", "datasets", "ethanol_small.h5")


def wavenumber_si(eigenvalue: np.ndarray) -> np.ndarray:
    """cm^-1 of a mass-weighted eigenvalue in eV/A^2/amu, from SI constants (not ASE)."""
    omega = np.sqrt(np.asarray(eigenvalue) * si.e / (1e-20 * si.atomic_mass))  # rad/s
    return omega / (2 * np.pi * si.c) / 100.0


def water(rotation: np.ndarray | None = None, shift: np.ndarray | None = None) -> Atoms:
    positions = np.array([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])
    if rotation is not None:
        positions = positions @ rotation.T
    if shift is not None:
        positions = positions + shift
    return Atoms("OH2", positions=positions)


def water_model(atoms: Atoms) -> HarmonicBonds:
    """Springs at their rest lengths in ``atoms`` (so ``atoms`` is the minimum)."""
    d0 = [atoms.get_distance(a, b) for a, b in WATER_BONDS]
    return HarmonicBonds(WATER_BONDS, WATER_K, d0)


def co2() -> tuple[Atoms, HarmonicBonds]:
    axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    atoms = Atoms("CO2", positions=np.array([0.0, 1.16, -1.16])[:, None] * axis + 0.3)
    return atoms, HarmonicBonds([(0, 1), (0, 2)], CO2_K, 1.16)


def test_conversion_constant() -> None:
    assert CM1_PER_SQRT_EV_A2_AMU == pytest.approx(521.4709, rel=1e-6)
    assert CM1_PER_SQRT_EV_A2_AMU == pytest.approx(float(wavenumber_si(1.0)), rel=1e-6)


def test_water_springs_match_generalised_eigenproblem() -> None:
    atoms = water()
    model = water_model(atoms)
    result = analyse_atoms(atoms, MLIPCalculator(model))
    hessian = model.analytic_hessian(atoms.positions)  # closed form, not autograd
    masses = np.repeat(atoms.get_masses(), 3)
    eigenvalues = scipy.linalg.eigh(hessian, np.diag(masses), eigvals_only=True)
    reference = wavenumber_si(eigenvalues[-3:])  # the other six are exactly zero here
    assert result.geometry == "nonlinear" and result.num_modes == 3
    np.testing.assert_allclose(result.frequencies, reference, rtol=1e-6)
    assert not result.imaginary.any()
    # modes are orthonormal in the mass-weighted metric and free of rigid motions
    q = result.mass_weighted_modes
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)
    m = atoms.get_masses()
    for mode in result.modes:
        np.testing.assert_allclose(m @ mode, 0.0, atol=1e-12)  # no centre-of-mass motion


def test_linear_co2_has_four_modes_with_analytic_stretches() -> None:
    atoms, model = co2()
    result = analyse_atoms(atoms, MLIPCalculator(model))
    m_c, m_o = atoms.get_masses()[:2]
    symmetric = wavenumber_si(CO2_K / m_o)
    antisymmetric = wavenumber_si(CO2_K * (1 / m_o + 2 / m_c))
    assert result.geometry == "linear" and result.num_modes == 4
    np.testing.assert_allclose(np.abs(result.frequencies[:2]), 0.0, atol=1e-3)  # no bending spring
    np.testing.assert_allclose(result.frequencies[2:], [symmetric, antisymmetric], rtol=1e-6)
    # the symmetric stretch leaves carbon at rest
    np.testing.assert_allclose(result.modes[2][0], 0.0, atol=1e-10)


def test_agrees_with_ase_vibrations_data() -> None:
    atoms = water()
    calc = MLIPCalculator(water_model(atoms))
    result = analyse_atoms(atoms, calc)
    data = result.to_vibrations_data(atoms)
    np.testing.assert_allclose(data.get_hessian_2d(), calc.get_hessian(atoms), atol=1e-12)
    ase_frequencies = np.sort(data.get_frequencies().real)[-3:]
    np.testing.assert_allclose(result.frequencies, ase_frequencies, rtol=1e-8)
    # a real xTB Hessian (FD, not exactly projected): ASE's unprojected modes agree closely
    ethanol, hessian = read_structure(f"{SMALL}:ethanol_minimum")
    reference = harmonic_analysis(hessian, ethanol.get_masses(), ethanol.positions)
    ase_ethanol = np.sort(reference.to_vibrations_data(ethanol).get_frequencies().real)[6:]
    np.testing.assert_allclose(reference.frequencies, ase_ethanol, atol=1e-2)


def test_rotation_and_translation_leave_frequencies_unchanged() -> None:
    base = water()
    model = water_model(base)
    expected = analyse_atoms(base, MLIPCalculator(model)).frequencies
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    moved = water(rotation, np.array([3.0, -2.0, 7.5]))
    np.testing.assert_allclose(
        analyse_atoms(moved, MLIPCalculator(model)).frequencies, expected, rtol=1e-9
    )


def test_projection_at_non_stationary_geometry() -> None:
    """Stretched springs: rotations are not zero modes of H; Eckart projection still gives 3."""
    atoms = water()
    d0 = [0.9 * atoms.get_distance(a, b) for a, b in WATER_BONDS]
    hessian = MLIPCalculator(HarmonicBonds(WATER_BONDS, WATER_K, d0)).get_hessian(atoms)
    result = harmonic_analysis(hessian, atoms.get_masses(), atoms.positions)
    assert result.num_modes == 3 and np.isfinite(result.frequencies).all()
    unprojected = harmonic_analysis(hessian, atoms.get_masses(), atoms.positions, periodic=True)
    assert unprojected.num_modes == 6  # translations only: rotations now carry curvature


def test_zero_point_energy_and_thermochemistry() -> None:
    atoms = water()
    result = analyse_atoms(atoms, MLIPCalculator(water_model(atoms)))
    zpe_si = 0.5 * np.sum(si.h * si.c * 100.0 * result.frequencies) / si.e  # eV
    assert result.zero_point_energy == pytest.approx(zpe_si, rel=1e-6)
    # at 10 K the vibrations are frozen: H = ZPE + 3/2 kT (trans) + 3/2 kT (rot) + kT (pV)
    thermo = thermochemistry(result, atoms, temperature=10.0)
    assert thermo["zero_point_energy"] == pytest.approx(result.zero_point_energy, rel=1e-12)
    assert thermo["enthalpy"] == pytest.approx(result.zero_point_energy + 4 * kB * 10.0, rel=1e-9)
    assert thermo["n_imaginary"] == 0
    warm = thermochemistry(result, atoms, temperature=298.15)
    assert warm["entropy"] > thermo["entropy"] > 0
    assert warm["gibbs_energy"] < warm["enthalpy"]


def test_small_systems_and_periodic() -> None:
    single = harmonic_analysis(np.zeros((3, 3)), [4.0], np.zeros((1, 3)))
    assert single.num_modes == 0 and single.geometry == "monatomic"
    k, m = 30.0, np.array([1.008, 18.998])  # H-F spring
    dimer = Atoms("HF", positions=[[0, 0, 0], [0.3, 0.4, 0.8]])
    spring = HarmonicBonds([(0, 1)], k, dimer.get_distance(0, 1))
    result = analyse_atoms(dimer, MLIPCalculator(spring))
    reduced = m[0] * m[1] / m.sum()
    assert result.geometry == "linear"
    np.testing.assert_allclose(result.frequencies, wavenumber_si(k / reduced), rtol=1e-6)
    crystal = bulk("Ar", "fcc", a=5.26, cubic=True)
    lj = LennardJones(epsilon=0.0104, sigma=3.4, r_max=8.5)
    solid = analyse_atoms(crystal, MLIPCalculator(lj))
    assert solid.geometry == "periodic" and solid.num_modes == 3 * len(crystal) - 3
    thermo = thermochemistry(solid, crystal, temperature=50.0)
    assert thermo["helmholtz_energy"] < thermo["internal_energy"]


def test_imaginary_modes_are_flagged() -> None:
    atoms = water()
    hessian = -MLIPCalculator(water_model(atoms)).get_hessian(atoms)
    result = harmonic_analysis(hessian, atoms.get_masses(), atoms.positions)
    assert result.imaginary.all() and (result.frequencies < 0).all()
    assert result.zero_point_energy == 0.0
    assert "i" in result.table().splitlines()[1]
    assert thermochemistry(result, atoms, temperature=300.0)["n_imaginary"] == 3


def test_compare_json_table_and_plot(tmp_path) -> None:
    atoms = water()
    hessian = MLIPCalculator(water_model(atoms)).get_hessian(atoms)
    reference = harmonic_analysis(hessian, atoms.get_masses(), atoms.positions)
    stiffer = harmonic_analysis(1.02 * hessian, atoms.get_masses(), atoms.positions)
    comparison = compare_modes(stiffer, reference)
    np.testing.assert_array_equal(stiffer.compare(reference).errors, comparison.errors)
    expected = reference.frequencies * (np.sqrt(1.02) - 1)
    np.testing.assert_allclose(comparison.errors, expected, rtol=1e-8)
    assert comparison.mae == pytest.approx(expected.mean(), rel=1e-8)
    assert comparison.max_error == pytest.approx(expected.max(), rel=1e-8)
    assert "MAE" in comparison.table()
    text = reference.to_json(tmp_path / "water.json")
    assert json.loads(text)["frequencies"] == pytest.approx(reference.frequencies.tolist())
    _, again = read_reference(str(tmp_path / "water.json"))
    np.testing.assert_allclose(again.frequencies, reference.frequencies, rtol=1e-12)
    assert len(reference.table().splitlines()) == 3 + 2
    plot_spectrum(reference.frequencies, tmp_path / "spectrum.png")
    assert (tmp_path / "spectrum.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="3 predicted modes"):
        compare_modes(reference, analyse_atoms(*co2()[:1], MLIPCalculator(co2()[1])))


def test_relax_with_newton_steps_reaches_tight_minimum() -> None:
    atoms = water()
    model = water_model(atoms)
    rest = [atoms.get_distance(a, b) for a, b in WATER_BONDS]
    atoms.rattle(0.05, seed=2)
    outcome = relax(atoms, MLIPCalculator(model), fmax=1e-8)
    assert outcome.converged and outcome.newton_steps >= 1
    np.testing.assert_allclose([atoms.get_distance(a, b) for a, b in WATER_BONDS], rest, atol=1e-8)
    # with an atom fixed, Newton moves only the free atoms
    cluster = bulk("Ar", "fcc", a=5.26, cubic=True)[:4].copy()
    cluster.pbc = False
    cluster.rattle(0.1, seed=3)
    cluster.set_constraint(FixAtoms(indices=[0]))
    anchor = cluster.positions[0].copy()
    lj = LennardJones(epsilon=0.0104, sigma=3.4, r_max=8.5)
    outcome = relax(cluster, MLIPCalculator(lj), fmax=1e-6)
    assert outcome.converged and outcome.newton_steps >= 1, outcome
    np.testing.assert_array_equal(cluster.positions[0], anchor)


def test_result_keeps_its_own_copy_of_the_inputs() -> None:
    """An ASE relaxation moves atoms.positions in place: the result must not follow."""
    atoms = water()
    model = water_model(atoms)
    result = analyse_atoms(atoms, MLIPCalculator(model))
    before = result.positions.copy()
    hessian = result.hessian.copy()
    atoms.rattle(0.1, seed=4)
    relax(atoms, MLIPCalculator(model), fmax=1e-6)
    assert np.abs(atoms.positions - before).max() > 1e-3  # the atoms did move
    np.testing.assert_array_equal(result.positions, before)
    masses, positions = atoms.get_masses(), atoms.get_positions()
    original = positions.copy()
    direct = harmonic_analysis(hessian, masses, positions)
    positions += 1.0
    masses[0] = 99.0
    np.testing.assert_array_equal(direct.positions, original)
    assert direct.masses[0] == pytest.approx(15.999, rel=1e-3)


def test_read_structure_specs(tmp_path) -> None:
    atoms, hessian = read_structure(f"{SMALL}:ethanol_minimum:0")
    assert len(atoms) == 9 and hessian.shape == (27, 27)
    with pytest.raises(ValueError, match="ethanol_minimum.*out of range"):
        read_structure(f"{SMALL}:ethanol_minimum:5")
    with pytest.raises(ValueError, match="needs a group"):
        read_structure(SMALL)
    with pytest.raises(ValueError, match="no reference Hessian"):
        read_reference(f"{SMALL}:ethanol:3")  # conformer 3 carries no Hessian


def _write_h5(path, atoms: Atoms, hessian: np.ndarray) -> None:  # noqa: ANN001
    reference = Structure.from_atoms(atoms)
    reference.energy, reference.hessian = 0.0, hessian
    write_mlip_hdf5(path, {"water_minimum": [reference]})


def _cli_water(tmp_path, monkeypatch) -> tuple:  # noqa: ANN001
    """The water minimum and its bond model; ``mlip vib`` will load the model from tmp_path/model.pt
    and read a rattled copy from tmp_path/water.xyz."""
    atoms = water()
    model = water_model(atoms)
    fake = types.ModuleType("mlip.model")
    fake.load_model = lambda path, device="cpu", dtype=None: model
    monkeypatch.setitem(sys.modules, "mlip.model", fake)
    (tmp_path / "model.pt").write_bytes(b"")
    displaced = atoms.copy()
    displaced.rattle(0.02, seed=1)
    displaced.write(tmp_path / "water.xyz")
    return atoms, model


def test_cli_end_to_end(tmp_path, monkeypatch, capsys) -> None:
    from mlip.cli import main

    atoms, _ = _cli_water(tmp_path, monkeypatch)
    d0 = [atoms.get_distance(a, b) for a, b in WATER_BONDS]
    softer = HarmonicBonds(WATER_BONDS, np.array(WATER_K) * 0.98, d0).analytic_hessian(
        atoms.positions
    )
    _write_h5(tmp_path / "ref.h5", atoms, softer)
    argv = ["vib", str(tmp_path / "model.pt"), str(tmp_path / "water.xyz"), "--optimize"]
    argv += ["--reference", f"{tmp_path / 'ref.h5'}:water_minimum", "--temperature", "300"]
    argv += ["--json", str(tmp_path / "out.json"), "--plot", str(tmp_path / "out.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "relaxation converged" in out and "zero-point energy" in out
    assert "gibbs_energy" in out and "MAE" in out
    saved = json.loads((tmp_path / "out.json").read_text())
    mae = float(out.split("MAE ")[1].split()[0])
    expected = np.mean(np.array(saved["frequencies"]) * (1 - np.sqrt(0.98)))
    assert mae == pytest.approx(expected, rel=1e-3)
    assert (tmp_path / "out.png").exists()


def test_cli_warns_off_minimum_and_analyses_selected_atoms(tmp_path, monkeypatch, capsys) -> None:
    from mlip.cli import main

    _, model = _cli_water(tmp_path, monkeypatch)
    argv = ["vib", str(tmp_path / "model.pt"), str(tmp_path / "water.xyz")]
    assert main(argv + ["--indices", "1", "2", "--json", str(tmp_path / "h.json")]) == 0
    captured = capsys.readouterr()
    assert "not at a stationary point" in captured.err and "threshold 0.001 eV/A" in captured.err
    assert "--optimize" in captured.err
    assert "partial analysis of 2" in captured.out
    saved = json.loads((tmp_path / "h.json").read_text())
    assert saved["geometry"] == "partial" and saved["indices"] == [1, 2]
    assert len(saved["frequencies"]) == 6
    # the same two H atoms against the block of the analytic Hessian, O held fixed
    displaced = ase.io.read(tmp_path / "water.xyz")  # the positions as written
    block = model.analytic_hessian(displaced.positions)[3:, 3:]
    expected = harmonic_analysis(
        block, displaced.get_masses()[1:], displaced.positions[1:], indices=[1, 2]
    )
    np.testing.assert_allclose(saved["frequencies"], expected.frequencies, rtol=1e-8)
    assert main(argv + ["--optimize"]) == 0
    assert "stationary" not in capsys.readouterr().err
    assert main(argv + ["--indices", "3"]) == 1
    assert "[3] out of range for 3 atoms" in capsys.readouterr().err
