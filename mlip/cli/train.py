"""``mlip train [CONFIG.yaml] [--key value ...]``: Sobolev training from the command line.

Options override the YAML config (itself over the defaults of
:mod:`mlip.train.config`); each option is a field of one section of
:class:`~mlip.train.config.TrainConfig` (``--lr`` is ``optim.lr``), and ``--set
SECTION.KEY=VALUE`` sets any key by its dotted name. Units: eV, Angstrom, seconds.
Without arguments it trains on ``datasets/ethanol_small.h5`` (group ``ethanol``) with
the shipped defaults.
"""

from __future__ import annotations

import argparse

from mlip.cli.options import add_command, add_options, given
from mlip.train.committee import CommitteeConfig
from mlip.train.config import TrainConfig, section_classes

#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {
    **{f"{section}.": cls for section, cls in section_classes().items()},
    "committee.": CommitteeConfig,
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "train",
        "train a potential on energies, forces, stress and Hessians",
        __doc__,
        usage="mlip train [CONFIG.yaml] [--data FILE ...] [--group G ...] [options]",
    )
    parser.add_argument("config", nargs="?", help="YAML config (default: built-in defaults)")
    for section, cls in section_classes().items():
        add_options(parser, cls, prefix=f"{section}.", title=section)
    # no --committee: one model (a committee's size is 4 when only --bootstrap is given)
    add_options(
        parser, CommitteeConfig, prefix="committee.", title="committee", defaults={"size": None}
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="set any config key (value read as YAML); repeatable",
    )
    parser.set_defaults(run=run)
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The dotted config overrides given on the command line."""
    from mlip.train.config import parse_assignment

    overrides = {}
    for section, cls in section_classes().items():
        for name, value in given(args, cls, f"{section}.").items():
            overrides[f"{section}.{name}"] = value
    if overrides.get("data.groups") in (["all"], ["ALL"]):
        overrides["data.groups"] = None
    if "data.paths" in overrides and "data.groups" not in overrides:
        overrides["data.groups"] = None  # other files: all their groups unless --group says
    for text in args.set:
        key, value = parse_assignment(text)
        overrides[key] = value
    return overrides


def committee_from_args(args: argparse.Namespace, config: TrainConfig) -> CommitteeConfig | None:
    """The committee asked for (``--committee``, ``--bootstrap``, or a resumed committee
    run directory), None for a single model."""
    import dataclasses

    from mlip.train.committee import committee_state

    saved = committee_state(config.train.out) if config.train.resume else None
    values = given(args, CommitteeConfig, "committee.")
    if not values and saved is None:
        return None
    return dataclasses.replace(saved or CommitteeConfig(), **values)


def run(args: argparse.Namespace) -> int:
    from mlip.train import run_training
    from mlip.train.config import resolve_config

    config = resolve_config(args.config, overrides_from_args(args))
    committee = committee_from_args(args, config)
    if committee is not None:
        from mlip.train.committee import train_committee

        train_committee(config, committee)
        return 0
    run_training(config)
    return 0
