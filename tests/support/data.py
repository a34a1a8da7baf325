"""Labelled mlip-HDF5 files for the training tests, and the config of a short test run.

Files are written by :func:`mlip.data.writer.write_mlip_hdf5`, the one writer of the
layout; tests of malformed files write theirs by hand with h5py instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mlip import keys
from mlip.data.graph import Structure, build_batch
from mlip.data.writer import write_mlip_hdf5
from mlip.derivatives import compute, split_hessian
from mlip.train.config import TrainConfig, load_config
from support.models import teacher
from support.structures import crystals, molecules


def label(model: torch.nn.Module, structures: list[Structure], hessian: Sequence[bool]) -> None:
    """Energies, forces, stress (periodic only) and Hessians (where ``hessian``) in place."""
    batch = build_batch(structures, model.r_max, labels=False)
    periodic = structures[0].cell is not None
    out = compute(model, batch, stress=periodic, hessian=True)
    hess = split_hessian(out[keys.HESSIAN], batch[keys.NUM_ATOMS])
    forces = torch.split(out[keys.FORCES], [s.num_atoms for s in structures])
    for k, s in enumerate(structures):
        s.energy = float(out[keys.ENERGY][k])
        s.forces = forces[k].numpy()
        s.hessian = hess[k].numpy() if hessian[k] else None
        if periodic:
            m = out[keys.STRESS][k].numpy()
            s.stress = np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]])


def make_h5(
    path: str | os.PathLike,
    n_mol: int = 40,
    n_cryst: int = 0,
    forces: bool = True,
    hessian_every: int = 3,
) -> str:
    """An mlip-HDF5 file: group 'mol' (+ 'cryst', periodic with stress) labelled by the
    teacher, a Hessian on every ``hessian_every``-th conformer; without ``forces`` the
    groups carry no forces. Overwrites ``path``; returns it as a string."""
    model = teacher()
    groups = {}
    for name, structures in (("mol", molecules(n_mol)), ("cryst", crystals(n_cryst))):
        if not structures:
            continue
        label(model, structures, np.arange(len(structures)) % hessian_every == 0)
        if not forces:
            for s in structures:
                s.forces = None
        groups[name] = structures
    write_mlip_hdf5(path, groups, level_of_theory="teacher pair model", overwrite=True)
    return os.fspath(path)


def quiet_run_config(
    h5: str, out: str | os.PathLike, values: dict[str, Any], **overrides: Any
) -> TrainConfig:
    """Config of a short float64 test run on ``h5`` into ``out``: all groups, no progress
    bar, no final evaluation; ``values`` then ``overrides`` (dotted keys) on top."""
    base = {
        "data.paths": [h5],
        "data.groups": None,
        "train.dtype": "float64",  # the exactness checks compare to float64 rounding
        "train.valid_every": 1,  # tiny training sets: validate every epoch all the same
        "train.out": str(out),
        "train.progress": False,
        "train.evaluate": False,
    }
    return load_config(None, {**base, **values, **overrides})
