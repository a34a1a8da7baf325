"""The radial features and their tangent below the training data (mlip.nn.radial)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from support import evaluate
from support.models import small_model
from support.structures import close_pair

from mlip import keys
from mlip.data.graph import Structure
from mlip.model import MLIPModel, ModelConfig, load_model
from mlip.nn.radial import TANGENT_JOIN_A, BesselBasis, PolynomialEnvelope, TangentBelow

pytestmark = pytest.mark.usefixtures("one_thread")

CU = 3  # Cu's row in small_model's elements (1, 6, 8, 29)


def test_closed_form_derivatives_are_autograds() -> None:
    basis, envelope = BesselBasis(5.0, 8).double(), PolynomialEnvelope(5.0, 6)
    r = torch.tensor([0.7, 1.9, 3.3, 4.8], dtype=torch.float64, requires_grad=True)
    for module, shape in ((basis, (4, 8)), (envelope, (4,))):
        value, d1, d2 = module.derivatives(r)
        columns = value.reshape(4, -1).T
        for k, column in enumerate(columns):
            (g1,) = torch.autograd.grad(column.sum(), r, create_graph=True)
            (g2,) = torch.autograd.grad(g1.sum(), r, retain_graph=True)
            assert torch.allclose(g1, d1.reshape(4, -1)[:, k], rtol=1e-10, atol=1e-12)
            assert torch.allclose(g2, d2.reshape(4, -1)[:, k], rtol=1e-10, atol=1e-10)
        assert value.shape == shape


def tangent_features(c: float) -> tuple[TangentBelow, BesselBasis, PolynomialEnvelope]:
    tangent = TangentBelow(4)
    tangent.cutoff[CU, CU] = c
    return tangent, BesselBasis(5.0, 8).double(), PolynomialEnvelope(5.0, 6)


def features_and_derivatives(r: float, c: float) -> list[torch.Tensor]:
    """f, df/dr, d2f/dr2 of a Cu-Cu edge at ``r`` (A) with the tangent below ``c``."""
    tangent, basis, envelope = tangent_features(c)
    x = torch.tensor([r], dtype=torch.float64, requires_grad=True)
    species = torch.tensor([CU])
    f = tangent(x, basis(x) * envelope(x).unsqueeze(-1), species, species, basis, envelope)
    rows = [[], [], []]
    for k in range(f.shape[-1]):
        (d1,) = torch.autograd.grad(f[0, k], x, create_graph=True)
        (d2,) = torch.autograd.grad(d1, x, retain_graph=True)
        rows[0].append(f[0, k].detach())
        rows[1].append(d1.detach()[0])
        rows[2].append(d2[0])
    return [torch.stack(row) for row in rows]


def test_tangent_joins_the_features_to_the_second_derivative_and_turns_linear() -> None:
    c = 2.05
    above, below = features_and_derivatives(c + 1e-7, c), features_and_derivatives(c - 1e-7, c)
    for k, (a, b) in enumerate(zip(above, below, strict=True)):
        assert torch.allclose(a, b, atol=1e-5 * 10**k), k  # f, f', f'' continuous at c
    at_c = features_and_derivatives(c, c)
    far = features_and_derivatives(c - 30 * TANGENT_JOIN_A, c)  # 1.5 A below c
    # far below: the tangent itself (the slope at c, no curvature) ...
    assert torch.allclose(far[1], at_c[1], rtol=1e-9, atol=1e-9)
    assert far[2].abs().max() < 1e-8 * at_c[2].abs().max()
    # ... where the Bessel functions' own continuation curves away (the check can fail)
    tangent, basis, envelope = tangent_features(0.0)  # unset: the basis' own
    x = torch.tensor([c - 1.5], dtype=torch.float64)
    own = basis(x) * envelope(x).unsqueeze(-1)
    line = at_c[0] - 1.5 * at_c[1]
    assert (own[0] - line).abs().max() > 0.05
    species = torch.tensor([CU])
    assert torch.equal(tangent(x, own, species, species, basis, envelope), own)


def twins(shortest: dict[tuple[int, int], float]) -> tuple[MLIPModel, MLIPModel]:
    """The same weights with the tangent features and with the Bessel ones."""
    tangent = small_model((29, 79))
    config = dataclasses.replace(tangent.config, inner_features="bessel")
    bessel = MLIPModel(ModelConfig.from_dict(config.to_dict())).double()
    state = {k: v for k, v in tangent.state_dict().items() if not k.startswith("tangent.")}
    bessel.load_state_dict(state)
    for model in (tangent, bessel):
        model.set_shortest_distances(shortest)
    return tangent, bessel


def test_tangent_changes_nothing_where_the_data_are() -> None:
    """Cutoffs from a cell's own statistics: the cell's energy and forces are the same bit
    for bit; a pair pushed closer than any is not."""
    from ase.build import bulk

    from mlip.train.statistics import compute_statistics

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.numbers[::3] = 79
    atoms.rattle(0.1, seed=3)
    cell = Structure.from_atoms(atoms)
    stats = compute_statistics([dataclasses.replace(cell, energy=0.0)], [29, 79], 5.0)
    tangent, bessel = twins(stats.shortest_distances)
    a, b = evaluate(tangent, [cell]), evaluate(bessel, [cell])
    assert torch.equal(a[keys.ENERGY], b[keys.ENERGY])
    assert torch.equal(a[keys.FORCES], b[keys.FORCES])
    closer = close_pair(atoms.copy(), 0.85 * stats.shortest_distances[(29, 79)])
    a, b = (
        evaluate(tangent, [Structure.from_atoms(closer)]),
        evaluate(bessel, [Structure.from_atoms(closer)]),
    )
    assert not np.isclose(float(a[keys.ENERGY][0]), float(b[keys.ENERGY][0]), rtol=0, atol=1e-9)


def test_files_from_before_the_option_keep_the_bessel_features(tmp_path) -> None:  # noqa: ANN001
    """A file without ``inner_features`` (nor the tangent's cutoffs) loads as written."""
    tangent, bessel = twins({(29, 29): 2.5, (29, 79): 2.6, (79, 79): 2.7})
    payload = bessel.payload()
    del payload["config"]["inner_features"]
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.config.inner_features == "bessel" and loaded.tangent is None
    pair = [Structure(positions=np.array([[0.0, 0, 0], [0, 0, 2.0]]),
                      atomic_numbers=np.array([29, 79]))]  # fmt: skip
    assert float(evaluate(loaded, pair)[keys.ENERGY][0]) == float(
        evaluate(bessel, pair)[keys.ENERGY][0]
    )
    assert float(evaluate(tangent, pair)[keys.ENERGY][0]) != float(
        evaluate(bessel, pair)[keys.ENERGY][0]
    )


def test_train_mode_evaluates_the_edges_below_c_alike() -> None:
    """In train mode only the edges below c are evaluated (index_copy), in eval mode every
    edge (where, no host sync for batched MD): energies, forces, stress and Hessians equal
    on a cell with pairs below c, and the cell does hold such pairs."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.numbers[::3] = 79
    atoms.rattle(0.05, seed=4)
    shortest = {(29, 29): 2.4, (29, 79): 2.4, (79, 79): 2.4}
    closer = Structure.from_atoms(close_pair(atoms, 2.0))
    model = small_model((29, 79))
    model.set_shortest_distances(shortest)
    lengths = torch.as_tensor(closer.positions[0] - closer.positions[1]).norm()
    assert float(lengths) < 2.4  # close_pair: atoms 0 and 1
    outputs = {}
    for mode in ("train", "eval"):
        model.train(mode == "train")
        outputs[mode] = evaluate(model, [closer], stress=True, hessian=True)
    model.eval()
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS, keys.HESSIAN):
        torch.testing.assert_close(outputs["train"][key], outputs["eval"][key], rtol=0, atol=1e-10)
