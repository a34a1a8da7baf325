"""The trainer's choice of the ZBL pair term (``model.pair_repulsion: null``): on for
periodic training data, off for molecules (mlip.train.recipe)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from support import make_h5, quiet_run_config

from mlip.data.hdf5 import H5Dataset
from mlip.train import recipe
from mlip.train.trainer import Trainer

SMALL = {"model.num_layers": 1, "model.l_max": 1, "model.hidden_l_max": 0,
         "model.num_channels": 4, "model.radial_hidden": 8, "model.readout_hidden": 4,
         "data.batch_size": 4, "loss.hessian_weight": 0.0, "train.max_epochs": 1}  # fmt: skip


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    return make_h5(str(tmp_path_factory.mktemp("data") / "d.h5"), n_mol=12, n_cryst=12)


def indices(dataset: H5Dataset, periodic: int, molecular: int) -> np.ndarray:
    """``periodic`` conformers of the crystal group and ``molecular`` of the molecules."""
    kinds = {True: [], False: []}
    for i in range(len(dataset)):
        pbc = dataset.group_of(i).pbc
        kinds[pbc is not None and bool(pbc.any())].append(i)
    return np.array(kinds[True][:periodic] + kinds[False][:molecular], dtype=int)


@pytest.mark.parametrize(
    ("periodic", "molecular", "on"), [(0, 10, False), (10, 0, True), (5, 5, True), (4, 6, False)]
)
def test_on_when_most_training_conformers_are_periodic(h5, periodic, molecular, on):
    dataset = H5Dataset([h5])
    config = quiet_run_config(h5, "unused", SMALL)
    assert config.model.pair_repulsion is None  # the default is the rule
    reason = recipe.resolve_pair_repulsion(config, dataset, indices(dataset, periodic, molecular))
    assert config.model.pair_repulsion is on
    state = "on" if on else "off"
    total = periodic + molecular
    assert reason == f"{state} ({periodic} of {total} training conformers periodic)"


@pytest.mark.parametrize(("group", "on"), [("cryst", True), ("mol", False)])
def test_the_run_builds_and_records_its_choice(h5, tmp_path, group, on):
    out = tmp_path / group
    values = {**SMALL, "data.groups": [group], "data.train_size": 8, "data.valid_size": 2}
    trainer = Trainer(quiet_run_config(h5, out, values))
    assert (trainer.model.repulsion is not None) is on
    with open(out / "config.yaml") as handle:
        assert yaml.safe_load(handle)["model"]["pair_repulsion"] is on  # a resume reads it


def test_a_given_setting_is_kept(h5, tmp_path):
    values = {**SMALL, "data.groups": ["cryst"], "data.train_size": 8, "data.valid_size": 2,
              "model.pair_repulsion": False}  # fmt: skip
    trainer = Trainer(quiet_run_config(h5, tmp_path / "run", values))
    assert trainer.model.repulsion is None and trainer.pair_repulsion_choice is None
