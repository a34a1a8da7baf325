"""The one test support package: structures, small models, evaluation helpers, data files.

Test modules import it as ``from support import ...`` (``tests/conftest.py`` puts the
``tests`` folder on ``sys.path``, once, for every test module and for the processes
they spawn). Modules:

- :mod:`support.structures`: molecules and crystals (ethanol, copper, argon, the
  training fixtures' small molecules and crystals);
- :mod:`support.models`: small energy models (an untrained float64 MLIPModel, one whose
  last layer reaches far, the
  trainable toy :class:`~support.models.PairModel` and its teacher, the torsional double
  well :class:`~support.models.TorsionModel` with a known saddle);
- :mod:`support.physics`: evaluation, random orthogonal transforms and the E(3)
  equivariance check of an energy model;
- :mod:`support.data`: labelled mlip-HDF5 files written by
  :func:`mlip.data.writer.write_mlip_hdf5`, and the config of a short test run.
- :mod:`support.benchmarks`: the scripts of ``benchmarks/`` imported by path;
- :mod:`support.processes`: Python subprocesses (``train.py``, ``torchrun``,
  ``mpiexec``) with a hang guard instead of a time limit, so that a loaded machine
  cannot fail a test;
- :mod:`support.lammps_jobs`: LAMMPS jobs run under ``mpiexec`` by the worker script
  ``support/lammps_runs.py`` (the test process itself never imports LAMMPS or MPI).

Classical potentials with physics of their own (Lennard-Jones, harmonic bonds) are not
here but in :mod:`mlip.potentials`; this package holds test-only toys.
"""

from support.data import label, make_h5, quiet_run_config
from support.models import (
    ELEMENTS,
    PairModel,
    TorsionModel,
    far_reaching_model,
    small_model,
    teacher,
    torsion_chain,
)
from support.physics import assert_equivariant, evaluate, random_orthogonal, transformed
from support.structures import (
    ETHANOL_R,
    ETHANOL_Z,
    MOLECULE_R,
    MOLECULE_Z,
    argon_cluster,
    argon_crystal,
    close_pair,
    copper,
    crystals,
    ethanol,
    molecules,
)

__all__ = [
    "ELEMENTS",
    "ETHANOL_R",
    "ETHANOL_Z",
    "MOLECULE_R",
    "MOLECULE_Z",
    "PairModel",
    "TorsionModel",
    "argon_cluster",
    "argon_crystal",
    "assert_equivariant",
    "close_pair",
    "copper",
    "crystals",
    "ethanol",
    "evaluate",
    "far_reaching_model",
    "label",
    "make_h5",
    "molecules",
    "quiet_run_config",
    "random_orthogonal",
    "small_model",
    "teacher",
    "torsion_chain",
    "transformed",
]
