"""Griffe extension of the documentation build: Sphinx roles in mlip's docstrings as links.

mlip's docstrings name other objects with Sphinx roles (``:func:`mlip.derivatives.compute```,
``:class:`~mlip.md.config.MDConfig```, ``:mod:`mlip.keys```, or a name in the module's
scope such as ``:class:`DataError```). MkDocs renders Markdown, so each role becomes a
cross-reference to the object's entry in the API reference (``[`compute`][mlip...]``),
which mkdocs-autorefs resolves; a ``~`` shows the last part of the name only.

A role naming an object of mlip that does not exist is logged as a warning, so
``mkdocs build --strict`` fails on it, as it does on a cross-reference to an object the
API reference leaves out. Private objects (a part of the path starts with ``_``) and
objects of other packages (``ase.Atoms``) are shown as code without a link.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):`(~?)([A-Za-z_][\w.]*)(\(\))?`")
PACKAGE = "mlip"
logger = logging.getLogger("mkdocs.plugins.griffe_roles")


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _objects(member)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        if pkg.name != PACKAGE:
            return
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = ROLE.sub(
                    lambda match, obj=obj: self._replace(obj, pkg, match), obj.docstring.value
                )

    def _replace(self, obj: griffe.Object, pkg: griffe.Module, match: re.Match) -> str:
        tilde, name, call = match.group(1), match.group(2), match.group(3) or ""
        shown = (name.rsplit(".", 1)[-1] if tilde else name) + call
        target = _resolve(obj, pkg, name)
        if target is None:
            if name.split(".")[0] == PACKAGE or "." not in name:
                logger.warning("%s: docstring names %r, which does not exist", obj.path, name)
            return f"`{shown}`"
        if any(part.startswith("_") for part in target.split(".")):
            return f"`{shown}`"
        return f"[`{shown}`][{target}]"


def _resolve(obj: griffe.Object, pkg: griffe.Module, name: str) -> str | None:
    """The canonical path of ``name`` as seen from ``obj``, or None (unknown, or outside
    the package)."""
    head, _, rest = name.partition(".")
    if head == PACKAGE:
        path = name
    else:
        try:
            path = obj.resolve(head) + (f".{rest}" if rest else "")
        except griffe.NameResolutionError:
            return None
    if path.split(".")[0] != PACKAGE:
        return None
    try:
        found = pkg[path[len(PACKAGE) + 1 :]] if path != PACKAGE else pkg
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    try:
        return found.final_target.path if found.is_alias else found.path
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
