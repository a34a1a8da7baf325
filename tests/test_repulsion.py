"""The pair terms of the learned model (mlip.nn.repulsion), checked against the formulas
written out here in numpy, at and beyond their cutoffs, through the trainer (the core
term's cutoffs are the training data's shortest distances) and on old model files."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from ase.data import covalent_radii
from support import evaluate
from support.models import small_model
from support.structures import close_pair

from mlip import keys
from mlip.data.graph import Structure
from mlip.model import MLIPModel, load_model
from mlip.nn.repulsion import CoreRepulsion, ZBLRepulsion

pytestmark = pytest.mark.usefixtures("one_thread")


def zbl(z1: int, z2: int, r: float) -> float:
    """ZBL universal potential (Ziegler, Biersack, Littmark 1985), eV."""
    a = 0.46850 / (z1**0.23 + z2**0.23)  # ZBL screening length as LAMMPS pair zbl writes it
    x = r / a
    phi = (
        0.18175 * math.exp(-3.1998 * x)
        + 0.50986 * math.exp(-0.94229 * x)
        + 0.28022 * math.exp(-0.4029 * x)
        + 0.02817 * math.exp(-0.20162 * x)
    )
    return 14.399645 * z1 * z2 / r * phi


def zbl_reference(z1: int, z2: int, r: float) -> float:
    """ZBL times the p = 6 polynomial envelope to the sum of the covalent radii."""
    rc = covalent_radii[z1] + covalent_radii[z2]
    if r >= rc:
        return 0.0
    t = r / rc
    envelope = 1 - 28 * t**6 + 48 * t**7 - 21 * t**8
    return zbl(z1, z2, r) * envelope


def core_reference(z1: int, z2: int, r: float, c: float) -> float:
    """ZBL less its second-order Taylor expansion at c, below c; V' and V'' by central
    differences (step 1e-4 A: relative error ~1e-8), not the module's closed forms."""
    if r >= c:
        return 0.0
    h = 1e-4
    v = [zbl(z1, z2, c + k * h) for k in (-2, -1, 0, 1, 2)]
    d1 = (v[0] - 8 * v[1] + 8 * v[3] - v[4]) / (12 * h)
    d2 = (-v[0] + 16 * v[1] - 30 * v[2] + 16 * v[3] - v[4]) / (12 * h * h)
    return zbl(z1, z2, r) - v[2] - d1 * (r - c) - 0.5 * d2 * (r - c) ** 2


def dimer(z1: int, z2: int, r: float) -> Structure:
    return Structure(
        positions=np.array([[0.0, 0.0, 0.0], [0.3 * r, 0.4 * r, math.sqrt(0.75) * r]]),
        atomic_numbers=np.array([z1, z2]),
    )


def twin_models(
    kind: str = "zbl", atomic_numbers: tuple[int, ...] = (1, 6, 8, 29)
) -> tuple[MLIPModel, MLIPModel]:
    """The same network with and without the pair term ``kind``."""
    with_term = small_model(atomic_numbers, repulsion=kind)
    without = small_model(atomic_numbers, repulsion="none")
    state = {k: v for k, v in with_term.state_dict().items() if not k.startswith("repulsion.")}
    without.load_state_dict(state)
    return with_term, without


@pytest.mark.parametrize(
    ("z1", "z2", "r"), [(29, 29, 1.6), (29, 29, 2.05), (29, 29, 2.5), (1, 6, 0.8), (8, 6, 1.2)]
)
def test_the_term_is_zbl_times_the_envelope(z1: int, z2: int, r: float) -> None:
    with_term, without = twin_models()
    pair = [dimer(z1, z2, r)]
    added = evaluate(with_term, pair)[keys.ENERGY] - evaluate(without, pair)[keys.ENERGY]
    expected = zbl_reference(z1, z2, r)
    assert expected > 1e-3  # inside the cutoff: the check can fail
    assert float(added[0]) == pytest.approx(expected, rel=1e-10)


def test_nothing_beyond_the_covalent_radii() -> None:
    with_term, without = twin_models()
    for r in (2.65, 3.0, 4.9):  # Cu-Cu: cutoff 2 x 1.32 A
        pair = [dimer(29, 29, r)]
        assert float(evaluate(with_term, pair)[keys.ENERGY][0]) == float(
            evaluate(without, pair)[keys.ENERGY][0]
        )


def test_forces_and_curvature_continuous_at_its_cutoff() -> None:
    model = small_model(repulsion="zbl").repulsion
    species = torch.tensor([3])
    rc = 2 * covalent_radii[29]

    def derivatives(r: float) -> tuple[float, float]:
        x = torch.tensor([r], dtype=torch.float64, requires_grad=True)
        (d1,) = torch.autograd.grad(model.pair_energy(x, species, species), x, create_graph=True)
        (d2,) = torch.autograd.grad(d1, x)
        return float(d1.detach()), float(d2)

    inside, outside = derivatives(rc - 1e-8), derivatives(rc + 1e-8)
    well_inside = derivatives(rc - 0.3)
    assert abs(well_inside[0]) > 0.1 and abs(well_inside[1]) > 1.0  # the checks can fail
    assert outside == (0.0, 0.0)
    assert inside[0] == pytest.approx(0.0, abs=1e-12)
    assert inside[1] == pytest.approx(0.0, abs=1e-6)


def test_a_close_pair_is_pushed_apart() -> None:
    """Forces along the bond grow as two Cu atoms are pushed together (the network
    untrained and small; the term alone is larger than it below 2 A)."""
    with_term, _ = twin_models()
    push = []
    for r in (2.0, 1.8, 1.6):
        result = evaluate(with_term, [dimer(29, 29, r)])
        bond = dimer(29, 29, r).positions[1] / r
        push.append(float(np.dot(result[keys.FORCES][1].detach().numpy(), bond)))
    assert push[0] > 0 and push[1] > push[0] and push[2] > push[1]


@pytest.mark.parametrize(("saved", "kind"), [({}, "none"), ({"pair_repulsion": True}, "zbl")])
def test_files_from_before_the_option_load_as_written(tmp_path, saved, kind) -> None:  # noqa: ANN001
    """Files written before ``repulsion``: no key (no pair term) or ``pair_repulsion``."""
    model = small_model(repulsion=kind)
    path = tmp_path / "old.pt"
    payload = model.payload()
    del payload["config"]["repulsion"]
    payload["config"].update(saved)
    torch.save(payload, path)
    loaded = load_model(path)
    assert loaded.config.repulsion == kind
    pair = [dimer(29, 29, 2.0)]
    assert float(evaluate(loaded, pair)[keys.ENERGY][0]) == float(
        evaluate(model, pair)[keys.ENERGY][0]
    )


def test_core_by_default_and_zbl_by_the_training_option() -> None:
    from mlip.learn.config import ROUND_TRAINING
    from mlip.train.config import TrainConfig
    from mlip.train.initial_model import build_model

    assert isinstance(build_model(TrainConfig(), [29]).repulsion, CoreRepulsion)
    config = TrainConfig.from_dict({"model": {"repulsion": "zbl"}}, "x.yaml")
    assert isinstance(build_model(config, [29]).repulsion, ZBLRepulsion)
    config = TrainConfig.from_dict({"model": {"repulsion": "none"}}, "x.yaml")
    assert build_model(config, [29]).repulsion is None
    assert ROUND_TRAINING["model.repulsion"] == "none"  # not measured in the loop
    with pytest.raises(ValueError, match="repulsion"):
        TrainConfig.from_dict({"model": {"repulsion": "lj"}}, "x.yaml").validate()


# -- the core term -------------------------------------------------------------------


def core_model(
    cutoffs: dict[tuple[int, int], float], atomic_numbers: tuple[int, ...] = (1, 6, 8, 29)
) -> tuple[MLIPModel, MLIPModel]:
    with_term, without = twin_models("core", atomic_numbers)
    for model in (with_term, without):  # the same tangent features in both
        model.set_shortest_distances(cutoffs)
    return with_term, without


@pytest.mark.parametrize(
    ("z1", "z2", "c", "r"),
    [(29, 29, 2.05, 1.8), (29, 29, 2.05, 2.0), (1, 6, 0.95, 0.8), (8, 6, 1.15, 1.0)],
)
def test_core_term_is_zbl_less_its_taylor_expansion(z1, z2, c, r) -> None:  # noqa: ANN001
    with_term, without = core_model({(z1, z2): c})
    pair = [dimer(z1, z2, r)]
    added = float(
        evaluate(with_term, pair)[keys.ENERGY][0] - evaluate(without, pair)[keys.ENERGY][0]
    )
    expected = core_reference(z1, z2, r, c)
    assert expected > 1e-4  # below the cutoff: the check can fail
    assert added == pytest.approx(expected, rel=1e-6)


def test_core_term_is_exactly_zero_on_the_training_pairs(tmp_path) -> None:  # noqa: ANN001
    """Cutoffs from a structure's own statistics: its energy and forces are those of the
    network alone, bit for bit; a pair pushed closer is pushed apart."""
    from ase.build import bulk

    from mlip.train.statistics import compute_statistics

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.numbers[::3] = 79
    atoms.rattle(0.1, seed=3)
    cell = Structure.from_atoms(atoms)
    stats = compute_statistics([dataclasses.replace(cell, energy=0.0)], [29, 79], 5.0)
    assert set(stats.shortest_distances) == {(29, 29), (29, 79), (79, 79)}
    with_term, without = core_model(stats.shortest_distances, (29, 79))
    a, b = evaluate(with_term, [cell]), evaluate(without, [cell])
    assert torch.equal(a[keys.ENERGY], b[keys.ENERGY]) and torch.equal(
        a[keys.FORCES], b[keys.FORCES]
    )
    assert (atoms.numbers[0], atoms.numbers[1]) == (79, 29)
    close = close_pair(atoms.copy(), 0.95 * stats.shortest_distances[(29, 79)])
    closer = [Structure.from_atoms(close)]
    assert float(evaluate(with_term, closer)[keys.ENERGY][0]) > float(
        evaluate(without, closer)[keys.ENERGY][0]
    )


def test_core_term_is_continuous_to_its_second_derivative_and_repulsive() -> None:
    term = core_model({(29, 29): 2.05})[0].repulsion
    species = torch.tensor([3])  # Cu in (1, 6, 8, 29)

    def derivatives(r: float) -> tuple[float, float, float]:
        x = torch.tensor([r], dtype=torch.float64, requires_grad=True)
        u = term.pair_energy(x, species, species)
        (d1,) = torch.autograd.grad(u, x, create_graph=True)
        (d2,) = torch.autograd.grad(d1, x)
        return float(u.detach()), float(d1.detach()), float(d2)

    assert derivatives(2.05 + 1e-8) == (0.0, 0.0, 0.0)
    assert derivatives(2.05) == (0.0, 0.0, 0.0)
    inside = derivatives(2.05 - 1e-8)  # 2nd derivative there: V's 3rd times 1e-8 A, ~1e-6
    assert inside[0] == pytest.approx(0.0, abs=1e-15) and inside[1] == pytest.approx(0.0, abs=1e-9)
    assert inside[2] == pytest.approx(0.0, abs=1e-5)
    for r in (2.0, 1.9, 1.7, 1.4):  # V - its Taylor polynomial: positive, falling with r
        u, d1, d2 = derivatives(r)
        assert u > 0 and d1 < 0 and d2 > 0


def test_core_cutoffs_of_pairs_the_data_lack() -> None:
    """A pair the data never hold gets the smallest measured c / (R_i + R_j), times its
    own sum; none measured leaves the term off; bad input is an error."""
    term = CoreRepulsion([1, 6, 8])
    radius = {z: covalent_radii[z] for z in (1, 6, 8)}
    term.set_cutoffs({(1, 6): 0.9, (6, 1): 0.95, (1, 1): 1.5})  # (6, 1) is (1, 6) again
    ratio = 0.95 / (radius[1] + radius[6])
    got = term.cutoffs()
    assert got[(1, 6)] == 0.95 and got[(1, 1)] == 1.5
    assert got[(8, 8)] == pytest.approx(ratio * 2 * radius[8], rel=1e-12)
    assert got[(6, 8)] == pytest.approx(ratio * (radius[6] + radius[8]), rel=1e-12)
    term.set_cutoffs({})
    assert term.cutoffs() == {}
    with pytest.raises(ValueError, match="29"):
        term.set_cutoffs({(1, 29): 2.0})
    with pytest.raises(ValueError, match="> 0"):
        term.set_cutoffs({(1, 6): 0.0})


def test_unset_core_term_adds_nothing() -> None:
    with_term, without = twin_models("core")
    for model in (with_term, without):
        model.set_shortest_distances({})
    pair = [dimer(29, 29, 1.0)]
    assert float(evaluate(with_term, pair)[keys.ENERGY][0]) == float(
        evaluate(without, pair)[keys.ENERGY][0]
    )


def test_trainer_sets_the_cutoffs_and_the_file_keeps_them(tmp_path) -> None:  # noqa: ANN001
    """The trained model's cutoffs are the training split's shortest distances (ASE's
    neighbour list here), saved and loaded with the model."""
    from ase.neighborlist import neighbor_list
    from support import make_h5, quiet_run_config

    from mlip.data.hdf5 import H5Dataset
    from mlip.train.trainer import Trainer

    h5 = make_h5(str(tmp_path / "d.h5"), n_mol=6, n_cryst=0)
    values = {"data.train_size": 4, "data.valid_size": 2, "data.batch_size": 2,
              "model.num_channels": 4, "model.num_layers": 1, "train.max_epochs": 1,
              "train.tensorboard": False, "train.device": "cpu"}  # fmt: skip
    trainer = Trainer(quiet_run_config(h5, tmp_path / "run", values))
    dataset = H5Dataset(h5)
    expected: dict[tuple[int, int], float] = {}
    for s in dataset.iterate(trainer.split["train"]):
        atoms = s.to_atoms()
        i, j, d = neighbor_list("ijd", atoms, trainer.r_max)
        for a, b, length in zip(atoms.numbers[i], atoms.numbers[j], d, strict=True):
            key = (int(min(a, b)), int(max(a, b)))
            expected[key] = min(length, expected.get(key, np.inf))
    dataset.close()
    got = trainer.model.repulsion.cutoffs()
    assert set(expected) <= set(got)
    for pair, d in expected.items():
        assert got[pair] == pytest.approx(d, rel=1e-12)
    trainer.fit()
    loaded = load_model(tmp_path / "run" / "model.pt")
    assert loaded.repulsion.cutoffs() == trainer.model.repulsion.cutoffs()
    # the tangent features below the data take the same cutoffs
    assert torch.equal(loaded.tangent.cutoff, loaded.repulsion.cutoff)
