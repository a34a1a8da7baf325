"""``mlip learn --start FILE --calculator SPEC --out DIR``: active learning in rounds.

From seed structures and a labeller: round 0 labels rattles of the seeds and trains a
committee; each later round runs batched MD with the committee at the given
temperatures, selects the most uncertain frames (largest per-atom force std, eV/A)
below --max-force-std that are not near-duplicates (then the nearest above it, and
rattles of where MD went when it was cut short, should the round not fill), labels
them and retrains, until the label budget is spent, the loop has converged (a
full-length MD of every system finds no frame above --min-force-std) or --max-rounds
have run; any other end is a warning, with a note in rounds.csv. Writes DIR/model.pt
(the committee), DIR/data.h5 (every label), DIR/rounds.csv and DIR/rounds.png;
--resume continues a stopped run (:mod:`mlip.learn.loop`). Units: K, fs, 1/fs, A, eV/A.
"""

from __future__ import annotations

import argparse

from mlip.cli.options import add_command, add_options, given
from mlip.learn.config import ROUND_TRAINING, LearnConfig
from mlip.train.config import section_classes

#: shortcuts for a round's training keys (dotted TrainConfig names), options of the
#: same names as mlip train's; any other key: --train KEY=VALUE
TRAIN_SHORTCUTS = (
    "model.num_channels", "model.num_layers", "model.l_max", "model.r_max",
    "train.max_epochs", "train.max_time", "optim.lr", "data.batch_size",
)  # fmt: skip


#: the config classes whose fields are this command's options, by dest prefix
CONFIGS = {"": LearnConfig}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "learn",
        "active learning: committee MD, uncertain frames labelled, retrain, in rounds",
        __doc__,
        usage="mlip learn --start FILE [FILE ...] --calculator SPEC --out DIR [options]",
    )
    add_options(parser, LearnConfig)
    sections = section_classes()
    for section in dict.fromkeys(key.split(".")[0] for key in TRAIN_SHORTCUTS):
        names = [key.split(".")[1] for key in TRAIN_SHORTCUTS if key.startswith(section + ".")]
        round_defaults = {
            key.split(".")[1]: value
            for key, value in ROUND_TRAINING.items()
            if key.startswith(section + ".")
        }
        add_options(parser, sections[section], prefix=f"{section}.", only=names,
                    title="a round's training (mlip train's options)",
                    defaults=round_defaults)  # fmt: skip
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> LearnConfig:
    """The :class:`LearnConfig`; the training shortcuts go into its ``train`` keys (with
    ``--train KEY=VALUE``, which wins)."""
    train = {}
    for section, cls in section_classes().items():
        for name, value in given(args, cls, f"{section}.").items():
            train[f"{section}.{name}"] = value
    values = given(args, LearnConfig)
    values["train"] = {**train, **values.get("train", {})}
    return LearnConfig(**values)


def run(args: argparse.Namespace) -> int:
    from mlip.learn.loop import describe_final, run_learning

    state = run_learning(config_from_args(args))
    if state.get("final"):
        print(describe_final(state["final"]))
    print(f"finished: {state['finished']}; committee: {args.out}/model.pt, labels: "
          f"{args.out}/data.h5, table: {args.out}/rounds.csv")  # fmt: skip
    return 0
