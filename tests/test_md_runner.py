"""run_md front end: trajectory layout, CSV log, restart, explosion detection, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from support import small_model

from mlip.cli import main as cli_main
from mlip.data.hdf5 import FORMAT_NAME, FORMAT_VERSION, H5Dataset
from mlip.md import (
    ExplosionMonitor,
    MDExplosionError,
    from_atoms,
    read_restart,
    run_md,
)
from mlip.potentials import LennardJones

LJ = dict(epsilon=0.0104, sigma=3.4, r_max=7.0)
ETHANOL_H5 = Path(__file__).resolve().parents[1] / "datasets" / "ethanol_small.h5"


pytestmark = pytest.mark.usefixtures("one_thread")


def argon():
    return [
        bulk("Ar", "fcc", a=5.26, cubic=True) * (2, 1, 1),
        ase.Atoms("Ar3", [[0, 0, 0], [3.8, 0, 0], [1.9, 3.3, 0]]),
    ]


def test_trajectory_layout_and_csv(tmp_path):
    traj, log = tmp_path / "md.h5", tmp_path / "md.csv"
    kwargs = dict(temperature=60, timestep=5, steps=20, replicas=2, log_every=5, progress=False)
    result = run_md(LennardJones(**LJ), argon(), "nvt-langevin", traj=traj, log=log, **kwargs)
    state = result.state
    assert state.n_systems == 4 and state.step == 20
    with h5py.File(traj, "r") as f:
        assert f.attrs["format"] == FORMAT_NAME and f.attrs["version"] == FORMAT_VERSION
        assert f.attrs["energy_unit"] == "eV" and f.attrs["length_unit"] == "Angstrom"
        assert len(f) == 4
        for s, name in enumerate(state.names):
            g = f[name]
            n = int(state.num_atoms[s])
            assert g["positions"].shape == (5, n, 3) and g["forces"].shape == (5, n, 3)
            assert g["velocities"].shape == (5, n, 3) and g["energy"].shape == (5,)
            assert list(g["step"][()]) == [0, 5, 10, 15, 20]
            assert ("cell" in g) == bool(state.pbc[s].any())
            rows = state.system_idx == s
            np.testing.assert_allclose(g["positions"][-1], state.positions[rows].numpy())
            np.testing.assert_allclose(g["velocities"][-1], state.velocities[rows].numpy())
            assert g["energy"][-1] == pytest.approx(float(state.energy[s]))
    # the package's reader accepts the file: 4 groups x 5 frames
    dataset = H5Dataset(traj)
    assert len(dataset) == 20
    dataset.close()
    with open(log) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 * 4
    last = [r for r in rows if r["step"] == "20"]
    for r in last:
        s = int(r["system"])
        assert float(r["potential_eV"]) == pytest.approx(float(state.energy[s]))
        total = float(r["potential_eV"]) + float(r["kinetic_eV"])
        assert float(r["total_eV"]) == pytest.approx(total)
        assert r["pressure_GPa"] == ""  # NVT computes no stress
        if bool(state.pbc[s].all()):  # the argon crystal: V = det(cell)
            volume = abs(float(torch.linalg.det(state.cell[s])))
            assert float(r["volume_A3"]) == pytest.approx(volume)
        else:
            assert r["volume_A3"] == ""
    np.testing.assert_allclose(result.temperature[-1], state.kinetic_temperature().numpy())


def test_restart_continues_the_trajectory(tmp_path):
    traj = tmp_path / "nve.h5"
    model = LennardJones(**LJ)
    kwargs = dict(temperature=80, timestep=4, log_every=5, progress=False, seed=3)
    straight = run_md(model, argon(), "nve", steps=40, **kwargs).state
    run_md(model, argon(), "nve", steps=20, traj=traj, **kwargs)
    atoms, names, step, time, heat, chains = read_restart(traj)
    assert step == 20 and time == pytest.approx(80.0) and len(atoms) == 2
    assert chains is None and np.allclose(heat, 0.0)  # NVE: no thermostat
    resumed = run_md(model, None, "nve", steps=20, restart=traj, **kwargs).state
    assert resumed.step == 40 and resumed.names == names
    torch.testing.assert_close(resumed.positions, straight.positions, rtol=0, atol=1e-9)
    torch.testing.assert_close(resumed.momenta, straight.momenta, rtol=0, atol=1e-9)
    with h5py.File(traj, "r") as f:
        assert list(f[names[0]]["step"][()]) == [0, 5, 10, 15, 20, 25, 30, 35, 40]


@pytest.mark.parametrize("ensemble", ["nvt-nhc", "npt-bussi"])
def test_restart_keeps_thermostat_state_and_conserved_energy(tmp_path, ensemble):
    """Nose-Hoover chains continue exactly; the conserved energy has no jump (heat kept)."""
    traj = tmp_path / "md.h5"
    model = LennardJones(**LJ)
    systems = argon()[:1] if ensemble.startswith("npt") else argon()
    kwargs = dict(temperature=60, timestep=4, log_every=5, progress=False, seed=3, tau=40.0)
    straight = run_md(model, systems, ensemble, steps=40, **kwargs)
    run_md(model, systems, ensemble, steps=20, traj=traj, **kwargs)
    resumed = run_md(model, None, ensemble, steps=20, restart=traj, **kwargs)
    np.testing.assert_allclose(resumed.conserved[0], straight.conserved[4], rtol=0, atol=1e-10)
    if ensemble == "nvt-nhc":  # deterministic: the continuation is the straight run
        a, b = resumed.state, straight.state
        torch.testing.assert_close(a.thermostat, b.thermostat, rtol=0, atol=1e-9)
        torch.testing.assert_close(a.positions, b.positions, rtol=0, atol=1e-9)
        np.testing.assert_allclose(resumed.conserved, straight.conserved[4:], rtol=0, atol=1e-9)


def colliding_dimer() -> ase.Atoms:
    """Two argon atoms 8 A apart flying at each other at 0.05 A/fs each."""
    atoms = ase.Atoms("Ar2", [[0, 0, 0], [8.0, 0, 0]])
    velocity = 0.05 / ase.units.fs  # A/fs -> ASE units
    atoms.set_velocities([[velocity, 0, 0], [-velocity, 0, 0]])
    return atoms


def test_explosion_stops_and_keeps_trajectory(tmp_path):
    traj = tmp_path / "boom.h5"
    calm = ase.Atoms("Ar2", [[0, 0, 0], [3.8, 0, 0]])
    with pytest.raises(MDExplosionError) as info:
        run_md(LennardJones(**LJ), [calm, colliding_dimer()], "nve", timestep=2, steps=200,
               traj=traj, log_every=10, progress=False, max_force=2.0)  # fmt: skip
    err = info.value
    assert err.system == 1 and "system 1" in str(err) and f"step {err.step}" in str(err)
    assert "max_force" in str(err)
    # the atoms meet after ~ (8 - 3) / 0.1 = 50 fs = 25 steps
    assert 15 < err.step < 40
    with h5py.File(traj, "r") as f:
        steps = f[err.name]["step"][()]
        assert len(steps) >= 2 and steps[-1] < err.step
        assert np.isfinite(f[err.name]["positions"][()]).all()


def test_monitor_flags_non_finite_forces_and_min_distance():
    state = from_atoms([ase.Atoms("Ar2", [[0, 0, 0], [3, 0, 0]])] * 2).replace(step=7)
    forces = torch.zeros_like(state.positions)
    forces[3, 1] = float("nan")
    monitor = ExplosionMonitor(max_force=100.0)
    monitor.reset(state)
    monitor.update(state.replace(forces=forces))
    with pytest.raises(MDExplosionError, match="system 1 .* step 7: a force is not finite"):
        monitor.raise_if_exploded(state)
    with pytest.raises(MDExplosionError, match="closer than min_distance"):
        run_md(LennardJones(**LJ), ase.Atoms("Ar2", [[0, 0, 0], [3.0, 0, 0]]), steps=50,
               timestep=2, progress=False, min_distance=3.5, max_force=1e9)  # fmt: skip


def test_cli_md_runs_and_restarts(tmp_path, capsys):
    model_path = tmp_path / "model.pt"
    small_model(atomic_numbers=(1, 6, 8), r_max=3.0).save(model_path)
    structure = tmp_path / "ethanol.xyz"
    ase.io.write(structure, molecule("CH3CH2OH"))
    traj = tmp_path / "md.h5"
    args = ["md", str(model_path), str(structure), "--ensemble", "nvt-bussi", "--temperature",
            "200", "--timestep", "0.25", "--steps", "6", "--replicas", "2", "--traj", str(traj),
            "--log-every", "3", "--no-progress"]  # fmt: skip
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "2 systems, 18 atoms, 6 steps" in out and "atom-steps/s" in out
    assert cli_main(["md", str(model_path), "--restart", str(traj), "--steps", "3",
                     "--timestep", "0.25", "--log-every", "3", "--no-progress"]) == 0  # fmt: skip
    with h5py.File(traj, "r") as f:
        assert [list(f[k]["step"][()]) for k in f] == [[0, 3, 6, 9]] * 2
    with open(tmp_path / "md.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4 * 2
    assert cli_main(["md", str(model_path), f"{ETHANOL_H5}:ethanol:2", "--steps",
                     "2", "--timestep", "0.25", "--no-progress"]) == 0  # fmt: skip
