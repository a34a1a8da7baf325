"""The benchmark scripts of ``benchmarks/``, imported by path for their smoke tests.

``benchmarks/`` is not a package: its scripts import their shared module ``common``
from their own folder, so that folder goes on ``sys.path`` (here, once).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` as a module (imported once per session)."""
    if BENCHMARKS not in sys.path:
        sys.path.insert(0, BENCHMARKS)
    module_name = f"_bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, os.path.join(BENCHMARKS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module
