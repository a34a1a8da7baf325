"""Write the small mlip-hdf5 subsets of the reference data used by tests and default runs.

- ``ethanol_small.h5``: group ``ethanol`` with 300 conformers drawn at random (seed 0)
  from ``ethanol_xtb.h5``, 60 of them with a Hessian, plus the whole ``ethanol_minimum``.
- ``cu_small.h5``: 60 conformers of ``cu_bulk`` (5 with a Hessian) and 30 of
  ``cu_bulk_vacancy`` from ``cu_emt.h5``.

Each subset group records ``source_file`` and ``source_indices`` (indices of its
conformers in the source group) as attributes. Usage::

    python datasets/make_subsets.py [--data /work/shared/data] [--out datasets] [--force]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import h5py
import numpy as np

from mlip.data.formats.mlip_hdf5 import level_of_theory, read_mlip
from mlip.data.writer import Group, write_mlip_hdf5

SEED = 0


def draw(path: Path, group: str, total: int, with_hessian: int, seed: int = SEED) -> np.ndarray:
    """Sorted random indices: ``with_hessian`` conformers carrying a Hessian, the rest without."""
    with h5py.File(path, "r") as h5:
        g = h5[group]
        count = g["energy"].shape[0]
        has = np.isfinite(g["hessian"][:, 0, 0]) if "hessian" in g else np.zeros(count, bool)
    rng = np.random.default_rng(seed)
    labelled, plain = np.flatnonzero(has), np.flatnonzero(~has)
    if with_hessian > labelled.size or total - with_hessian > plain.size:
        raise ValueError(
            f"{path}:{group} has {labelled.size} conformers with and {plain.size} without a "
            f"Hessian; cannot draw {with_hessian} + {total - with_hessian}"
        )
    chosen = np.concatenate(
        [
            rng.choice(labelled, with_hessian, replace=False),
            rng.choice(plain, total - with_hessian, replace=False),
        ]
    )
    return np.sort(chosen)


def subset(
    source: Path, output: Path, select: dict[str, np.ndarray | None], overwrite: bool
) -> None:
    """Write the selected conformers of ``source`` to ``output`` and print a summary."""
    groups = []
    for group in read_mlip(source, select):
        attrs = dict(group.attrs)
        attrs["source_file"] = source.name
        attrs["source_indices"] = np.array([s.index for s in group.structures], dtype=np.int64)
        groups.append(Group(group.name, group.structures, attrs))
    summaries = write_mlip_hdf5(
        output, groups, level_of_theory(source) or "unknown", overwrite=overwrite
    )
    for summary in summaries:
        print(f"  {summary.line()}")
    print(f"{output}: {os.path.getsize(output) / 1e6:.3f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--force", action="store_true", help="overwrite existing subsets")
    args = parser.parse_args(argv)

    ethanol = args.data / "ethanol_xtb.h5"
    subset(
        ethanol,
        args.out / "ethanol_small.h5",
        {"ethanol": draw(ethanol, "ethanol", 300, 60), "ethanol_minimum": None},
        args.force,
    )
    copper = args.data / "cu_emt.h5"
    subset(
        copper,
        args.out / "cu_small.h5",
        {
            "cu_bulk": draw(copper, "cu_bulk", 60, 5),
            "cu_bulk_vacancy": draw(copper, "cu_bulk_vacancy", 30, 0),
        },
        args.force,
    )


if __name__ == "__main__":
    main()
