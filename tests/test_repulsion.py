"""The ZBL pair term of the learned model (mlip.nn.repulsion), checked against the
formula written out here in numpy, at and beyond its cutoff, and on old model files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase.data import covalent_radii
from support import evaluate
from support.models import small_model

from mlip import keys
from mlip.data.graph import Structure
from mlip.model import MLIPModel, load_model

pytestmark = pytest.mark.usefixtures("one_thread")


def zbl_reference(z1: int, z2: int, r: float) -> float:
    """ZBL universal potential (Ziegler, Biersack, Littmark 1985), eV, times the p = 6
    polynomial envelope to the sum of the covalent radii."""
    a = 0.46850 / (z1**0.23 + z2**0.23)  # ZBL screening length as LAMMPS pair zbl writes it
    x = r / a
    phi = (
        0.18175 * math.exp(-3.1998 * x)
        + 0.50986 * math.exp(-0.94229 * x)
        + 0.28022 * math.exp(-0.4029 * x)
        + 0.02817 * math.exp(-0.20162 * x)
    )
    rc = covalent_radii[z1] + covalent_radii[z2]
    if r >= rc:
        return 0.0
    t = r / rc
    envelope = 1 - 28 * t**6 + 48 * t**7 - 21 * t**8
    return 14.399645 * z1 * z2 / r * phi * envelope


def dimer(z1: int, z2: int, r: float) -> Structure:
    return Structure(
        positions=np.array([[0.0, 0.0, 0.0], [0.3 * r, 0.4 * r, math.sqrt(0.75) * r]]),
        atomic_numbers=np.array([z1, z2]),
    )


def twin_models() -> tuple[MLIPModel, MLIPModel]:
    """The same network with and without the pair term."""
    with_term = small_model(pair_repulsion=True)
    without = small_model(pair_repulsion=False)
    without.load_state_dict(with_term.state_dict())
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
    model = small_model(pair_repulsion=True).repulsion
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


def test_a_file_from_before_the_term_loads_without_it(tmp_path) -> None:  # noqa: ANN001
    with_term, without = twin_models()
    path = tmp_path / "old.pt"
    payload = without.payload()
    del payload["config"]["pair_repulsion"]  # as written before the option existed
    torch.save(payload, path)
    loaded = load_model(path)
    assert loaded.config.pair_repulsion is False and loaded.repulsion is None
    pair = [dimer(29, 29, 2.0)]
    assert float(evaluate(loaded, pair)[keys.ENERGY][0]) == float(
        evaluate(without, pair)[keys.ENERGY][0]
    )


def test_off_by_default_and_on_by_the_training_option() -> None:
    from mlip.train.config import TrainConfig
    from mlip.train.initial_model import build_model

    assert build_model(TrainConfig(), [29]).repulsion is None
    config = TrainConfig.from_dict({"model": {"pair_repulsion": True}}, "x.yaml")
    assert build_model(config, [29]).repulsion is not None
