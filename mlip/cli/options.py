"""Command-line options generated from a config dataclass: the one way to declare them.

Each field of a command's config becomes an option (``batch_size`` -> ``--batch-size``)
whose type, count, choices and help come from the field's annotation, default and
metadata (:mod:`mlip.fields`: ``help``, ``unit``, ``choices``, ``cli``, ``flag``,
``metavar``, ``group``). The help line ends with the default and its unit, read from
the field, so each default is written once. Options that are not given are left out
of the parsed namespace (``argparse.SUPPRESS``): :func:`given` returns the values the
user typed, and the config's own defaults (or a YAML file's, ``mlip train``) fill in
the rest.

Types: ``int``/``float``/``str`` as such; ``X | None`` also takes ``none``; a bool
that defaults to False is a switch (``--relax``), one that defaults to True or None has
a ``--no-`` form (``--progress/--no-progress``); tuples and lists take several values
(``tuple[int, int, int]``: exactly three); a value or a sequence of them (one per
system) takes one or more; a ``dict`` field takes ``KEY=VALUE`` (value read as YAML),
repeatable; a tuple of tuples (``tuple[tuple[str, ...], ...]``) is a repeatable option
of one or more values each time (``-var NAME VALUE ...``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

SCALARS = (int, float, str)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (module docstrings); options' help as generated."""


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    usage: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand's parser with the shared help formatter (``usage``: instead of
    argparse's list of every option, for commands with many)."""
    return subparsers.add_parser(
        name, help=summary, description=description, formatter_class=HelpFormatter, usage=usage
    )


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    prefix: str = "",
    positional: Sequence[str] = (),
    optional_positional: Sequence[str] = (),
    required: Sequence[str] = (),
    only: Iterable[str] | None = None,
    title: str | None = None,
    defaults: dict[str, Any] | None = None,
    help_prefix: str = "",
) -> None:
    """Declare an option for each field of the dataclass ``cls`` (module docstring).

    ``prefix``: put before each dest (``"data."``: :func:`given` with the same prefix
    reads it back); ``positional``: fields that are positional arguments (dest: the
    field's name), those in ``optional_positional`` may be left out; ``required``:
    fields the command line must give; ``only``: just these fields; ``title``: the
    group of the fields without a ``group`` of their own; ``defaults``: the default
    shown where it is not the field's own (a caller fills it in); ``help_prefix``: put
    before each help text.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("cli") is False or (only is not None and f.name not in only):
            continue
        if not meta.get("help"):
            raise TypeError(f"{cls.__name__}.{f.name}: a command-line field needs metadata help")
        shown = (defaults or {}).get(f.name, default_of(f))
        text = help_prefix + meta["help"]
        kwargs = _spec(hints[f.name], default_of(f))
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        group = meta.get("group", title)
        target = parser if group is None else _group(parser, group)
        if f.name in positional:
            kwargs.pop("action", None)
            if f.name in optional_positional:  # may be left out: the field's default
                kwargs.update(nargs="*" if "nargs" in kwargs else "?", default=argparse.SUPPRESS)
                text += _default_text(shown, meta.get("unit"))
            metavar = meta.get("metavar", f.name.upper())
            target.add_argument(f.name, help=_escape(text), metavar=metavar, **kwargs)
            continue
        flag = meta.get("flag", "--" + f.name.replace("_", "-"))
        if kwargs.get("action") is argparse.BooleanOptionalAction and flag.startswith("--no-"):
            flag = "--" + flag.removeprefix("--no-")  # the positive form; argparse adds --no-
        if kwargs.get("action") in (None, "append"):
            kwargs["metavar"] = meta.get("metavar", _metavar(flag, kwargs))
        must = shown is dataclasses.MISSING or f.name in required
        text += _unit_text(meta.get("unit")) if must else _default_text(shown, meta.get("unit"))
        target.add_argument(
            flag,
            dest=prefix + f.name,
            default=argparse.SUPPRESS,
            required=must,
            help=_escape(text),
            **kwargs,
        )


def given(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The values of ``cls``'s fields that were given (dest ``prefix + name``), each in
    the field's type: a tuple field gets a tuple, a per-system field given one value
    gets that value, a dict field gets the dict of its ``KEY=VALUE`` pairs."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        dest = prefix + f.name
        if not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        hint = hints[f.name]
        if isinstance(value, list):
            if _is_dict(hint):
                value = dict(value)
            elif _per_system(hint) and len(value) == 1:
                value = value[0]
            elif _repeated(hint):
                value = tuple(tuple(v) for v in value)
            elif _per_system(hint) or tuple in _origins(hint):
                value = tuple(value)
        values[f.name] = value
    return values


def default_of(f: dataclasses.Field) -> Any:
    """A field's default (calling its factory), or ``dataclasses.MISSING``."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def show(value: Any) -> str:
    """A default as the user would type it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, (tuple, list)):
        return " ".join(show(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) if value else "none"
    return str(value)


# -- the argparse spec of a type ------------------------------------------------------


def _spec(hint: Any, default: Any) -> dict[str, Any]:
    """argparse's type/nargs/action for a field annotated ``hint`` with ``default``."""
    origin, args = _origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        optional = type(None) in args
        inner = [a for a in args if a is not type(None)]
        if bool in inner:
            return _spec(bool, None if optional else default)
        if _per_system(hint):
            scalar = next(a for a in inner if a in SCALARS)
            return {"type": _parser(scalar, optional), "nargs": "+"}
        spec = _spec(inner[0], default)
        if optional and "nargs" not in spec and "action" not in spec:
            spec["type"] = _parser(inner[0] if inner[0] in SCALARS else str, True)
        return spec
    if hint is bool:  # off by default: a switch; on (or none): --name / --no-name
        return {"action": "store_true" if default is False else argparse.BooleanOptionalAction}
    if hint in SCALARS:
        return {"type": hint}
    if origin in (tuple, list, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            item, nargs = args[0], len(args)
        else:
            item, nargs = (args[0] if args else str), "+"
        if _repeated(hint):  # -var NAME VALUE ...: repeatable, several values each time
            return {"type": typing.get_args(item)[0], "nargs": "+", "action": "append"}
        if item not in SCALARS:  # nested (q-points): one string the config parses
            return {"type": str}
        return {"type": item, "nargs": nargs}
    if origin is dict:  # KEY=VALUE, repeatable
        return {"type": _assignment, "action": "append"}
    return {"type": str}  # Path, torch.device, ...: the config converts a string


def _origins(hint: Any) -> set[Any]:
    """The origins of ``hint``, or of each member of a union (``X | None``)."""
    if _origin(hint) is typing.Union:
        return {_origin(a) for a in typing.get_args(hint)}
    return {_origin(hint)}


def _is_dict(hint: Any) -> bool:
    """``dict[...]`` or ``dict[...] | None``."""
    return dict in _origins(hint)


def _repeated(hint: Any) -> bool:
    """``tuple[tuple[X, ...], ...]`` (X a scalar): a repeatable option of several values
    each time (not ``tuple[tuple[float, float, float], ...]``: q-points, one string)."""
    outer, inner = typing.get_args(hint), ()
    if _origin(hint) is tuple and outer and _origin(outer[0]) is tuple:
        inner = typing.get_args(outer[0])
    return len(inner) == 2 and inner[0] in SCALARS and inner[1] is Ellipsis


def _origin(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is types.UnionType:
        return typing.Union
    if origin is not None and getattr(origin, "__module__", "") == "collections.abc":
        return Sequence if origin.__name__ == "Sequence" else origin
    return origin


def _per_system(hint: Any) -> bool:
    """``float | Sequence[float]``: one value, or one per system."""
    if _origin(hint) is not typing.Union:
        return False
    inner = [a for a in typing.get_args(hint) if a is not type(None)]
    scalars = [a for a in inner if a in SCALARS]
    sequences = [a for a in inner if _origin(a) in (tuple, list, Sequence)]
    if not (scalars and sequences):
        return False
    item = typing.get_args(sequences[0])
    return bool(item) and item[0] in SCALARS


def _parser(kind: type, optional: bool) -> Callable[[str], Any]:
    """``kind`` from a string; with ``optional`` also ``none``/``null`` -> None."""
    if not optional:
        return kind

    def parse(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null") else kind(text)

    parse.__name__ = kind.__name__  # argparse names it in "invalid float value"
    return parse


def _assignment(text: str) -> tuple[str, Any]:
    from mlip.train.config import parse_assignment

    try:
        key, value = parse_assignment(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return (int(key) if key.lstrip("-").isdigit() else key), value  # 1=-13.6: element 1


_assignment.__name__ = "KEY=VALUE"


def _metavar(flag: str, kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("type") is _assignment:
        return "KEY=VALUE"
    return None if "choices" in kwargs else flag.lstrip("-").replace("-", "_").upper()


def _default_text(value: Any, unit: str | None) -> str:
    if value is None or value == () or value == [] or value == {}:
        return f" ({unit}; default: none)" if unit else " (default: none)"
    return f" (default: {show(value)}{' ' + unit if unit else ''})"


def _unit_text(unit: str | None) -> str:
    return f" ({unit})" if unit else ""


def _escape(text: str) -> str:
    return text.replace("%", "%%")


def _group(parser: Any, title: str) -> argparse._ArgumentGroup:
    """The argument group ``title`` of the parser (made once)."""
    container = getattr(parser, "_mlip_groups", None)
    if container is None:
        container = {}
        parser._mlip_groups = container
    if title not in container:
        container[title] = parser.add_argument_group(title)
    return container[title]
