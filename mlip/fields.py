"""What a config field means, for the command line: its metadata, and the device fields.

Every command is a typed config (a dataclass) plus a library call, and its options are
generated from the config's fields (:mod:`mlip.cli.options`). A field says what it is
in its ``metadata``:

- ``help`` (str): what the field sets, in words (required for an option);
- ``unit`` (str): its unit (``"fs"``, ``"eV/A"``), shown next to the default;
- ``choices`` (tuple): the values it takes, from the one place that defines them;
- ``cli`` (bool): ``False`` keeps the field off the command line on purpose;
- ``flag`` (str): the option's name where it is not ``--field-name`` (``--no-eval``);
- ``metavar`` (str or tuple): argparse's metavar;
- ``group`` (str): the option group it is listed under in ``--help``.

:func:`option` builds such a field. :func:`device_field` and :func:`dtype_field` are the
one declaration of the ``--device``/``--dtype`` options every command shares (device
``auto``: cuda where torch sees a GPU, else cpu, :func:`resolve_device`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

#: the group of the device and dtype options in every command's ``--help``
DEVICE_GROUP = "device and precision"
#: the values of a dtype field
DTYPES = ("float64", "float32")


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002 (the metadata key)
    *,
    unit: str | None = None,
    choices: tuple | None = None,
    cli: bool = True,
    default_factory: Any = dataclasses.MISSING,
    **extra: Any,
) -> Any:
    """A dataclass field with the metadata above (``extra``: flag, metavar, group)."""
    metadata: dict[str, Any] = {"help": help, "cli": cli, **extra}
    if unit is not None:
        metadata["unit"] = unit
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def device_field(help: str = "torch device") -> Any:  # noqa: A002
    """The ``device`` field of a config: ``auto`` (cuda if available, else cpu), ``cpu``,
    ``cuda``, ``cuda:1``, ..."""
    return option(
        "auto",
        f"{help}: 'auto' (cuda if torch sees a GPU, else cpu), 'cpu', 'cuda', 'cuda:1', ...",
        group=DEVICE_GROUP,
    )


def dtype_field(default: str = "float64", help: str = "floating-point precision") -> Any:  # noqa: A002
    """The ``dtype`` field of a config (float64 for MD and Hessians, the brief's default)."""
    return option(default, help, choices=DTYPES, group=DEVICE_GROUP)


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda if torch sees a GPU, else cpu; any other name as torch reads it.

    A CUDA device without CUDA is a ValueError (a setting the user can change)."""
    if isinstance(name, torch.device):
        device = name
    else:
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ValueError(f"device {name!r} is not a torch device ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return device
