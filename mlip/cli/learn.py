"""``mlip learn --start FILE --calculator SPEC --out DIR``: active learning in rounds.

From seed structures and a labeller: round 0 labels rattles of the seeds and trains a
committee; each later round runs batched MD with the committee at the given
temperatures, selects the most uncertain frames (largest per-atom force std, eV/A)
below --max-force-std that are not near-duplicates, labels them and retrains, until
the label budget is spent or the largest uncertainty of a round falls below
--min-force-std. Writes DIR/model.pt (the committee), DIR/data.h5 (every label),
DIR/rounds.csv and DIR/rounds.png; --resume continues a stopped run
(:mod:`mlip.learn.loop`). Units: K, fs, 1/fs, A, eV/A.
"""

from __future__ import annotations

import argparse

from mlip.learn.config import EXPLORE_FROM, ROUND_TRAINING, LearnConfig
from mlip.learn.select import RULES
from mlip.md.registry import ENSEMBLES

D = LearnConfig((), "", "")  # the defaults

#: shortcuts for training keys (dotted TrainConfig names); any other: --train KEY=VALUE
TRAIN_OPTIONS = {
    "--num-channels": ("model.num_channels", int),
    "--num-layers": ("model.num_layers", int),
    "--l-max": ("model.l_max", int),
    "--r-max": ("model.r_max", float),
    "--max-epochs": ("train.max_epochs", int),
    "--max-time": ("train.max_time", float),
    "--lr": ("optim.lr", float),
    "--batch-size": ("data.batch_size", int),
}


class _Help(argparse.RawDescriptionHelpFormatter):
    """The description as written; each option's help ends with its default, if any."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = default is not None and not isinstance(default, bool) and default != []
        if action.option_strings and shown and default is not argparse.SUPPRESS:
            text += " (default: %(default)s)"
        return text


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "learn",
        help="active learning: committee MD, uncertain frames labelled, retrain, in rounds",
        description=__doc__,
        formatter_class=_Help,
    )
    p.add_argument(
        "--start",
        nargs="+",
        required=True,
        metavar="FILE",
        help="seed structures (ASE files, FILE.h5[:GROUP[:INDEX]])",
    )
    p.add_argument(
        "--calculator",
        required=True,
        metavar="SPEC",
        help="labeller (mlip label's specs: emt, tblite:GFN2-xTB, ...)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=list(D.temperature),
        help="MD temperatures, K",
    )
    p.add_argument("--ensemble", default=D.ensemble, choices=list(ENSEMBLES))
    p.add_argument("--timestep", type=float, default=D.timestep, help="fs")
    p.add_argument("--friction", type=float, default=D.friction, help="Langevin, 1/fs")
    p.add_argument("--tau", type=float, default=D.tau, help="Bussi / Nose-Hoover, fs")
    p.add_argument("--replicas", type=int, default=D.replicas, help="per seed and temperature")
    p.add_argument("--md-steps", type=int, default=D.md_steps, help="MD steps per round")
    p.add_argument(
        "--sample-every", type=int, default=D.sample_every, help="steps between candidate frames"
    )
    p.add_argument(
        "--budget", type=int, default=D.budget, help="labeller calls in all (failed ones count)"
    )
    p.add_argument("--per-round", type=int, default=D.per_round, help="labels per round at most")
    p.add_argument(
        "--rattles",
        type=int,
        default=D.rattles,
        help="round 0: labelled copies of each seed (itself and rattles)",
    )
    p.add_argument("--rattle-std", type=float, default=D.rattle_std, help="A")
    p.add_argument(
        "--rattle-max-std",
        type=float,
        default=D.rattle_max_std,
        help="A: the rattles' std grows evenly from --rattle-std to this",
    )
    p.add_argument(
        "--min-force-std",
        type=float,
        default=D.min_force_std,
        help="eV/A: frames above are candidates; a round below it ends the loop",
    )
    p.add_argument(
        "--max-force-std",
        type=float,
        default=D.max_force_std,
        help="eV/A: frames above it are not labelled (unless no frame of the round is below it)",
    )
    p.add_argument(
        "--stop-force-std",
        type=float,
        default=D.stop_force_std,
        help="eV/A: a system's MD stops above it (at least --max-force-std; above it "
        "MD goes on past frames it will not label)",
    )
    p.add_argument(
        "--diversity",
        type=float,
        default=D.diversity,
        help="A: least RMS difference of interatomic distances between selected frames",
    )
    p.add_argument(
        "--selection",
        choices=RULES,
        default=D.selection,
        help="order of the candidates with min-force-std <= std <= max-force-std: "
        "uncertain (largest force std first) or window (at random)",
    )
    p.add_argument(
        "--explore-from",
        choices=EXPLORE_FROM,
        default=D.explore_from,
        help="where a round's MD starts: the seeds, or where the previous round's systems "
        "ended (last: trajectories continue across rounds)",
    )
    p.add_argument(
        "--hessian-fraction",
        type=float,
        default=D.hessian_fraction,
        help="fraction of the labels with a Hessian (finite differences of the labeller's "
        "forces unless it has its own)",
    )
    p.add_argument("--fd-step", type=float, default=D.fd_step, help="Hessian step, A")
    p.add_argument("--committee", type=int, default=D.committee, help="members")
    p.add_argument("--bootstrap", action="store_true", help="members on bootstrap draws")
    p.add_argument(
        "--no-finetune",
        dest="finetune",
        action="store_false",
        help="retrain from scratch each round (default: from the last committee)",
    )
    p.add_argument(
        "--final-epochs",
        type=int,
        default=D.final_epochs,
        help="when the loop ends, train the committee once more from scratch on every "
        "label for this many epochs a member; OUT/model.pt is then that committee "
        "(0: the last round's, fine-tuned one)",
    )
    p.add_argument("--max-rounds", type=int, default=D.max_rounds, help="MD rounds at most")
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=D.valid_fraction,
        help="labels held out for each training's validation",
    )
    for option, (key, kind) in TRAIN_OPTIONS.items():
        default = ROUND_TRAINING.get(key)
        note = f" (a round's default: {default})" if default is not None else ""
        p.add_argument(option, type=kind, default=None, dest=key, help=f"training: {key}{note}")
    p.add_argument(
        "--train",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training key (mlip train's --set), repeatable",
    )
    p.add_argument("--seed", type=int, default=D.seed, help="rattles, MD, splits, training")
    p.add_argument("--workers", type=int, default=D.workers, help="labelling processes")
    p.add_argument("--device", default=D.device, help="MD and training device")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(run=run)  # fmt: skip
    return p


def config_from_args(args: argparse.Namespace) -> LearnConfig:
    from mlip.train.config import parse_assignment

    train = {key: getattr(args, key) for key, _ in TRAIN_OPTIONS.values()
             if getattr(args, key) is not None}  # fmt: skip
    for text in args.train:
        key, value = parse_assignment(text)
        train[key] = value
    fields = {f for f in LearnConfig.__dataclass_fields__ if f != "train"}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["start"], values["temperature"] = tuple(args.start), tuple(args.temperature)
    return LearnConfig(**values, train=train)


def run(args: argparse.Namespace) -> int:
    from mlip.learn.loop import describe_final, run_learning

    state = run_learning(config_from_args(args))
    if state.get("final"):
        print(describe_final(state["final"]))
    print(f"finished: {state['finished']}; committee: {args.out}/model.pt, labels: "
          f"{args.out}/data.h5, table: {args.out}/rounds.csv")  # fmt: skip
    return 0
