"""NVE with a (briefly) trained mlip model on ethanol conserves energy, to second order in dt."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ase import Atoms

from mlip.data.hdf5 import H5Dataset
from mlip.md import ForceField, Simulation, from_atoms, make_integrator, maxwell_boltzmann
from mlip.model import load_model
from mlip.train import run_training
from mlip.train.config import load_config

DATA = os.path.join(os.path.dirname(__file__), "..", "datasets", "ethanol_small.h5")


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    overrides = {
        "data.paths": [DATA],
        "data.groups": ["ethanol"],
        "data.train_size": 60,
        "data.valid_size": 20,
        "data.test_size": 0,
        "data.batch_size": 16,
        "model.num_channels": 8,
        "model.l_max": 1,
        "train.max_epochs": 3,
        "train.max_time": None,
        "train.dtype": "float64",
        "train.out": str(out / "run"),
        "train.progress": False,
        "train.evaluate": False,
        "loss.hessian_weight": 0.0,
        "optim.lr": 0.01,
    }
    run_training(load_config(None, overrides))
    model = load_model(out / "run" / "model.pt", dtype=torch.float64)
    yield model
    torch.set_num_threads(threads)


def test_nve_conserves_energy_with_trained_model(trained_model):
    minimum = H5Dataset(DATA, groups=["ethanol_minimum"])[0]
    atoms = Atoms(numbers=minimum.atomic_numbers, positions=minimum.positions)
    fluctuation = {}
    for dt in (0.25, 0.125):
        state = from_atoms(atoms, replicas=2, temperature=300.0)
        state = maxwell_boltzmann(state, generator=torch.Generator().manual_seed(0))
        sim = Simulation(state, ForceField(trained_model, skin=1.0), make_integrator("nve", dt))
        totals, kinetic = [], []
        for _ in range(int(50.0 / dt)):  # 50 fs
            sim.advance(1)
            k = sim.state.kinetic_energy()
            totals.append((k + sim.state.energy).numpy())
            kinetic.append(k.numpy())
        totals = np.array(totals)  # (steps, replicas)
        assert np.isfinite(totals).all()
        fluctuation[dt] = totals.std(axis=0)
        assert (fluctuation[dt] < 1e-2 * np.mean(kinetic, axis=0)).all()
    ratio = fluctuation[0.25] / fluctuation[0.125]
    assert ((ratio > 3.0) & (ratio < 5.0)).all(), ratio
