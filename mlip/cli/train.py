"""``mlip train [CONFIG.yaml] [--key value ...]``: Sobolev training from the command line.

Options override the YAML config (itself over the defaults of
:mod:`mlip.train.config`); ``--set SECTION.KEY=VALUE`` reaches any other key. Units:
eV, Angstrom, seconds. Without arguments it trains on ``datasets/ethanol_small.h5``
(group ``ethanol``) with the shipped defaults.
"""

from __future__ import annotations

import argparse

NONE = object()  # an option's explicit "no value" (argparse's None means "not given")


def optional_float(text: str) -> float | object:
    """A number, or :data:`NONE` for 'none'/'null'."""
    return NONE if text.lower() in ("none", "null") else float(text)


#: command-line option -> (dotted config key, type (None: optional float), help)
OPTIONS: dict[str, tuple[str, type | None, str]] = {
    "--data": ("data.paths", str, "mlip-HDF5 file(s)"),
    "--group": ("data.groups", str, "group(s) to train on; 'all' (the default with --data)"),
    "--train-size": ("data.train_size", float, "training conformers: count or fraction"),
    "--valid-size": ("data.valid_size", float, "validation conformers: count or fraction"),
    "--test-size": ("data.test_size", float, "test conformers: count or fraction (default rest)"),
    "--split-file": (
        "data.split_file",
        str,
        "JSON file with 'train'/'valid'/'test' index lists over the selected conformers "
        "(like a run's split.json); replaces the sizes",
    ),
    "--batch-size": ("data.batch_size", int, "global batch size (conformers per step)"),
    "--seed": ("train.seed", int, "seed of the split, initialisation, order and probes"),
    "--energy-weight": ("loss.energy_weight", float, "weight of the per-atom energy term"),
    "--forces-weight": ("loss.forces_weight", float, "weight of the force term"),
    "--hessian-weight": ("loss.hessian_weight", float, "weight of the Hessian term (0: off)"),
    "--stress-weight": ("loss.stress_weight", float, "weight of the stress term"),
    "--hessian-probes": ("loss.hessian_probes", int, "probe vectors per conformer and step"),
    "--hessian-every": ("loss.hessian_every", int, "the Hessian term on every k-th step"),
    "--probe-kind": (
        "loss.probe_kind",
        str,
        "'gaussian' (unit directions), 'onehot' (rows) or 'modes' (normal modes, relative)",
    ),
    "--huber-delta": ("loss.huber_delta", float, "Huber loss threshold (default squared error)"),
    "--max-epochs": ("train.max_epochs", int, "epoch budget (default: none)"),
    "--max-time": (
        "train.max_time",
        None,
        "time budget in seconds of training (a resumed run counts its earlier time); "
        "without --max-time and --max-epochs the run stops at a validation plateau",
    ),
    "--patience": (
        "train.patience",
        int,
        "without a budget: stop after this many validations without improvement",
    ),
    "--valid-every": (
        "train.valid_every",
        int,
        "epochs between validations (the last epoch and a time stop always validate)",
    ),
    "--lr": ("optim.lr", float, "learning rate"),
    "--optimizer": ("optim.optimizer", str, "'adam' or 'adamw'"),
    "--scheduler": (
        "optim.scheduler",
        str,
        "'auto' (cosine over the budget, plateau without one), 'plateau', 'cosine' or 'constant'",
    ),
    "--ema-decay": ("optim.ema_decay", float, "EMA decay of the weights (0: off)"),
    "--clip-grad": ("optim.clip_grad", float, "max gradient norm"),
    "--device": ("train.device", str, "'auto', 'cpu', 'cuda', 'cuda:1', ..."),
    "--dtype": ("train.dtype", str, "training dtype, 'float32' or 'float64' (evaluation: float64)"),
    "--out": ("train.out", str, "run directory (default runs/<date-time>)"),
    "--r-max": ("model.r_max", float, "cutoff radius (A)"),
    "--l-max": ("model.l_max", int, "maximum angular momentum of the edge features"),
    "--num-channels": (
        "model.num_channels",
        int,
        "channels per irrep (default: chosen from the measured step cost and --max-time; "
        "64 without a time budget)",
    ),
    "--num-layers": ("model.num_layers", int, "message-passing layers (alias --layers)"),
    "--hidden-l-max": ("model.hidden_l_max", int, "maximum angular momentum of node features"),
    "--num-radial": ("model.num_radial", int, "radial basis functions"),
    "--init-from": (
        "model.init_from",
        str,
        "model file to fine-tune (e.g. add Hessian labels to an E+F model): its "
        "architecture, weights, E0 and scale are kept",
    ),
}
MULTI = ("--data", "--group")
ALIASES = {"--num-channels": "--channels", "--num-layers": "--layers"}  # earlier names
FLAGS = {
    "--resume": ("train.resume", "continue the run in --out from its last.ckpt"),
    "--allow-missing-labels": (
        "data.allow_missing_labels",
        "train the force term only on groups that have forces, instead of an error",
    ),
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a potential on energies, forces, stress and Hessians",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", help="YAML config (default: built-in defaults)")
    for option, (key, kind, text) in OPTIONS.items():
        nargs = "+" if option in MULTI else None
        metavar = key.split(".")[1].upper()
        names = [option] + ([ALIASES[option]] if option in ALIASES else [])
        parser.add_argument(
            *names,
            type=kind or optional_float,
            nargs=nargs,
            default=None,
            help=text,
            dest=key,
            metavar=metavar,
        )
    for option, (key, text) in FLAGS.items():
        parser.add_argument(
            option, action="store_const", const=True, default=None, help=text, dest=key
        )
    parser.add_argument(
        "--no-progress",
        action="store_const",
        const=False,
        default=None,
        dest="train.progress",
        help="no progress bar",
    )
    parser.add_argument(
        "--no-eval",
        action="store_const",
        const=False,
        default=None,
        dest="train.evaluate",
        help="skip the final error table and plots",
    )
    parser.add_argument(
        "--committee",
        type=int,
        default=None,
        metavar="K",
        help="train a committee of K members (seeds seed..seed+K-1, one split) into one "
        "model file with force/energy uncertainties (mlip.train.committee)",
    )
    parser.add_argument(
        "--bootstrap",
        action="store_true",
        default=None,
        help="with --committee: each member on a bootstrap draw of the training split",
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
    for key, value in vars(args).items():
        if "." in key and value is not None:
            overrides[key] = None if value is NONE else value
    if overrides.get("data.groups") in (["all"], ["ALL"]):
        overrides["data.groups"] = None
    if "data.paths" in overrides and "data.groups" not in overrides:
        overrides["data.groups"] = None  # other files: all their groups unless --group says
    for text in args.set:
        key, value = parse_assignment(text)
        overrides[key] = value
    return overrides


def committee_from_args(args: argparse.Namespace, config) -> object | None:  # noqa: ANN001
    """The :class:`~mlip.train.committee.CommitteeConfig` asked for (``--committee``,
    ``--bootstrap``, or a resumed committee run directory), None for a single model."""
    import dataclasses

    from mlip.train.committee import CommitteeConfig, committee_state

    saved = committee_state(config.train.out) if config.train.resume else None
    if args.committee is None and not args.bootstrap and saved is None:
        return None
    base = saved or CommitteeConfig()
    given = {"size": args.committee, "bootstrap": args.bootstrap}
    return dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})


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
