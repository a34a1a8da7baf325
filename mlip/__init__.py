"""mlip: Sobolev-trained E(3)-equivariant machine-learned interatomic potentials.

Units throughout: energy eV, length Angstrom, mass amu, time fs.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
