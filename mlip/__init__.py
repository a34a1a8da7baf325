"""mlip: Sobolev-trained E(3)-equivariant machine-learned interatomic potentials.

Units throughout: energy eV, length Angstrom, mass amu, time fs.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["MLIPCalculator", "MLIPModel", "ModelConfig", "__version__", "load_model"]


def __getattr__(name: str):  # lazy, so `import mlip` stays light
    if name in ("MLIPModel", "ModelConfig", "load_model"):
        from mlip import model

        return getattr(model, name)
    if name == "MLIPCalculator":
        from mlip.calculator import MLIPCalculator

        return MLIPCalculator
    raise AttributeError(f"module 'mlip' has no attribute {name!r}")
