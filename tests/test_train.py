"""Training building blocks: config, split, statistics, schedules, EMA, atomic files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml

from mlip import fileio
from mlip.data.graph import Structure, neighbor_list
from mlip.errors import CheckpointError
from mlip.model import Architecture
from mlip.train import checkpoint as ckpt
from mlip.train.config import (
    TrainConfig,
    load_config,
    parse_assignment,
    read_yaml,
    resolve_config,
)
from mlip.train.initial_model import build_model
from mlip.train.optim import EMA, LRSchedule
from mlip.train.split import make_split, read_split_file, resolve_size
from mlip.train.statistics import compute_statistics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- config -------------------------------------------------------------------------------


def test_shipped_default_yaml_equals_the_built_in_defaults():
    values = read_yaml(os.path.join(ROOT, "configs", "default.yaml"))
    assert TrainConfig.from_dict(values) == TrainConfig()


def test_the_model_section_is_the_architecture_with_its_defaults():
    """Same names and defaults as mlip.model.Architecture, but for the width, which the
    trainer chooses (None: mlip.train.recipe); nothing else set silently."""
    section = TrainConfig().model
    assert section.num_channels is None
    for name in Architecture.field_names():
        if name != "num_channels":
            assert getattr(section, name) == getattr(Architecture(), name), name
    config = TrainConfig()
    config.model.num_channels = 24
    model = build_model(config, [1, 6, 8])
    assert model.config.hidden_l_max == section.hidden_l_max
    assert model.config.num_channels == 24


def test_unknown_keys_are_errors_naming_them():
    """No aliases of earlier key names: model.channels is not model.num_channels."""
    with pytest.raises(ValueError, match="unknown config key 'model.channels'"):
        TrainConfig.from_dict({"model": {"channels": 12}}, "x.yaml")
    with pytest.raises(ValueError, match="unknown config key 'model.extra'"):
        TrainConfig.from_dict({"model": {"extra": {"correlation": 1}}}, "x.yaml")
    with pytest.raises(ValueError, match="optim.scheduler must be one of"):
        load_config(None, {"data.paths": "x.h5", "optim.scheduler": "cosine_time"})


def test_shipped_accuracy_yaml_is_the_accurate_model():
    """configs/accuracy.yaml (read by three benchmarks) loads and differs where it says."""
    config = load_config(os.path.join(ROOT, "configs", "accuracy.yaml"), {"data.paths": "x.h5"})
    assert (config.model.num_channels, config.model.l_max, config.model.hidden_l_max) == (64, 2, 2)
    assert config.optim.scheduler == "cosine" and config.loss.hessian_weight == 0.0
    assert config.data.batch_size == 5 and config.train.dtype == "float64"
    assert config.train.max_time == 1200.0 and config.loss.forces_weight == 100.0
    assert not config.loss.normalize  # its weights are in physical units


def test_yaml_then_overrides_then_validation(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"loss": {"forces_weight": 20}, "model": {"r_max": 4.0}}))
    config = load_config(path, {"loss.hessian_weight": 300, "data.paths": "x.h5"})
    assert config.loss.forces_weight == 20.0 and isinstance(config.loss.forces_weight, float)
    assert config.loss.hessian_weight == 300.0 and config.model.r_max == 4.0
    assert config.data.paths == ["x.h5"]  # a single string becomes a list
    assert config.optim.lr == TrainConfig().optim.lr  # untouched keys keep the defaults
    assert parse_assignment("optim.clip_grad=null") == ("optim.clip_grad", None)

    with pytest.raises(ValueError, match="loss.forcs_weight"):
        load_config(None, {"loss.forcs_weight": 1})
    with pytest.raises(ValueError, match="max_epochs = 'ten'"):
        load_config(None, {"train.max_epochs": "ten"})
    with pytest.raises(ValueError, match="probe_kind"):
        load_config(None, {"loss.probe_kind": "rademacher"})
    with pytest.raises(ValueError, match="hessian_weight must be >= 0"):
        load_config(None, {"loss.hessian_weight": -1})
    path.write_text("- a list\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_config(path)


def test_resume_config_starts_from_the_runs_saved_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    saved = load_config(None, {"loss.hessian_weight": 321.0, "train.out": str(run),
                               "data.paths": ["x.h5"]})  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump(saved.to_dict()))
    config = resolve_config(None, {"train.out": str(run), "train.resume": True})
    assert config.loss.hessian_weight == 321.0 and config.train.resume


# -- split ----------------------------------------------------------------------------------


def test_split_is_reproducible_disjoint_and_seed_dependent():
    a = make_split(100, 0.7, 10, None, seed=3)
    b = make_split(100, 0.7, 10, None, seed=3)
    c = make_split(100, 0.7, 10, None, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])
    assert [len(a[k]) for k in ("train", "valid", "test")] == [70, 10, 20]
    assert len(np.unique(np.concatenate(list(a.values())))) == 100
    assert len(make_split(100, 50, 10, 5)["test"]) == 5
    assert resolve_size(0.25, 10, "x") == 2 and resolve_size(3, 10, "x") == 3


def test_split_errors_name_the_bad_size():
    with pytest.raises(ValueError, match="train split is empty"):
        make_split(10, 0, 5)
    with pytest.raises(ValueError, match="valid split is empty"):
        make_split(10, 5, 0.01)
    with pytest.raises(ValueError, match="exceeds the 10 conformers"):
        make_split(10, 8, 5)


def test_split_file_is_validated_with_errors_naming_the_file_and_value(tmp_path):
    path = tmp_path / "split.json"

    def read(payload, n=10):
        path.write_text(json.dumps(payload))
        return read_split_file(path, n)

    split = read({"train": [4, 0, 2], "valid": [9], "meta": {"note": "ignored"}})
    assert split["train"].tolist() == [0, 2, 4] and split["test"].tolist() == []
    bad = [
        ({"train": [0, 10], "valid": [1]}, r"train index 10 outside 0..9"),
        ({"train": [0, -1], "valid": [1]}, r"train index -1 outside"),
        ({"train": [0, 1], "valid": [1, 2]}, r"index 1 is in both train and valid"),
        ({"train": [0, 1], "valid": [2], "test": [2]}, r"index 2 is in both valid and test"),
        ({"train": [3, 3], "valid": [2]}, r"train holds index 3 twice"),
        ({"train": [0, 1.5], "valid": [2]}, r"train\[1\] = 1.5 is not an integer"),
        ({"train": [0, 1]}, r"no 'valid' list"),
        ({"train": [], "valid": [1]}, r"the train list is empty"),
        ({"train": [0], "validation": [1]}, r"unknown keys \['validation'\]"),
        ({"train": "0-5", "valid": [1]}, r"'train' must be a list"),
    ]
    for payload, message in bad:
        with pytest.raises(ValueError, match=message) as info:
            read(payload)
        assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="split file not found"):
        read_split_file(tmp_path / "missing.json", 10)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid JSON split file"):
        read_split_file(path, 10)


def test_trainer_uses_the_split_file_and_records_it(tmp_path):
    from support import ELEMENTS, PairModel, make_h5

    from mlip.train.trainer import Trainer

    h5 = make_h5(str(tmp_path / "d.h5"), n_mol=20)
    wanted = {"train": [1, 5, 6, 8, 13], "valid": [0, 19], "test": [2, 3]}
    (tmp_path / "mine.json").write_text(json.dumps(wanted))
    values = {
        "data.paths": [h5],
        "data.groups": None,
        "data.split_file": str(tmp_path / "mine.json"),
        "train.out": str(tmp_path / "run"),
        "train.progress": False,
        "train.tensorboard": False,
    }
    trainer = Trainer(load_config(None, values), model=PairModel(ELEMENTS))
    assert {k: v.tolist() for k, v in trainer.split.items()} == wanted
    saved = json.loads((tmp_path / "run" / "split.json").read_text())
    assert {k: saved[k] for k in wanted} == wanted
    assert saved["meta"]["split_file"] == str(tmp_path / "mine.json")
    assert trainer.steps_per_epoch == 1  # 5 training conformers, batch 5
    (tmp_path / "bad.json").write_text(json.dumps({"train": [1, 20], "valid": [0]}))
    values.update({"data.split_file": str(tmp_path / "bad.json"), "train.out": str(tmp_path / "b")})
    with pytest.raises(ValueError, match=r"bad.json: train index 20 outside 0..19"):
        Trainer(load_config(None, values), model=PairModel(ELEMENTS))


# -- statistics --------------------------------------------------------------------------


def test_reference_energies_scale_and_neighbours():
    """Least squares recovers per-element energies when compositions determine them."""
    rng = np.random.default_rng(0)
    e0 = {1: -13.6, 6: -1029.0, 8: -2041.0}
    structures = []
    for numbers in ([6, 1, 1, 1, 1], [8, 1, 1], [6, 8], [6, 6, 1, 1], [8, 8]) * 2:
        z = np.array(numbers)
        positions = rng.uniform(0, 3, (len(z), 3))  # all pairs within r_max = 6 A
        forces = rng.normal(0, 0.5, (len(z), 3))
        energy = sum(e0[int(x)] for x in z) + rng.normal(0, 1e-9)
        structures.append(Structure(z, positions, energy=energy, forces=forces))
    stats = compute_statistics(structures, [1, 6, 8], r_max=6.0)
    for z, e in e0.items():
        assert stats.atomic_energies[z] == pytest.approx(e, abs=1e-6)
    all_forces = np.concatenate([s.forces for s in structures])
    assert stats.scale == pytest.approx(np.sqrt(np.mean(all_forces**2)))
    edges = sum(len(neighbor_list(s.positions, None, None, 6.0)[0]) for s in structures)
    assert stats.avg_num_neighbors == pytest.approx(edges / sum(s.num_atoms for s in structures))
    with pytest.raises(ValueError, match="Z=9"):
        compute_statistics([Structure(np.array([9]), np.zeros((1, 3)), energy=0.0)], [1], 2.0)


# -- schedules and EMA ------------------------------------------------------------------------


def _optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_warmup_cosine_and_plateau_schedules():
    """The cosine follows the fraction of the budget the trainer reports (``progress``)."""
    opt = _optimizer()
    cosine = LRSchedule(opt, "cosine", warmup_steps=10, min_lr=0.0)
    assert cosine.lr == pytest.approx(0.01)
    for _ in range(5):
        cosine.step(progress=0.0)
    assert cosine.lr == pytest.approx(0.01 + 0.99 * 0.5)  # linear warm-up
    for _ in range(55):
        cosine.step()  # progress kept
    assert cosine.lr == pytest.approx(1.0)
    cosine.step(progress=0.5)
    assert cosine.lr == pytest.approx(0.5)  # half-way through the cosine
    cosine.step(progress=1.0)
    assert cosine.lr == pytest.approx(0.0, abs=1e-12)
    restored = LRSchedule(_optimizer(), "cosine", warmup_steps=10, min_lr=0.0)
    restored.load_state_dict({**cosine.state_dict(), "progress": 0.5})
    assert restored.lr == pytest.approx(0.5)
    with pytest.raises(ValueError, match="scheduler must be one of"):
        LRSchedule(_optimizer(), "auto")

    plateau = LRSchedule(_optimizer(), "plateau", patience=2, factor=0.5, min_lr=0.1)
    for loss in (1.0, 0.9, 0.95, 0.95, 0.95):  # three epochs without improvement > patience
        plateau.epoch_end(loss)
    assert plateau.lr == pytest.approx(0.5)
    state = plateau.state_dict()
    for _ in range(20):
        plateau.epoch_end(1.0)
    assert plateau.lr == pytest.approx(0.1)  # floor
    restored = LRSchedule(_optimizer(), "plateau", patience=2, factor=0.5, min_lr=0.1)
    restored.load_state_dict(state)
    assert restored.lr == pytest.approx(0.5)


def test_ema_follows_the_update_rule_and_swaps_weights():
    model = torch.nn.Linear(2, 1, bias=False).double()
    ema = EMA(model, decay=0.9)
    start = model.weight.detach().clone()
    expected = start.clone()
    for n in range(3):
        with torch.no_grad():
            model.weight.add_(1.0)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * model.weight.detach()
        ema.update()
    current = model.weight.detach().clone()
    with ema.averaged():
        assert torch.allclose(model.weight, expected)
    assert torch.equal(model.weight, current)


# -- atomic files and checkpoints --------------------------------------------------------------


def test_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "last.ckpt"
    fileio.atomic_torch_save({"value": torch.tensor(1.0)}, path)

    def torn(handle):
        handle.write(b"partial bytes of a new checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fileio.atomic_write(path, torn)
    assert torch.load(path, weights_only=True)["value"] == 1.0
    assert os.listdir(tmp_path) == ["last.ckpt"]  # no temporary file left behind


def test_corrupt_or_foreign_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path):
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="last.ckpt: corrupt"):
        ckpt.load_checkpoint(path)
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not an mlip training checkpoint"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "missing.ckpt")


def test_command_line_options_map_to_config_keys():
    from mlip.cli import build_parser
    from mlip.cli.train import overrides_from_args

    args = build_parser().parse_args(
        ["train", "--data", "a.h5", "b.h5", "--max-time", "none", "--hessian-probes", "4",
         "--set", "optim.min_lr=1e-7", "--resume", "--train-size", "0.5",
         "--split-file", "s.json", "--valid-every", "3"]
    )  # fmt: skip
    overrides = overrides_from_args(args)
    assert overrides == {
        "data.paths": ["a.h5", "b.h5"],
        "data.groups": None,  # other files: all groups unless --group
        "data.train_size": 0.5,
        "data.split_file": "s.json",
        "train.valid_every": 3,
        "train.max_time": None,
        "loss.hessian_probes": 4,
        "optim.min_lr": 1e-7,
        "train.resume": True,
    }
    config = load_config(None, overrides)
    assert config.train.max_time is None and config.loss.hessian_probes == 4
    args = build_parser().parse_args(["train", "--group", "ethanol", "--no-progress"])
    assert overrides_from_args(args) == {"data.groups": ["ethanol"], "train.progress": False}
