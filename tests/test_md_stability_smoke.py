"""Smoke tests of benchmarks/md_stability.py on tiny runs (analytic potentials, float64)."""

import itertools
import json

import numpy as np
import pytest
import torch
from ase.build import molecule
from support.benchmarks import load_benchmark

from mlip.potentials import HarmonicBonds, LennardJones

md_stability = load_benchmark("md_stability")


pytestmark = pytest.mark.usefixtures("one_thread")


def ethanol():
    return molecule("CH3CH2OH")


def network(atoms, k=20.0, scale=1.0, soft_atom=None, k_soft=1.0):
    """Springs between all atom pairs at their current lengths times ``scale``.

    ``soft_atom`` keeps only one weak spring (k_soft, to its nearest atom), so that it
    can leave the molecule when hot.
    """
    pairs, lengths, ks = [], [], []
    pos = atoms.positions
    for a, b in itertools.combinations(range(len(atoms)), 2):
        if soft_atom in (a, b):
            continue
        pairs.append((a, b))
        lengths.append(scale * np.linalg.norm(pos[a] - pos[b]))
        ks.append(k)
    if soft_atom is not None:
        d = np.linalg.norm(pos - pos[soft_atom], axis=1)
        d[soft_atom] = np.inf
        partner = int(np.argmin(d))
        pairs.append((partner, soft_atom))
        lengths.append(d[partner])
        ks.append(k_soft)
    return HarmonicBonds(pairs, ks, lengths)


def test_covalent_pairs_of_ethanol():
    atoms = ethanol()
    bonds, others = md_stability.covalent_pairs(atoms)
    assert len(bonds) == 8  # C-C, C-O, O-H, 5 C-H
    assert len(bonds) + len(others) == 9 * 8 // 2
    kinds = sorted("".join(sorted(atoms.get_chemical_symbols()[i] for i in b)) for b in bonds)
    assert kinds == ["CC", "CH", "CH", "CH", "CH", "CH", "CO", "HO"]
    with pytest.raises(ValueError, match="pbc"):
        md_stability.covalent_pairs(molecule("H2O", cell=[5, 5, 5], pbc=True))


def test_elastic_network_is_stable():
    atoms = ethanol()
    result = md_stability.run_stability(
        network(atoms), atoms, replicas=4, ps=0.1, chunk_ps=0.05, warmup_ps=0.0
    )
    s = result.summary()
    assert s["stable_fraction"] == 1.0 and not any(r.broken for r in result.replicas)
    assert s["min_ps_reached"] == pytest.approx(0.1)
    assert result.atom_steps == 4 * 9 * 200
    # 500 K Maxwell-Boltzmann start at the minimum: equipartition takes half of the
    # kinetic energy, the thermostat brings it back; the average stays in this band.
    assert 200.0 < s["mean_temperature_K"] < 700.0
    assert s["atom_steps_per_second"] > 0
    assert "stable fraction      1.000 (4/4)" in md_stability.format_table(result)


def test_stretched_bonds_are_detected():
    atoms = ethanol()
    bonds, _ = md_stability.covalent_pairs(atoms)
    d0 = np.linalg.norm(atoms.positions[bonds[:, 0]] - atoms.positions[bonds[:, 1]], axis=1)
    model = HarmonicBonds([tuple(b) for b in bonds], 20.0, 2.0 * d0)  # pulls bonds to 2 d0
    result = md_stability.run_stability(model, atoms, replicas=3, ps=0.1, chunk_ps=0.05)
    assert result.summary()["stable_fraction"] == 0.0
    for r in result.replicas:
        assert r.broken and r.reason.startswith("bond stretched")
        assert 0.0 < r.break_ps < 0.05  # an H bond stretches 1.5x within a few fs
        assert r.ps_reached == r.break_ps
        distance = float(r.reason.split(" at ")[1].split()[0])
        assert distance > 1.5 * 0.95  # shortest bond of ethanol is ~0.97 A (O-H)
    assert result.ps_run == pytest.approx(0.05)  # all broken: stopped after the first chunk


def test_explosion_is_caught():
    atoms = ethanol()
    model = LennardJones(epsilon=1.0, sigma=3.4, r_max=5.0)  # r^-12 wall at bond lengths
    result = md_stability.run_stability(model, atoms, replicas=2, ps=0.05, chunk_ps=0.05)
    assert [r.reason for r in result.replicas] == ["engine explosion"] * 2
    assert all(r.break_ps == 0.0 for r in result.replicas)


def test_hot_replicas_break_cold_ones_continue(tmp_path):
    atoms = ethanol()
    assert atoms.get_chemical_symbols()[8] == "H"
    model = network(atoms, soft_atom=8, k_soft=1.0)  # a loosely held H: breaks when hot
    temps = [50000.0, 1.0, 50000.0, 1.0, 1.0]
    result = md_stability.run_stability(
        model, atoms, replicas=5, temperature=temps, ps=0.1, chunk_ps=0.02, warmup_ps=0.0
    )
    broken = [r.broken for r in result.replicas]
    assert broken == [True, False, True, False, False]
    for r in result.replicas:
        if r.broken:
            assert r.break_ps < 0.1 and r.ps_reached == r.break_ps
            assert r.temperature_K > 1000.0  # sampled while intact, before removal
        else:  # continued after the hot ones were removed, with their own data
            assert r.ps_reached == pytest.approx(0.1)
            assert r.temperature_K < 10.0
    assert result.summary()["stable_fraction"] == pytest.approx(0.6)
    out = tmp_path / "r.json"
    out.write_text(json.dumps(result.to_json()))
    data = json.loads(out.read_text())
    assert data["summary"]["stable"] == 3 and len(data["replicas"]) == 5


def test_wall_clock_budget_stops_cleanly():
    atoms = ethanol()
    result = md_stability.run_stability(
        network(atoms), atoms, replicas=2, ps=1000.0, chunk_ps=1.0, max_wall_minutes=0.01
    )
    assert result.stopped_by_wall_clock and 0 < result.ps_run < 1000.0
    assert all(not r.broken and r.ps_reached == result.ps_run for r in result.replicas)
    assert "stopped by the wall-clock budget" in result.notes[0]


def test_cli_with_a_saved_model(tmp_path, capsys):
    from mlip.model import MLIPModel, ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(num_channels=4, num_layers=1, radial_hidden=8, readout_hidden=4)
    path = tmp_path / "m.pt"
    MLIPModel(config).double().save(path)
    xyz = tmp_path / "ethanol.xyz"
    ethanol().write(xyz)
    out = tmp_path / "s.json"
    argv = ["--model", str(path), "--structure", str(xyz), "--replicas", "2", "--ps", "0.01"]
    assert md_stability.main([*argv, "--chunk-ps", "0.005", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["summary"]["replicas"] == 2 and data["settings"]["n_atoms"] == 9
    assert "stable fraction" in capsys.readouterr().out
