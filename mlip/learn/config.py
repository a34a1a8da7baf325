"""The one config of ``mlip learn``: :class:`LearnConfig`, every default of the loop.

Units: temperature K, timestep fs, friction 1/fs, rattle_std, diversity and fd_step
Angstrom, min_force_std, max_force_std and stop_force_std eV/A (the largest per-atom
force std of a committee, :mod:`mlip.committee`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mlip.fields import device_field, option
from mlip.labelling.hessian import DEFAULT_FD_STEP
from mlip.learn.select import RULES, check_rule
from mlip.md.config import DEFAULTS as MD_DEFAULTS
from mlip.md.config import MD_GROUP, md_option

#: where a round's MD starts: at the seeds, or where the previous round's systems ended
EXPLORE_FROM = ("seeds", "last")

#: a round's training (dotted TrainConfig keys) unless ``LearnConfig.train`` says
#: otherwise: a small model and a fixed number of epochs a round, fine-tuned from the
#: last committee. The trainer's own defaults (64 channels, early stopping at a plateau)
#: suit one large data set, not a committee retrained on a few dozen to a few hundred
#: labels every round. These are the settings measured in benchmarks/active_learning.py
#: (ethanol, GFN2-xTB, 300 labels; its page in docs/). ``train.max_epochs`` is dropped when the
#: user sets ``train.max_time`` alone, so a time budget is never cut short by it.
ROUND_TRAINING: dict[str, Any] = {
    "model.num_channels": 32,
    # the core pair term (the trainer's default) was not measured in the loop: its
    # cutoffs would come from round 0's rattles and stay through the fine-tuned rounds
    "model.repulsion": "none",
    # nor the tangent features below the data (mlip.nn.radial), which came after it
    "model.inner_features": "bessel",
    "train.max_epochs": 30,
    "data.batch_size": 4,
}

#: the final training's keys besides mlip train's defaults (``LearnConfig.train`` and
#: ``final_time`` go over them): a few hundred labels learn more from 2.5 times the steps
#: of the trainer's batch of 10 (ethanol and aspirin, 300 random 500 K xTB frames:
#: docs/benchmarks/active_learning.md, the final training)
FINAL_TRAINING: dict[str, Any] = {"data.batch_size": 4}


@dataclass(frozen=True)
class LearnConfig:
    """An active-learning run (:mod:`mlip.learn.loop`).

    The seeds (``start``: structure specs, :func:`mlip.data.spec.read_frames`) and the
    labeller (``calculator``, :func:`mlip.labelling.make_labeller`); the exploration
    (``ensemble`` at each of ``temperature``, ``replicas`` per seed and temperature,
    ``md_steps`` per round, a candidate frame every ``sample_every`` steps; a system's MD
    stops above ``stop_force_std`` (None: at ``max_force_std``): a higher one lets MD run
    on past frames it will not label, DP-GEN's way, rather than end a first committee's
    trajectories before they reach the temperature; ``explore_from``: each round's MD
    starts at the seeds, ``seeds``, or continues the previous round's systems still
    running, ``last``); the selection (frames in the trust window [``min_force_std``,
    ``max_force_std``], in the order of the ``selection`` rule, :mod:`mlip.learn.select`:
    most uncertain first or at random; no two closer than ``diversity``); the labels
    (``budget`` labeller calls in all, failed ones included, at most ``per_round`` a
    round, ``rattles`` rattled copies of each seed in round 0, their Gaussian std
    growing from ``rattle_std`` to ``rattle_max_std``, Hessians
    on ``hessian_fraction`` of the labels); the committee (``committee`` members,
    ``bootstrap``, ``train``: dotted :class:`~mlip.train.config.TrainConfig`
    overrides, ``finetune``: later
    rounds start from the previous committee; ``final_time`` > 0: when the loop ends
    the committee is trained once more, from scratch on every label, with mlip train's
    defaults for that many seconds a member (at most ``final_epochs`` epochs), and that
    is the run's ``model.pt``; 0: the loop's last committee is;
    ``final_energy_margin``: that training leaves out round 0's rattles above the energy
    range of the MD rounds' labels (they let the first committees' MD run, but teach the
    final model a region MD at the temperature does not visit), and MD labels far above
    the others (:func:`~mlip.learn.select.without_md_outliers`);
    ``committee_energy_margin``: the same for the committees of rounds 1 on, which explore;
    :meth:`training` gives the keys a round trains with, :data:`ROUND_TRAINING` under
    ``train``). The defaults are the recipe measured on ethanol with GFN2-xTB
    (benchmarks/active_learning.py and its page in docs/: 16 replicas a seed and temperature, 1500
    steps a round, 40 labels a round, continued MD, trust window 0.02-0.3 eV/A, MD
    stopped at 1.0, no two labels within 0.09 A), with
    round 0's 40 rattles of 0.02 to 0.15 A measured on other molecules
    (benchmarks/learn_first_round.py).
    The loop stops when the budget is spent, when it has converged (no frame above
    ``min_force_std`` over a full-length MD of every system) or after ``max_rounds``
    rounds of MD; a round whose MD was cut short and found too few new frames is filled
    with rattles of where that MD went (:mod:`mlip.learn.loop`).
    """

    start: tuple[str, ...] = option(
        help="seed structures (ASE files, FILE.h5[:GROUP[:INDEX]])", metavar="FILE"
    )
    calculator: str = option(
        help="labeller (mlip label's specs: emt, tblite:GFN2-xTB, ...)", metavar="SPEC"
    )
    out: str = option(help="run directory", metavar="DIR")
    temperature: tuple[float, ...] = option(
        (300.0,), "MD temperatures: each round runs MD at each", unit="K", group=MD_GROUP
    )
    ensemble: str = md_option("ensemble", "nvt-langevin")
    timestep: float = md_option("timestep", MD_DEFAULTS.timestep)
    friction: float = md_option("friction", MD_DEFAULTS.friction)
    tau: float = md_option("tau", MD_DEFAULTS.tau)
    replicas: int = option(16, "MD replicas per seed and temperature", group=MD_GROUP)
    md_steps: int = option(1500, "MD steps per round", group=MD_GROUP)
    sample_every: int = option(20, "MD steps between candidate frames", group=MD_GROUP)
    budget: int = option(300, "labeller calls in all (failed ones count)")
    per_round: int = option(40, "labels per round at most")
    # round 0: wider and more rattles than the seed's thermal spread, so that the first
    # committee's MD gets past its first femtoseconds (benchmarks/learn_first_round.py)
    rattles: int = option(40, "round 0: labelled copies of each seed (itself and rattles)")
    rattle_std: float = option(0.02, "round 0: rattle amplitude (of the first rattle)", unit="A")
    rattle_max_std: float | None = option(
        0.15,
        "round 0: the rattles' std grows evenly from --rattle-std to this (none: every "
        "rattle at --rattle-std)",
        unit="A",
    )
    min_force_std: float = option(
        0.02,
        "frames above are candidates; a round of full-length MD below it ends the loop",
        unit="eV/A",
    )
    # trust window and stop: DP-GEN's trust levels (0.05-0.35 eV/A); labels up to 0.3
    # eV/A followed the 500 K energies where 1.0 labelled the hot tail (ethanol, xTB:
    # docs/benchmarks/active_learning.md)
    max_force_std: float = option(
        0.3,
        "frames above it are not labelled (unless no frame of the round is below it)",
        unit="eV/A",
    )
    stop_force_std: float | None = option(
        1.0,
        "a system's MD stops above it (at least --max-force-std; none: at --max-force-std)",
        unit="eV/A",
    )
    # 0.09 A: just below the usual distance between neighbouring frames of 500 K ethanol
    # MD, so the rule binds (a smaller value hardly ever did), and it was better on
    # validation (docs/benchmarks/active_learning.md, sixth try)
    diversity: float = option(
        0.09, "least RMS difference of interatomic distances between selected frames", unit="A"
    )
    # a molecule's MD frames lie closer together the more rigid it is (500 K frames of
    # uracil a median 0.06 A from their nearest neighbour, ethanol 0.11): a round the
    # rule leaves short is filled at a lower threshold instead of learning little
    diversity_relax: float = option(
        0.5,
        "when --diversity leaves a round short of --per-round frames, lower it step by step "
        "down to this fraction of itself (1: never)",
    )
    selection: str = option(
        "uncertain",
        "order of the candidates in the trust window: uncertain (largest force std first) "
        "or window (at random)",
        choices=RULES,
    )
    explore_from: str = option(
        "last",
        "where a round's MD starts: the seeds, or where the previous round's systems ended "
        "(last: trajectories continue across rounds)",
        choices=EXPLORE_FROM,
    )
    hessian_fraction: float = option(
        0.0,
        "fraction of the labels with a Hessian (finite differences of the labeller's forces "
        "unless it has its own)",
    )
    fd_step: float = option(DEFAULT_FD_STEP, "Hessian finite-difference step", unit="A")
    committee: int = option(4, "committee members")
    bootstrap: bool = option(False, "members train on bootstrap draws")
    finetune: bool = option(
        True, "later rounds fine-tune the last committee (off: retrain from scratch)"
    )
    # the final model is the product of the run, so it gets mlip train's own recipe (the
    # width rule, a cosine schedule over the budget) rather than a round's small model
    # (docs/benchmarks/active_learning.md, the final training)
    final_time: float = option(
        300.0,
        "when the loop ends, train the committee once more from scratch on every label with "
        "mlip train's defaults, for this long a member; OUT/model.pt is then that committee "
        "(0: no final training; model.pt is the last round's, fine-tuned one); the "
        "--train keys hold for it too, all but train.max_time and "
        "train.max_epochs",
        unit="s",
    )
    final_epochs: int | None = option(
        None,
        "final training: epochs a member at most (none: --final-time alone; 0: no final training)",
    )
    final_energy_margin: float | None = option(
        0.0,
        "final training: leave out round 0's rattles whose energy is more than this above "
        "the top (95th percentile) of the MD rounds' label energies (same seed), and MD "
        "labels more than three spreads above that top (broken molecules); none: train on "
        "every label",
        unit="eV",
    )
    committee_energy_margin: float | None = option(
        None,
        "committees of rounds 1 on: leave out round 0's rattles whose energy is more than "
        "this above the top (95th percentile) of the MD rounds' label energies so far (same "
        "seed), and MD labels far above the others; none: every label",
        unit="eV",
    )
    max_rounds: int = option(20, "MD rounds at most")
    valid_fraction: float = option(0.1, "labels held out for each training's validation")
    train: dict[str, Any] = option(
        help="any training key of a round (dotted, mlip train's --set), repeatable",
        default_factory=dict,
    )
    seed: int = option(0, "seed of the rattles, MD, splits and training")
    workers: int = option(1, "labelling processes")
    device: str = device_field("MD and training device")
    resume: bool = option(False, "continue the run in --out")
    progress: bool = option(
        True, "progress bars on a terminal; one line per MD log interval without one"
    )

    def check(self) -> LearnConfig:
        """ValueError naming the first bad value; returns self."""
        if not self.start:
            raise ValueError("give at least one seed structure (--start FILE)")
        positive = {"replicas": self.replicas, "md_steps": self.md_steps,
                    "sample_every": self.sample_every, "budget": self.budget,
                    "per_round": self.per_round, "committee": self.committee,
                    "max_rounds": self.max_rounds, "timestep": self.timestep,
                    "min_force_std": self.min_force_std, "max_force_std": self.max_force_std,
                    "fd_step": self.fd_step, "workers": self.workers}  # fmt: skip
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.stop_force_std is not None and self.stop_force_std < self.max_force_std:
            raise ValueError(
                f"stop_force_std ({self.stop_force_std} eV/A) must be at least max_force_std "
                f"({self.max_force_std} eV/A)"
            )
        if self.final_epochs is not None and self.final_epochs < 0:
            raise ValueError(
                f"final_epochs must be >= 0 (0: no final training), got {self.final_epochs}"
            )
        if not self.final_time >= 0:
            raise ValueError(
                f"final_time must be >= 0 s (0: no final training), got {self.final_time}"
            )
        if self.final_energy_margin is not None and self.final_energy_margin < 0:
            raise ValueError(
                f"final_energy_margin must be >= 0 eV or none, got {self.final_energy_margin}"
            )
        if self.committee_energy_margin is not None and self.committee_energy_margin < 0:
            raise ValueError(
                "committee_energy_margin must be >= 0 eV or none, got "
                f"{self.committee_energy_margin}"
            )
        if self.rattles < 1:
            raise ValueError(f"rattles must be >= 1 (round 0 labels them), got {self.rattles}")
        if self.max_force_std <= self.min_force_std:
            raise ValueError(
                f"max_force_std ({self.max_force_std} eV/A) must exceed min_force_std "
                f"({self.min_force_std} eV/A)"
            )
        for name in ("hessian_fraction", "valid_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0 + (name == "hessian_fraction"):
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if any(t < 0 for t in self.temperature) or not self.temperature:
            raise ValueError(f"temperatures must be >= 0 K, got {self.temperature}")
        check_rule(self.selection)
        if self.explore_from not in EXPLORE_FROM:
            raise ValueError(
                f"explore_from must be one of {', '.join(EXPLORE_FROM)}, got {self.explore_from!r}"
            )
        if self.rattle_std < 0 or self.diversity < 0:
            raise ValueError("rattle_std and diversity must be >= 0 A")
        if not 0.0 < self.diversity_relax <= 1.0:
            raise ValueError(f"diversity_relax must be in (0, 1], got {self.diversity_relax}")
        if self.rattle_max_std is not None and self.rattle_max_std < self.rattle_std:
            raise ValueError(
                f"rattle_max_std ({self.rattle_max_std} A) must be at least rattle_std "
                f"({self.rattle_std} A)"
            )
        return self

    def training(self) -> dict[str, Any]:
        """A round's training keys: :data:`ROUND_TRAINING` under ``train`` (the user's)."""
        base = dict(ROUND_TRAINING)
        if "train.max_time" in self.train and "train.max_epochs" not in self.train:
            del base["train.max_epochs"]
        return {**base, **self.train}

    @property
    def final(self) -> bool:
        """Whether the loop ends with a final training (``final_time``, ``final_epochs``)."""
        return self.final_time > 0 and self.final_epochs != 0

    def final_training(self) -> dict[str, Any]:
        """The final training's keys: mlip train's defaults with :data:`FINAL_TRAINING`,
        under the user's ``train`` keys less a round's budget (``train.max_time``,
        ``train.max_epochs``), with ``final_time`` and ``final_epochs`` as its budget."""
        keys = {k: v for k, v in self.train.items()
                if k not in ("train.max_time", "train.max_epochs")}  # fmt: skip
        budget = {"train.max_time": self.final_time, "train.max_epochs": self.final_epochs}
        return {**FINAL_TRAINING, **keys, **budget}

    @property
    def stop_std(self) -> float:
        """The force std (eV/A) above which a system's MD stops."""
        return self.max_force_std if self.stop_force_std is None else self.stop_force_std

    def replace(self, **changes: Any) -> LearnConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["start"], values["temperature"] = list(self.start), list(self.temperature)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LearnConfig:
        values = dict(values)
        values["start"] = tuple(values["start"])
        values["temperature"] = tuple(values["temperature"])
        return cls(**values)


#: settings a resumed run may change (the others must be those of the run)
RESUMABLE = frozenset(
    {
        "budget",
        "max_rounds",
        "final_time",
        "final_epochs",
        "final_energy_margin",
        "resume",
        "progress",
        "workers",
        "device",
    }
)
