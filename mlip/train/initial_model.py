"""The model a training run starts from: built from the config, or loaded to fine-tune."""

from __future__ import annotations

import os

import torch

from mlip.errors import CheckpointError
from mlip.train.config import TrainConfig


def build_model(config: TrainConfig, elements: list[int]) -> torch.nn.Module:
    """The :class:`mlip.model.MLIPModel` of the config's ``model`` section."""
    from mlip.model import MLIPModel, ModelConfig

    section = config.model
    values = {
        "atomic_numbers": list(elements),
        "r_max": section.r_max,
        "l_max": section.l_max,
        "num_channels": section.channels,
        "num_layers": section.layers,
        "num_radial": section.num_radial,
        "hidden_l_max": min(section.l_max, 1),
        **section.extra,
    }
    return MLIPModel(ModelConfig.from_dict(values))


def load_initial_model(path: str, elements: list[int]) -> torch.nn.Module:
    """The model of ``model.init_from`` (a :func:`mlip.model.save` file) for fine-tuning.

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
