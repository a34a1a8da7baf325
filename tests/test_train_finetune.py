"""Fine-tuning: ``model.init_from`` starts from a saved model's weights and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import make_h5, quiet_run_config

from mlip.errors import CheckpointError
from mlip.model import MLIPModel, ModelConfig, load_model
from mlip.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    return make_h5(str(tmp_path_factory.mktemp("data") / "d.h5"), n_mol=12, n_cryst=0)


def config(h5, out, **overrides):
    values = {
        "data.train_size": 8,
        "data.valid_size": 4,
        "data.batch_size": 4,
        "model.num_channels": 4,
        "model.num_layers": 1,
        "loss.hessian_weight": 10.0,
        "train.max_epochs": 1,
        "train.tensorboard": False,
        "train.device": "cpu",
    }
    return quiet_run_config(h5, out, values, **overrides)


def saved_model(tmp_path, elements, seed=0):
    torch.manual_seed(seed)
    model = MLIPModel(ModelConfig(atomic_numbers=elements, num_channels=8, num_layers=2))
    model.set_atomic_energies({z: -1.5 * z for z in elements})
    model.set_scale(0.37)
    path = tmp_path / "start.pt"
    model.save(path)
    return path


def test_init_from_keeps_weights_statistics_and_architecture(h5, tmp_path):
    start = saved_model(tmp_path, [1, 6, 8])
    trainer = Trainer(config(h5, tmp_path / "ft", **{"model.init_from": str(start)}))
    reference = load_model(start)
    # architecture of the file, not of the config's model section (4 channels, 1 layer)
    assert trainer.model.config == reference.config
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(before[key], value, rtol=0, atol=0)
    trainer.fit()
    after = trainer.model.state_dict()
    assert float(after["scale"]) == pytest.approx(0.37)  # statistics not refitted
    energies = after["atomic_energies"].numpy()
    np.testing.assert_allclose(energies, [-1.5, -9.0, -12.0])
    moved = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert moved, "training changed no weight"


def test_init_from_errors_name_the_file(h5, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        Trainer(config(h5, tmp_path / "a", **{"model.init_from": str(tmp_path / "none.pt")}))
    start = saved_model(tmp_path, [1, 6])  # the data also holds O
    with pytest.raises(ValueError, match=r"start\.pt has no element\(s\) O"):
        Trainer(config(h5, tmp_path / "b", **{"model.init_from": str(start)}))
