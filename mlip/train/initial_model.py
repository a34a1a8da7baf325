"""The model a training run starts from: built from the config, or loaded to fine-tune."""

from __future__ import annotations

import os

import torch

from mlip.errors import CheckpointError
from mlip.train.config import TrainConfig


def build_model(config: TrainConfig, elements: list[int]) -> torch.nn.Module:
    """The :class:`mlip.model.MLIPModel` of the config's ``model`` section (a width not
    chosen yet, ``num_channels: None``, is the architecture's default)."""
    from mlip.model import Architecture, MLIPModel, ModelConfig

    values = {name: getattr(config.model, name) for name in Architecture.field_names()}
    if values["num_channels"] is None:
        values["num_channels"] = Architecture.num_channels
    return MLIPModel(ModelConfig(atomic_numbers=list(elements), **values))


def load_initial_model(path: str, elements: list[int]) -> torch.nn.Module:
    """The model of ``model.init_from`` (a :meth:`mlip.model.MLIPModel.save` file) for fine-tuning.

    Raises :class:`~mlip.errors.CheckpointError` for a missing or corrupt file and
    ``ValueError`` when the data holds elements the model was not built for.
    """
    from ase.data import chemical_symbols

    from mlip.model import load_model

    if not os.path.exists(path):
        raise CheckpointError(f"model.init_from: model file not found: {path}")
    model = load_model(path)
    missing = sorted(set(elements) - set(model.atomic_numbers))
    if missing:
        raise ValueError(
            f"model.init_from: {path} has no element(s) "
            f"{', '.join(chemical_symbols[z] for z in missing)} of the training data; "
            f"it knows {', '.join(chemical_symbols[z] for z in model.atomic_numbers)}"
        )
    return model
