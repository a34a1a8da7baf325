"""The ``mlip`` command line: every subcommand's options are its config's fields.

Walks every subcommand of :data:`mlip.cli.SUBCOMMANDS`: parsing the fewest arguments
gives the config's defaults, every field is an option (or says ``cli: False``) and
reaches the config when given, every option's help shows its default and unit, no
module declares options by hand, and the dispatcher's error handling.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from mlip.cli import SUBCOMMANDS, build_parser, main
from mlip.cli.options import default_of
from mlip.data.convert import ConvertConfig
from mlip.integrations.lammps_input import LammpsConfig
from mlip.labelling.label import LabelConfig
from mlip.learn.config import LearnConfig
from mlip.loss import PROBE_KINDS
from mlip.md.config import MD_OPTIONS, MDConfig
from mlip.phonons.config import PhononConfig
from mlip.train.evaluate import EvalConfig
from mlip.ts.config import TSConfig
from mlip.vib.config import VibConfig

#: the fewest arguments of each subcommand, and the config they give
MINIMAL = {
    "train": ([], None),
    "eval": (["m.pt"], EvalConfig(model="m.pt")),
    "convert": (["in.xyz", "out.h5"], ConvertConfig("in.xyz", "out.h5")),
    "vib": (["m.pt", "s.xyz"], VibConfig(model="m.pt", structure="s.xyz")),
    "phonons": (
        ["m.pt", "s.cif", "--supercell", "2", "2", "2"],
        PhononConfig(model="m.pt", structure="s.cif", supercell=(2, 2, 2)),
    ),
    "ts": (["m.pt", "g.xyz"], TSConfig(model="m.pt", guess="g.xyz")),
    "md": (["m.pt", "s.xyz"], MDConfig()),
    "label": (["in.xyz", "out.h5", "--calculator", "emt"], LabelConfig("in.xyz", "out.h5", "emt")),
    "learn": (
        ["--start", "s.xyz", "--calculator", "emt", "--out", "run"],
        LearnConfig(("s.xyz",), "emt", "run"),
    ),
    "lammps": (["in.lmp"], LammpsConfig(input="in.lmp")),
}

#: a value for options whose type alone does not say what the config accepts
SAMPLES = {
    "qpoints": ["0 0 0; 0.5 0 0"],
    "mesh": ["4", "4", "4"],
    "supercell": ["3", "1", "2"],
    "ensemble": ["nvt-bussi"],
    "device": ["cpu"],
    "atomic_energies": ["1=-13.6"],
    "train": ["optim.lr=0.001"],
    "temperature": ["310", "320"],
    "start": ["a.xyz", "b.xyz"],
    "variables": ["steps", "100"],
}


def module(name: str):  # noqa: ANN201
    return importlib.import_module(f"mlip.cli.{name}")


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def parse(name: str, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args([name, *MINIMAL[name][0], *extra])


def build(name: str, args: argparse.Namespace):  # noqa: ANN201
    """What the command makes of ``args``: its config (``mlip train``: the overrides and
    the committee's settings, as dotted keys)."""
    if name == "train":
        from mlip.train.config import TrainConfig

        train = module("train")
        committee = train.committee_from_args(args, TrainConfig())
        given = {} if committee is None else dataclasses.asdict(committee)
        return {
            **train.overrides_from_args(args),
            **{f"committee.{k}": v for k, v in given.items()},
        }
    return module(name).config_from_args(args)


def fields(name: str) -> list[tuple[str, dataclasses.Field]]:
    """(dest prefix, field) of every config field of a subcommand."""
    return [(prefix, f) for prefix, cls in module(name).CONFIGS.items()
            for f in dataclasses.fields(cls)]  # fmt: skip


def test_every_subcommand_is_walked():
    assert set(MINIMAL) == set(SUBCOMMANDS)


@pytest.mark.parametrize("name", list(MINIMAL))
def test_the_fewest_arguments_give_the_config_defaults(name):
    args = parse(name)
    expected = MINIMAL[name][1]
    assert build(name, args) == ({} if name == "train" else expected)


@pytest.mark.parametrize("name", list(MINIMAL))
def test_every_field_is_an_option_or_kept_off_on_purpose(name):
    parser = subparser(name)
    dests = {a.dest for a in parser._actions}
    for prefix, f in fields(name):
        if f.metadata.get("cli") is False:
            assert prefix + f.name not in dests
            continue
        assert prefix + f.name in dests, f"{name}: field {f.name} has no option"
        assert f.metadata.get("help"), f"{name}: field {f.name} has no help"


def _sample(action: argparse.Action, default: object) -> list[str]:
    """Arguments that set ``action`` to something other than ``default``."""
    name = action.dest.rpartition(".")[2]
    flag = action.option_strings[0] if action.option_strings else None
    if isinstance(action, argparse.BooleanOptionalAction):
        return [action.option_strings[1] if default else flag]
    if isinstance(action, argparse._StoreTrueAction):
        return [flag]
    if name in SAMPLES:
        values = SAMPLES[name]
    elif action.choices:
        values = [next(c for c in action.choices if c != default)]
    elif getattr(action.type, "__name__", "") in ("int", "float"):
        values = ["7" if default != 7 else "8"]
    else:
        values = ["x.h5"]
    if action.nargs not in ("+", "*") and not isinstance(action.nargs, int):
        values = values[:1]
    return ([flag] if flag else []) + values


@pytest.mark.parametrize("name", list(MINIMAL))
def test_every_option_reaches_the_config(name):
    parser = subparser(name)
    actions = {a.dest: a for a in parser._actions}
    for prefix, f in fields(name):
        if f.metadata.get("cli") is False or not actions[prefix + f.name].option_strings:
            continue
        default = default_of(f)
        args = parse(name, *_sample(actions[prefix + f.name], default))
        built = build(name, args)
        if name == "train":
            assert prefix + f.name in built, f.name
        else:
            value = getattr(built, f.name)
            assert value != default, f"{name} {f.name}: {value!r} is still the default"


@pytest.mark.parametrize("name", list(MINIMAL))
def test_every_help_line_shows_the_default_and_unit(name):
    parser = subparser(name)
    units = {prefix + f.name: f.metadata.get("unit") for prefix, f in fields(name)}
    for action in parser._actions:
        if action.dest not in units or not action.option_strings or action.required:
            continue
        text = action.help % {}
        assert "(default: " in text or "; default: " in text, f"{name}: {text}"
        if units[action.dest]:
            assert units[action.dest] in text, f"{name}: {text}"
    if any(f.name == "device" for _, f in fields(name)):
        text = " ".join(parser.format_help().split())
        assert (
            "(cuda if torch sees a GPU, else cpu), 'cpu', 'cuda', 'cuda:1', ... (default: auto)"
            in text
        )


def test_train_help_lists_every_probe_kind_and_the_default():
    text = " ".join(subparser("train").format_help().split())
    assert "{" + ",".join(PROBE_KINDS) + "}" in text
    assert "(default: frequencies)" in text


def test_md_and_learn_share_the_md_settings():
    for name in ("ensemble", "timestep", "friction", "tau"):
        md = next(f for f in dataclasses.fields(MDConfig) if f.name == name)
        learn = next(f for f in dataclasses.fields(LearnConfig) if f.name == name)
        assert md.metadata["help"] == learn.metadata["help"] == MD_OPTIONS[name][0]
        assert md.metadata["group"] == learn.metadata["group"] == "molecular dynamics"


def test_every_device_defaults_to_auto():
    for name in MINIMAL:
        for _, f in fields(name):
            if f.name == "device":
                assert default_of(f) == "auto", name


def test_no_cli_module_declares_options_by_hand():
    """Options come from config fields (mlip.cli.options); only these are not fields."""
    allowed = {"train": {"--set"}}
    folder = Path(importlib.import_module("mlip.cli").__file__).parent
    for path in folder.glob("*.py"):
        if path.stem in ("options", "__init__", "__main__"):
            continue
        declared = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", path.read_text()))
        assert declared <= allowed.get(path.stem, set()), f"{path.name}: {declared}"


def test_per_system_values_and_none():
    config = build("md", parse("md", "--temperature", "300", "400", "--max-displacement", "none"))
    assert config.temperature == (300.0, 400.0) and config.max_displacement is None
    assert build("md", parse("md", "--temperature", "250")).temperature == 250.0
    overrides = build("train", parse("train", "--max-time", "none", "--atomic-energies", "1=-1"))
    assert overrides == {"train.max_time": None, "model.atomic_energies": {1: -1.0}}
    config = build("learn", parse("learn", "--num-channels", "8", "--train", "optim.lr=0.5"))
    assert config.train == {"model.num_channels": 8, "optim.lr": 0.5}


def test_repeated_options_of_several_values():
    """``mlip lammps -var NAME VALUE ...``: LAMMPS's own form, repeatable."""
    args = parse("lammps", "-var", "n", "2", "-var", "temps", "300", "600", "--threads", "1")
    config = build("lammps", args)
    assert config.variables == (("n", "2"), ("temps", "300", "600")) and config.threads == 1
    with pytest.raises(ValueError, match="give a NAME and its VALUE"):
        build("lammps", parse("lammps", "-var", "n"))


def test_a_bad_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["md", "m.pt", "s.xyz", "--steps", "many"])
    assert exit_info.value.code == 2
    assert "--steps: invalid int value: 'many'" in capsys.readouterr().err


# -- the dispatcher: errors in one place ----------------------------------------------------


def _failing(monkeypatch, error: BaseException) -> None:
    """``mlip convert`` raises ``error``."""

    def run(args):  # noqa: ANN001, ANN202
        raise error

    monkeypatch.setattr(module("convert"), "run", run)


def test_a_user_error_is_one_line_with_exit_status_1(monkeypatch, capsys):
    from mlip.errors import DataError

    _failing(monkeypatch, DataError("contains NaN", "d.h5", "water", "forces"))
    assert main(["convert", "in.xyz", "out.h5"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "mlip convert: error: d.h5, group 'water', field 'forces': contains NaN"
    )
    assert "Traceback" not in err
    _failing(monkeypatch, FileNotFoundError("no such file: in.xyz"))
    assert main(["convert", "in.xyz", "out.h5"]) == 1
    with pytest.raises(FileNotFoundError):  # --debug: the traceback
        main(["--debug", "convert", "in.xyz", "out.h5"])


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory"), KeyError("energy")])
def test_an_internal_error_keeps_its_traceback(monkeypatch, capsys, error):
    """A torch error (RuntimeError) or a KeyError is not the user's: not one line."""
    _failing(monkeypatch, error)
    assert main(["convert", "in.xyz", "out.h5"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "raise error" in err
    assert f"mlip convert: internal error: {type(error).__name__}" in err.splitlines()[-1]


def test_a_missing_optional_package_is_a_user_error(monkeypatch, capsys):
    from mlip.errors import MissingDependencyError

    _failing(monkeypatch, MissingDependencyError("needs Sella: pip install 'mlip[ts]'"))
    assert main(["convert", "in.xyz", "out.h5"]) == 1
    assert "error: needs Sella" in capsys.readouterr().err


def test_an_md_explosion_exits_with_2_naming_the_trajectory(tmp_path, capsys):
    """The real command: the shipped copper model, a force limit every force exceeds."""
    import ase.io
    from ase.build import bulk

    root = Path(__file__).resolve().parents[1]
    ase.io.write(tmp_path / "cu.xyz", bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2))
    traj = tmp_path / "md.h5"
    argv = ["md", str(root / "datasets" / "cu_tiny.pt"), str(tmp_path / "cu.xyz"), "--steps",
            "5", "--max-force", "1e-9", "--traj", str(traj), "--no-progress", "--device", "cpu",
            "--temperature", "600"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "mlip md: error: " in err and "exceeds max_force" in err
    assert f"the trajectory up to the last log step is in {traj}" in err
    assert traj.exists()
