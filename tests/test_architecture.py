"""The import graph of the whole ``mlip`` package: no cycles, and the layer rule.

Every module is parsed with ``ast`` (nothing is imported), including the imports inside
functions and under ``if TYPE_CHECKING``: a lazy import is still a dependency, and a
cycle hidden in a function is still a cycle. An edge ``a -> b`` means module ``a``
imports module ``b`` (``from mlip.x import name`` is an edge to ``mlip.x``, or to
``mlip.x.name`` when that is a module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlip

PACKAGE = Path(mlip.__file__).parent

#: layers, bottom (0) to top: a unit (``mlip.<unit>``, a module or a subpackage) imports
#: only units of lower layers (and itself). ``mlip`` is the package's lazy facade.
LAYERS = {
    "keys": 0,
    "errors": 0,
    "fileio": 0,
    "allocator": 0,
    "fields": 0,
    "progress": 0,
    "data": 1,
    "nn": 1,
    "modes": 1,
    "committee": 1,
    "model": 2,
    "derivatives": 2,
    "potentials": 2,
    "loss": 3,
    "calculator": 3,
    "vib": 3,
    "md": 3,
    "integrations": 4,
    "labelling": 4,
    "train": 5,
    "phonons": 5,
    "ts": 5,
    "learn": 6,
    "cli": 7,
    "mlip": 8,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the mlip modules it imports (anywhere in its source)."""
    mods = modules()

    def known(name: str) -> str:
        while name not in mods:  # a name imported from a module: the module
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target == "mlip" or target.startswith("mlip."):
                    graph[name].add(known(target))
        graph[name].discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    return None


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mlip"


def test_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    assert "mlip.model" in graph["mlip.calculator"]  # load_model, imported in a function
    assert "mlip.keys" in graph["mlip.nn.geometry"]  # ``from mlip import keys``
    assert "mlip.vib.harmonic" in graph["mlip.vib"]  # a package's __init__


def test_import_graph_has_no_cycles() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_each_layer_imports_only_lower_layers() -> None:
    graph = import_graph()
    unplaced = sorted({unit(m) for m in graph} - set(LAYERS))
    assert not unplaced, f"give these units a layer in LAYERS: {unplaced}"
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if unit(source) != unit(target) and LAYERS[unit(target)] >= LAYERS[unit(source)]
    )
    assert not upward, "imports of a layer at or above the importer's: " + ", ".join(upward)


def test_architecture_md_lists_the_same_layers() -> None:
    """The layer table of ARCHITECTURE.md (rows ``| N | `unit`, `unit` | role |``) is LAYERS."""
    text = (Path(__file__).resolve().parents[1] / "ARCHITECTURE.md").read_text()
    documented = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in cells[1].split(","):
                documented[name.strip().strip("`")] = int(cells[0])
    assert documented == LAYERS
