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

from mlip.fields import device_field, dtype_field, option
from mlip.loss import PROBE_KINDS
from mlip.model import Architecture
from mlip.nn.repulsion import REPULSION_KINDS
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

    paths: list[str] = option(
        help="mlip-HDF5 file(s)", default_factory=list, flag="--data", metavar="FILE"
    )
    groups: list[str] | None = option(
        None, "group(s) to train on; 'all' (the default with --data)", flag="--group"
    )
    train_size: float = option(0.8, "training conformers: count or fraction")
    valid_size: float = option(0.1, "validation conformers: count or fraction")
    test_size: float | None = option(None, "test conformers: count or fraction (none: the rest)")
    split_file: str | None = option(
        None,
        "JSON file with 'train'/'valid'/'test' index lists over the selected conformers "
        "(like a run's split.json); replaces the sizes",
    )
    batch_size: int = option(10, "global batch size (conformers per step)")
    valid_batch_size: int = option(32, "conformers per validation batch")
    cache: bool = option(True, "hold the train/valid conformers in memory")
    allow_missing_labels: bool = option(
        False, "train the force term only on groups that have forces, instead of an error"
    )


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

    num_channels: int | None = option(
        None,
        "channels per irrep; none: chosen from the measured step cost and --max-time "
        "(mlip.train.recipe; 64 without a time budget)",
    )
    atomic_energies: dict[int, float] | None = option(
        None,
        "reference energy per element, Z=ENERGY (replaces the least-squares fit)",
        unit="eV",
    )
    init_from: str | None = option(
        None,
        "model file to fine-tune (e.g. add Hessian labels to an E+F model): its "
        "architecture, weights, E0 and scale are kept",
    )


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

    energy_weight: float = option(0.01, "weight of the per-atom energy term")
    forces_weight: float = option(1.0, "weight of the force term")
    hessian_weight: float = option(3.0, "weight of the Hessian term (0: off)")
    # 0.01, not 1: at equal epochs on Cu and Cu-Au a stress term weighted like the forces
    # left forces, energies and even the pressure worse (docs/benchmarks/stress_weight.md)
    stress_weight: float = option(0.01, "weight of the stress term")
    normalize: bool = option(True, "divide each term by the square of its label scale")
    # stage two (MACE's "SWA" stage): from this fraction of the budget on (without a
    # budget: from the first validation plateau) the energy weight is stage_two_energy_weight
    # and the best model is tracked anew; None: one stage
    stage_two_start: float | None = option(
        None, "fraction of the budget where stage two starts (none: one stage)"
    )
    stage_two_energy_weight: float = option(1.0, "energy weight of stage two")
    hessian_probes: int = option(1, "probe vectors per conformer and step")
    hessian_every: int = option(1, "the Hessian term on every k-th step")
    # frequency-scaled normal modes: soft torsions weigh like stiff stretches
    probe_kind: str = option(
        "frequencies",
        "Hessian probes: gaussian (unit directions), onehot (rows), modes (normal modes) "
        "or frequencies (normal modes scaled by frequency)",
        choices=PROBE_KINDS,
    )
    huber_delta: float | None = option(
        None, "Huber loss threshold, in label scales (none: squared error)"
    )


@dataclass
class OptimConfig:
    """Optimiser, learning-rate schedule, EMA and gradient clipping.

    ``scheduler: auto`` is a cosine decay over the budget (``train.max_time`` and/or
    ``train.max_epochs``, whichever runs out first) and, without a budget, the plateau
    schedule (the run then stops at a validation plateau, ``train.patience``).
    """

    optimizer: str = option("adam", "optimiser", choices=("adam", "adamw"))
    lr: float = option(0.02, "learning rate")
    weight_decay: float = option(0.0, "weight decay (L2 with adam, decoupled with adamw)")
    amsgrad: bool = option(True, "AMSGrad variant of Adam")
    scheduler: str = option(
        "auto",
        "learning-rate schedule: auto (cosine over the budget, plateau without one), "
        "plateau, cosine or constant",
        choices=KINDS,
    )
    warmup_epochs: float = option(1.0, "linear warm-up from 1% of lr", unit="epochs")
    plateau_patience: int = option(5, "plateau schedule: validations without improvement")
    plateau_factor: float = option(0.5, "plateau schedule: factor of each reduction")
    min_lr: float = option(1e-5, "smallest learning rate of the plateau schedule")
    ema_decay: float = option(0.99, "EMA decay of the weights (0: off)")
    # max global norm of the gradient of the normalised loss; None: no clipping. Clipping
    # keeps AMSGrad's running maximum of the squared gradients from being set by the
    # first, largest steps; 0.066 was better on validation forces than a tighter clip or
    # none (docs/benchmarks/accuracy.md). It is the clip of 10 of the previous release's
    # un-normalised loss on ethanol.
    clip_grad: float | None = option(0.066, "max gradient norm (none: no clipping)")


@dataclass
class RunConfig:
    """How long and where to train, and what to write.

    The budget: ``max_time`` (seconds of training, counted over resumed invocations too)
    and ``max_epochs``; the run stops at the first one reached, and the learning-rate
    schedule follows it. With neither, the run stops when the validation loss has not
    improved for ``patience`` validations (early stopping). Training runs in ``dtype``;
    the final evaluation, ``eval.json`` and models loaded with :func:`mlip.model.load_model`
    are float64.
    """

    max_epochs: int | None = option(None, "epoch budget (none: no epoch limit)")
    max_time: float | None = option(
        None,
        "time budget of training (a resumed run counts its earlier time); without "
        "--max-time and --max-epochs the run stops at a validation plateau",
        unit="s",
    )
    patience: int = option(
        25, "without a budget: stop after this many validations without improvement"
    )
    valid_every: int | None = option(
        None,
        "epochs between validations; the last epoch and a stop always validate (none: every "
        "epoch, or fewer when an epoch is shorter than MIN_STEPS_BETWEEN_VALIDATIONS steps)",
    )
    device: str = device_field("training device")
    dtype: str = dtype_field("float32", "training dtype (evaluation: float64)")
    out: str | None = option(None, "run directory (none: runs/<date-time>)")
    resume: bool = option(False, "continue the run in --out from its last.ckpt")
    seed: int = option(0, "seed of the split, initialisation, order and probes")
    progress: bool = option(True, "progress bar on a terminal; one line per validation without one")
    tensorboard: bool = option(True, "TensorBoard event files in the run directory")
    evaluate: bool = option(True, "error table and parity plots at the end", flag="--eval")
    # at the end, shift E0 by the least-squares fit of the best model's training-set
    # energy residuals (the common per-atom offset forces leave free)
    refit_atomic_energies: bool = option(
        True, "at the end, refit E0 to the best model's training-set energy residuals"
    )
    stats_max_structures: int = option(5000, "conformers used for the dataset statistics")


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
        _check_choice("model.repulsion", self.model.repulsion, REPULSION_KINDS)
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


def section_classes() -> dict[str, type]:
    """The sections of :class:`TrainConfig` and their dataclasses, in order."""
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


# -- loading and overriding ---------------------------------------------------------

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
    config = TrainConfig.from_dict(base, os.fspath(saved))
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


def set_value(config: TrainConfig, dotted: str, value: Any, source: str) -> None:
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
    is read with the defaults first)."""
    old = flatten(TrainConfig.from_dict(saved, "checkpoint").to_dict())
    new = flatten(current)
    keys = sorted(set(old) | set(new))
    return [k for k in keys if k not in RESUMABLE_KEYS and old.get(k) != new.get(k)]
