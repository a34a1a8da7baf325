"""Typed training configuration: nested dataclasses, YAML loading, dotted overrides.

A config has five sections (``data``, ``model``, ``loss``, ``optim``, ``train``). It is
read from a YAML file (missing keys take the defaults below), then overridden key by
key with dotted names (``{"loss.forces_weight": 50}``), then validated. The resolved
config is written next to the run as ``config.yaml``. Units: eV, Angstrom, seconds.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlip.model import Architecture
from mlip.train.optim import KINDS


@dataclass
class DataConfig:
    """Which data, how it is split and batched.

    Sizes are counts (integers >= 0) or fractions of the selected conformers (0 < x < 1);
    ``test_size: null`` takes all conformers left after train and valid. ``split_file``
    (a JSON file with "train"/"valid"/"test" index lists over the selected conformers,
    like a run's ``split.json``) gives the split explicitly; the sizes are then unused.
    ``groups: null`` selects every group of the files.
    """

    paths: list[str] = field(default_factory=list)
    groups: list[str] | None = None
    train_size: float = 0.8
    valid_size: float = 0.1
    test_size: float | None = None
    split_file: str | None = None  # explicit split (JSON); overrides the sizes
    batch_size: int = 10
    valid_batch_size: int = 32
    cache: bool = True  # hold the train/valid conformers in memory
    allow_missing_labels: bool = False  # drop a weighted term for groups that lack its label


@dataclass
class ModelSection(Architecture):
    """The model to train: the fields of :class:`mlip.model.Architecture` (same names,
    same defaults; r_max in Angstrom) and two training-only keys.

    ``num_channels: null`` (the default) lets the trainer choose the width from the
    measured cost of a step on the data and the time budget (:mod:`mlip.train.recipe`);
    the chosen width is written to the run's ``config.yaml``.
    ``atomic_energies`` (eV per element, e.g. ``{1: -13.6}``) replaces the least-squares
    fit. ``init_from``: a model file to start from (fine-tuning, e.g. adding Hessian
    labels to a model trained on energies and forces): its architecture, weights,
    reference energies and scale are kept, and the architecture keys are not used.
    """

    num_channels: int | None = None  # None: chosen by the trainer (mlip.train.recipe)
    atomic_energies: dict[int, float] | None = None
    init_from: str | None = None


@dataclass
class LossConfig:
    """Weights of the Sobolev loss (see :mod:`mlip.loss`); 0 switches a term off.

    With ``normalize`` (the default) each term's mean squared error is divided by the
    square of its label scale, so the weights are dimensionless and no label is starved
    by its units: the RMS of the training labels for forces (eV/A), stress (eV/A^3) and
    the reference H v (eV/A^2); for the per-atom energy the force RMS times 1 A (so that
    energy_weight 0.01 is the energy:force ratio 1:100 in (eV/atom)^2 : (eV/A)^2 of
    MACE and NequIP, whatever the data's temperature). Without ``normalize`` the weights
    carry units: (eV/atom)^-2, (eV/A)^-2, (eV/A^3)^-2, (eV/A^2)^-2.
    """

    energy_weight: float = 0.01
    forces_weight: float = 1.0
    hessian_weight: float = 3.0
    stress_weight: float = 1.0
    normalize: bool = True
    # stage two (MACE's "SWA" stage): from this fraction of the budget on (without a
    # budget: from the first validation plateau) the energy weight is stage_two_energy_weight
    # and the best model is tracked anew; None: one stage
    stage_two_start: float | None = None
    stage_two_energy_weight: float = 1.0
    hessian_probes: int = 1
    hessian_every: int = 1  # the Hessian term on every k-th training step
    # frequency-scaled normal modes: soft torsions weigh like stiff stretches
    # (validation frequency error 2x lower than gaussian probes; README Results)
    probe_kind: str = "frequencies"  # see mlip.loss.PROBE_KINDS
    huber_delta: float | None = None  # None: squared error


@dataclass
class OptimConfig:
    """Optimiser, learning-rate schedule, EMA and gradient clipping.

    ``scheduler: auto`` is a cosine decay over the budget (``train.max_time`` and/or
    ``train.max_epochs``, whichever runs out first) and, without a budget, the plateau
    schedule (the run then stops at a validation plateau, ``train.patience``).
    """

    optimizer: str = "adam"  # "adam" or "adamw"
    lr: float = 0.02
    weight_decay: float = 0.0
    amsgrad: bool = True
    scheduler: str = "auto"  # see mlip.train.optim.KINDS
    warmup_epochs: float = 1.0  # linear warm-up from 1% of lr
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    min_lr: float = 1e-5
    ema_decay: float = 0.99  # 0 switches EMA off
    # max global norm of the gradient of the normalised loss; None: no clipping. Clipping
    # keeps AMSGrad's running maximum of the squared gradients from being set by the
    # first, largest steps (ethanol validation forces, 10 min at lr 0.02: clip 0.066
    # 16.9 meV/A, 0.02 18.4; at lr 0.01 without clipping 23.9). 0.066 is the clip of 10
    # of the previous release's un-normalised loss on ethanol.
    clip_grad: float | None = 0.066


@dataclass
class RunConfig:
    """How long and where to train, and what to write.

    The budget: ``max_time`` (seconds of training, counted over resumed invocations too)
    and ``max_epochs``; the run stops at the first one reached, and the learning-rate
    schedule follows it. With neither, the run stops when the validation loss has not
    improved for ``patience`` validations (early stopping). Training runs in ``dtype``;
    the final evaluation, ``eval.json`` and models loaded with :func:`mlip.load_model`
    are float64.
    """

    max_epochs: int | None = None
    max_time: float | None = None
    patience: int = 25  # validations without improvement (only without a budget)
    # epochs between validations (the last epoch and a stop always validate); None: every
    # epoch, or every ceil(MIN_STEPS_BETWEEN_VALIDATIONS / steps per epoch) epochs when an
    # epoch is shorter than that (small training sets)
    valid_every: int | None = None
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    dtype: str = "float32"
    out: str | None = None  # run directory; None: runs/<date-time>
    resume: bool = False
    seed: int = 0
    progress: bool = True
    tensorboard: bool = True
    evaluate: bool = True  # error table and parity plots at the end
    # at the end, shift E0 by the least-squares fit of the best model's training-set
    # energy residuals (the common per-atom offset forces leave free)
    refit_atomic_energies: bool = True
    stats_max_structures: int = 5000  # conformers used for the dataset statistics


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a nested dict; unknown sections/keys are a ValueError naming them."""
        config = cls()
        for dotted, value in flatten(values).items():
            set_value(config, dotted, value, source)
        return config

    def validate(self) -> TrainConfig:
        """Raise ValueError naming the first bad value; returns self."""
        from mlip.loss import check_loss_options

        loss = self.loss
        check_loss_options(
            {
                "energy": loss.energy_weight,
                "forces": loss.forces_weight,
                "hessian": loss.hessian_weight,
                "stress": loss.stress_weight,
            },
            loss.hessian_probes,
            loss.probe_kind,
            loss.huber_delta,
            prefix="loss.",
        )
        start = loss.stage_two_start
        if start is not None and not 0.0 < start < 1.0:
            raise ValueError(f"loss.stage_two_start must be in (0, 1) or null, got {start}")
        if loss.stage_two_energy_weight < 0:
            raise ValueError(
                f"loss.stage_two_energy_weight must be >= 0, got {loss.stage_two_energy_weight}"
            )
        _check_choice("optim.optimizer", self.optim.optimizer, ("adam", "adamw"))
        _check_choice("optim.scheduler", self.optim.scheduler, KINDS)
        if self.optim.scheduler == "cosine" and self.train.max_time is None:
            if self.train.max_epochs is None:
                raise ValueError(
                    "optim.scheduler 'cosine' needs a budget: train.max_time (seconds) or "
                    "train.max_epochs"
                )
        _check_choice("train.dtype", self.train.dtype, ("float32", "float64"))
        try:
            values = {k: getattr(self.model, k) for k in Architecture.field_names()}
            if values["num_channels"] is None:  # chosen later (mlip.train.recipe)
                values["num_channels"] = Architecture.num_channels
            Architecture(**values).check()
        except ValueError as err:
            raise ValueError(f"model.{str(err).split('hyperparameter ', 1)[-1]}") from None
        positive = {
            "data.batch_size": self.data.batch_size,
            "data.valid_batch_size": self.data.valid_batch_size,
            "optim.lr": self.optim.lr,
            "train.max_epochs": self.train.max_epochs,
            "train.max_time": self.train.max_time,
            "train.patience": self.train.patience,
            "loss.hessian_every": self.loss.hessian_every,
            "train.valid_every": self.train.valid_every,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not 0.0 <= self.optim.ema_decay < 1.0:
            raise ValueError(f"optim.ema_decay must be in [0, 1), got {self.optim.ema_decay}")
        if not self.data.paths:
            raise ValueError("data.paths is empty: give at least one HDF5 file (--data)")
        for name in ("train_size", "valid_size", "test_size"):
            value = getattr(self.data, name)
            if value is not None and (value < 0 or (value >= 1 and value != int(value))):
                raise ValueError(
                    f"data.{name} must be a count (integer >= 0) or a fraction in (0, 1), "
                    f"got {value}"
                )
        return self


# -- loading and overriding ---------------------------------------------------------

#: keys a run's saved config lacks when it was written before they existed, with the
#: value that reproduces how that run trained
# keys newer than some saved runs, with the value those runs trained with
LEGACY_VALUES = {
    "loss.normalize": False,
    "loss.probe_kind": "gaussian",
    "train.refit_atomic_energies": False,
}


def saved_config(values: dict[str, Any], source: str) -> TrainConfig:
    """A run's own saved config (``config.yaml``, a checkpoint's ``config``): keys it
    predates take the value the run trained with (:data:`LEGACY_VALUES`), not today's
    default."""
    config = TrainConfig.from_dict(values, source)
    present = flatten(values)
    for key, value in LEGACY_VALUES.items():
        if key not in present:
            set_value(config, key, value, source)
    return config


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def load_config(
    path: str | os.PathLike | None = None, overrides: dict | None = None
) -> TrainConfig:
    """Defaults <- YAML file ``path`` (if given) <- dotted ``overrides``; validated."""
    values: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        values = read_yaml(path)
        source = os.fspath(path)
    config = TrainConfig.from_dict(values, source)
    apply_overrides(config, overrides or {})
    return config.validate()


def resolve_config(path: str | os.PathLike | None, overrides: dict | None = None) -> TrainConfig:
    """Like :func:`load_config`, but a resume starts from the run's own ``config.yaml``.

    When ``train.resume`` is set and ``train.out`` holds a ``config.yaml``, that file is
    the base, the YAML file ``path`` (if given) and the overrides are applied on top;
    the trainer then rejects changes a resume cannot honour.
    """
    overrides = dict(overrides or {})
    values = read_yaml(path) if path is not None else {}
    section = values.get("train", {}) if isinstance(values.get("train"), dict) else {}
    out = overrides.get("train.out", section.get("out"))
    resume = overrides.get("train.resume", section.get("resume", False))
    saved = os.path.join(out, "config.yaml") if out else None
    if not (resume and saved and os.path.exists(saved)):
        return load_config(path, overrides)
    base = read_yaml(saved)
    for name, update in values.items():
        if isinstance(update, dict) and isinstance(base.get(name), dict):
            base[name] = {**base[name], **update}
        else:
            base[name] = update
    config = saved_config(base, os.fspath(saved))
    apply_overrides(config, overrides)
    return config.validate()


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping from a file; ValueError naming the file otherwise."""
    try:
        with open(path) as handle:
            values = yaml.safe_load(handle)
    except FileNotFoundError as err:
        raise ValueError(f"config file not found: {path}") from err
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(values).__name__}")
    return values


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Set dotted keys (``"optim.lr"``) in place; string values of --set are YAML-parsed."""
    for dotted, value in overrides.items():
        set_value(config, dotted, value, "command line")
    return config


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-3"`` -> ``("optim.lr", 0.001)`` (the value is read as YAML)."""
    if "=" not in text:
        raise ValueError(f"expected KEY=VALUE (e.g. optim.lr=1e-3), got {text!r}")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    return key.strip(), value


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically)."""
    from mlip.fileio import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested section dicts to dotted keys; dict-valued fields stay whole."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if not prefix and isinstance(value, dict):
            out.update(flatten(value, f"{key}."))
        else:
            out[dotted] = value
    return out


#: old key names still accepted (config files and checkpoints of earlier versions)
KEY_ALIASES = {"model.channels": "model.num_channels", "model.layers": "model.num_layers"}
#: old values still accepted: ``cosine`` follows max_time as ``cosine_time`` did
VALUE_ALIASES = {("optim.scheduler", "cosine_time"): "cosine"}


def set_value(config: TrainConfig, dotted: str, value: Any, source: str) -> None:
    dotted = KEY_ALIASES.get(dotted, dotted)
    if dotted == "model.extra":  # old escape hatch: a mapping of model keys
        if not isinstance(value, dict):
            raise ValueError(f"{source}: model.extra = {value!r} is not a mapping")
        for key, item in value.items():
            set_value(config, f"model.{key}", item, source)
        return
    if isinstance(value, str):
        value = VALUE_ALIASES.get((dotted, value), value)
    parts = dotted.split(".")
    sections = {f.name for f in dataclasses.fields(TrainConfig)}
    if len(parts) != 2 or parts[0] not in sections:
        raise ValueError(
            f"{source}: unknown config key {dotted!r}; keys are SECTION.NAME with SECTION one "
            f"of {sorted(sections)}"
        )
    section = getattr(config, parts[0])
    hints = typing.get_type_hints(type(section))
    if parts[1] not in hints:
        raise ValueError(
            f"{source}: unknown config key {dotted!r}; section '{parts[0]}' has {sorted(hints)}"
        )
    setattr(section, parts[1], _coerce(value, hints[parts[1]], dotted, source))


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check/convert ``value`` to the annotated type; ValueError naming key and value."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    bad = ValueError(f"{source}: {key} = {value!r} is not a valid {_type_name(hint)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise bad
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        try:
            return float(value)
        except ValueError:
            raise bad from None
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad
        return str(value)
    if origin is list:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, args[0], key, source) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        if args[1] is Any:
            return dict(value)
        return {
            _coerce(k, args[0], key, source): _coerce(v, args[1], key, source)
            for k, v in value.items()
        }
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key} must be one of {list(choices)}, got {value!r}")


# -- resume compatibility -----------------------------------------------------------

#: optimiser steps between validations at least, with ``train.valid_every: null``
MIN_STEPS_BETWEEN_VALIDATIONS = 100

#: keys that may differ between a checkpoint's config and the resumed run
RESUMABLE_KEYS = frozenset(
    {
        "train.max_epochs",
        "train.max_time",
        "train.patience",
        "train.device",
        "train.resume",
        "train.progress",
        "train.tensorboard",
        "train.evaluate",
        "train.out",
        "data.cache",
        "data.valid_batch_size",
    }
)


def incompatible_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ and that a resume may not change (the saved config
    is read with today's key names and defaults first)."""
    old = flatten(saved_config(saved, "checkpoint").to_dict())
    new = flatten(current)
    keys = sorted(set(old) | set(new))
    return [k for k in keys if k not in RESUMABLE_KEYS and old.get(k) != new.get(k)]
