"""Label structures with any ASE calculator into the mlip HDF5 layout, resumably.

``label_structures(LabelConfig(input, output, calculator))`` reads every structure the
input names (:func:`mlip.data.spec.read_frames`: any file ASE reads, or
``FILE.h5[:GROUP[:INDEX]]``), computes with the calculator (:mod:`.calculators`) the
energy (eV), forces (eV/A), stress (eV/A^3, 3D periodic structures, where the
calculator has it) and, with ``hessian``, the Hessian (eV/A^2, :mod:`.hessian`), and
writes them to ``output`` (mlip HDF5, :func:`mlip.data.writer.write_mlip_hdf5`): one
group per input group, conformers in input order, group attribute ``source_index``
(the input index of each conformer).

Resumable and atomic: the output is rewritten atomically (a temporary file renamed
onto it) with every label so far at least every ``flush_seconds`` and at the end, and
the side file ``OUTPUT.labelling.json`` (written after it, atomically) records the
settings and the structures that failed. A run that finds both continues with the
structures not yet labelled (nor failed) and loses nothing written before it was
killed; its final file equals an uninterrupted run's. Other settings than the file's
are refused (``overwrite`` starts again). A structure on which the calculator raises
is recorded (index and message), counted and skipped; an element the calculator
cannot treat is refused before anything is computed. ``workers`` > 1 labels in that
many processes (each builds its own calculator from the spec).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from mlip.data.graph import Structure
from mlip.data.hdf5 import H5Dataset
from mlip.data.spec import read_frames
from mlip.data.writer import Group, write_mlip_hdf5
from mlip.errors import DataError
from mlip.fields import option
from mlip.fileio import atomic_write_text
from mlip.labelling.calculators import KNOWN_SPECS, Labeller, make_labeller
from mlip.labelling.hessian import DEFAULT_FD_STEP, hessian_of
from mlip.progress import Progress

SIDE_SUFFIX = ".labelling.json"


@dataclass(frozen=True)
class LabelConfig:
    """One labelling run (``mlip label``). Units: fd_step A, flush_seconds s.

    ``hessian``: True for every structure, or a collection of input indices that get a
    Hessian (``mlip learn --hessian-fraction``); ``workers``: processes;
    ``overwrite``: start again instead of resuming.
    """

    input: str = option(help="ASE-readable file or FILE.h5[:GROUP]")
    output: str = option(help="mlip HDF5 output (resumed if present)", metavar="OUT.h5")
    calculator: str = option(help=f"labeller: one of {', '.join(KNOWN_SPECS)}", metavar="SPEC")
    hessian: bool | frozenset[int] = option(
        False,
        "Hessians too: the calculator's own where it has one, else central differences of "
        "its forces (6N force calls)",
    )
    fd_step: float = option(DEFAULT_FD_STEP, "finite-difference step of the Hessians", unit="A")
    workers: int = option(1, "labelling processes")
    flush_seconds: float = option(
        10.0, "rewrite the output at least this often (0: after every structure)", unit="s"
    )
    overwrite: bool = option(
        False, "start again instead of resuming an existing output", flag="--force"
    )
    progress: bool = option(True, "progress bar on a terminal; one line per 10 s without one")


@dataclass
class LabelResult:
    """What a run did: counts, the failures (input index -> message) and the file."""

    output: str
    total: int
    labelled: int  # in the file now
    new: int  # labelled by this run
    failed: dict[int, str] = field(default_factory=dict)


def label_one(
    structure: Structure, labeller: Labeller, hessian: bool, fd_step: float = DEFAULT_FD_STEP
) -> Structure:
    """``structure`` with the labels of ``labeller``'s calculator (module docstring)."""
    atoms = structure.to_atoms()
    calc = labeller.calculator
    atoms.calc = calc
    energy = float(atoms.get_potential_energy())
    forces = np.asarray(atoms.get_forces(), dtype=np.float64)
    stress = None
    periodic = atoms.pbc.all() and atoms.cell.rank == 3
    if periodic and "stress" in getattr(calc, "implemented_properties", ()):
        stress = np.asarray(atoms.get_stress(voigt=True), dtype=np.float64)
    out = Structure(structure.atomic_numbers, structure.positions, structure.cell,
                    structure.pbc, energy, forces, stress, None, structure.index,
                    structure.file, structure.group)  # fmt: skip
    if hessian:
        out.hessian = hessian_of(atoms, calc, fd_step)
    return out


def _side_path(output: str) -> str:
    return os.fspath(output) + SIDE_SUFFIX


def _settings(config: LabelConfig, total: int) -> dict:
    hessian = config.hessian
    hessian = sorted(int(i) for i in hessian) if not isinstance(hessian, bool) else hessian
    return {"input": os.path.abspath(config.input), "calculator": config.calculator,
            "hessian": hessian, "fd_step": config.fd_step, "total": total}  # fmt: skip


def _previous(config: LabelConfig, settings: dict) -> tuple[dict[int, Structure], dict[int, str]]:
    """Labels and failures of an earlier run of the same settings ({}: none)."""
    output, side = config.output, _side_path(config.output)
    if config.overwrite or not (os.path.exists(output) or os.path.exists(side)):
        return {}, {}
    if not os.path.exists(side):
        raise FileExistsError(
            f"{output} exists and is not the output of an interrupted 'mlip label' "
            f"(no {os.path.basename(side)}); choose another output or pass --force"
        )
    with open(side) as handle:
        saved = json.load(handle)
    differing = [k for k in settings if saved.get("settings", {}).get(k) != settings[k]]
    if differing:
        raise ValueError(
            f"{output} was labelled with other settings ({', '.join(differing)}: "
            f"{[saved.get('settings', {}).get(k) for k in differing]}); pass --force to "
            "start again or choose another output"
        )
    failed = {int(k): v for k, v in saved.get("failed", {}).items()}
    if not os.path.exists(output):
        return {}, failed
    done: dict[int, Structure] = {}
    dataset = H5Dataset(output)
    try:
        import h5py

        with h5py.File(output, "r") as h5:
            indices = {g.name: h5[g.name].attrs["source_index"] for g in dataset.groups}
        position = 0
        for group in dataset.groups:
            span = range(position, position + group.num_conformers)
            for k, structure in enumerate(dataset.iterate(span)):
                structure.group = group.name
                structure.index = int(indices[group.name][k])  # the input's index
                done[structure.index] = structure
            position += group.num_conformers
    finally:
        dataset.close()
    return done, failed


def _write(config: LabelConfig, frames: list[Structure], done: dict[int, Structure],
           failed: dict[int, str], settings: dict) -> None:  # fmt: skip
    """The output with every label so far (atomically), then the side file."""
    order: list[str] = []
    members: dict[str, list[Structure]] = {}
    for frame in frames:
        if frame.index in done:
            if frame.group not in members:
                order.append(frame.group)
                members[frame.group] = []
            members[frame.group].append(done[frame.index])
    groups = [
        Group(name, members[name], {"source_index": np.array([s.index for s in members[name]])})
        for name in order
    ]
    if groups:
        write_mlip_hdf5(config.output, groups, config.calculator, overwrite=True)
    payload = {"settings": settings, "failed": {str(k): v for k, v in sorted(failed.items())}}
    atomic_write_text(_side_path(config.output), json.dumps(payload, indent=1))


_WORKER: dict[str, Labeller] = {}


def _worker_init(spec: str) -> None:
    _WORKER["labeller"] = make_labeller(spec)


def _worker_label(structure: Structure, hessian: bool, fd_step: float):  # noqa: ANN202
    try:
        return structure.index, label_one(structure, _WORKER["labeller"], hessian, fd_step), None
    except Exception as err:  # noqa: BLE001 (a failed structure is recorded, not fatal)
        return structure.index, None, f"{type(err).__name__}: {err}"


def label_structures(config: LabelConfig, labeller: Labeller | None = None) -> LabelResult:
    """Label the input into the output (module docstring); ``labeller`` overrides the
    spec's calculator (same process only)."""
    if config.workers < 1:
        raise ValueError(f"workers must be >= 1, got {config.workers}")
    folder = os.path.dirname(os.path.abspath(config.output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder {folder} does not exist")
    frames = read_frames(config.input)
    if not frames:
        raise DataError("no structures to label", file=config.input)
    labeller = labeller or make_labeller(config.calculator)
    for frame in frames:
        labeller.check_elements(frame.atomic_numbers, f"{config.input}, structure {frame.index}")
    settings = _settings(config, len(frames))
    done, failed = _previous(config, settings)
    todo = [f for f in frames if f.index not in done and f.index not in failed]
    wants = config.hessian

    def wants_hessian(index: int) -> bool:
        return bool(wants) if isinstance(wants, bool) else index in wants

    # a bar on a terminal; else a line each time the output is rewritten
    bar = Progress(len(frames), "structure", "label", initial=len(frames) - len(todo),
                   enabled=config.progress)  # fmt: skip
    new, last = 0, time.monotonic()

    def take(index: int, structure: Structure | None, message: str | None) -> None:
        nonlocal new, last
        if structure is None:
            failed[index] = message or "failed"
        else:
            done[index] = structure
            new += 1
        bar.update(1, failed=len(failed))
        if time.monotonic() - last >= config.flush_seconds:
            _write(config, frames, done, failed, settings)
            last = time.monotonic()
            bar.report()

    try:
        if config.workers == 1 or len(todo) <= 1:
            for frame in todo:
                try:
                    take(frame.index, label_one(frame, labeller, wants_hessian(frame.index),
                                                config.fd_step), None)  # fmt: skip
                except Exception as err:  # noqa: BLE001 (recorded and skipped)
                    take(frame.index, None, f"{type(err).__name__}: {err}")
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(config.workers, context, _worker_init,
                                     (config.calculator,)) as pool:  # fmt: skip
                futures = [pool.submit(_worker_label, f, wants_hessian(f.index), config.fd_step)
                           for f in todo]  # fmt: skip
                for future in as_completed(futures):
                    take(*future.result())
    finally:
        bar.close()
        if new or failed or not os.path.exists(_side_path(config.output)):
            _write(config, frames, done, failed, settings)
    return LabelResult(config.output, len(frames), len(done), new, dict(failed))


def describe(result: LabelResult) -> str:
    """A line on what was labelled, and the failures."""
    line = (f"{result.output}: {result.labelled} of {result.total} structures labelled "
            f"({result.new} by this run), {len(result.failed)} failed")  # fmt: skip
    for index, message in list(result.failed.items())[:5]:
        line += f"\n  structure {index}: {message}"
    if len(result.failed) > 5:
        line += f"\n  ... and {len(result.failed) - 5} more (see {_side_path(result.output)})"
    return line


__all__ = ["LabelConfig", "LabelResult", "describe", "label_one", "label_structures"]
