"""e3nn's ``assert_equivariant`` on each building block of :mod:`mlip.nn`, in float64.

``e3nn.util.test.assert_equivariant`` evaluates a function on randomly rotated (and
reflected, and for ``cartesian_points`` inputs translated) arguments and compares with
the transformed outputs, irrep by irrep. Blocks whose inputs are invariant scalars
(the radial basis, the envelope, the radial MLP) are checked as functions of atom
positions through the edge geometry, where a wrong formula would show; the
interaction block is checked on random features of its declared irreps, and the
model's feature stack (embedding, edge features, all layers) from positions.
"""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from mlip.model import MLIPModel, ModelConfig
from mlip.nn.blocks import Interaction, RadialMLP, natural_irreps
from mlip.nn.geometry import pair_vectors
from mlip.nn.radial import BesselBasis, PolynomialEnvelope

TOL = 1e-10  # largest componentwise error, outputs are O(1)
R_MAX = 4.0
N_ATOMS = 6


@pytest.fixture(autouse=True)
def float64_and_seeded():
    """float64 defaults (e3nn draws its random transforms and inputs with them), a fixed
    seed (assert_equivariant draws from torch's global generator)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


def cluster_edges(n: int = N_ATOMS) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (n, 3) of a random cluster within r_max, and all ordered pairs i != j."""
    positions = 1.2 * torch.randn(n, 3)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    mask = i != j
    return positions, torch.stack([i[mask], j[mask]])


def edge_geometry(positions: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Edge vectors of a non-periodic cluster (no shifts)."""
    shifts = torch.zeros(0, 3)
    return pair_vectors(positions, edge_index, shifts, None, None)


def test_pair_vectors_are_translation_invariant_vectors_with_periodic_shifts() -> None:
    positions, edge_index = cluster_edges()
    shifts = torch.randint(-1, 2, (edge_index.shape[1], 3))
    system = torch.zeros(N_ATOMS, dtype=torch.long)

    def vectors(points: torch.Tensor, cell_rows: torch.Tensor) -> torch.Tensor:
        return pair_vectors(points, edge_index, shifts, cell_rows.reshape(1, 3, 3), system)

    cell = (3.0 * torch.eye(3) + 0.3 * torch.randn(3, 3)).reshape(1, 9)  # rows: 3x1o
    errors = assert_equivariant(
        vectors,
        args_in=[positions, cell],
        irreps_in=["cartesian_points", o3.Irreps("3x1o")],
        irreps_out=[o3.Irreps("1o")],
        tolerance=TOL,
    )
    assert set(errors) == {(0, False), (0, True), (1, False), (1, True)}  # translations too


def test_radial_embedding_of_edges_is_invariant() -> None:
    """BesselBasis times PolynomialEnvelope of the edge lengths, as the model builds it."""
    positions, edge_index = cluster_edges()
    basis, envelope = BesselBasis(R_MAX, 8), PolynomialEnvelope(R_MAX, 6)

    def embedding(points: torch.Tensor) -> torch.Tensor:
        r = edge_geometry(points, edge_index).norm(dim=-1)
        return basis(r) * envelope(r).unsqueeze(-1)

    assert (embedding(positions) != 0).any()  # some pairs inside the cutoff
    assert_equivariant(
        embedding,
        args_in=[positions],
        irreps_in=["cartesian_points"],
        irreps_out=[o3.Irreps("8x0e")],
        tolerance=TOL,
    )


def test_radial_mlp_of_edges_is_invariant() -> None:
    positions, edge_index = cluster_edges()
    basis, mlp = BesselBasis(R_MAX, 8).double(), RadialMLP([8, 16, 16, 5]).double()

    def weights(points: torch.Tensor) -> torch.Tensor:
        return mlp(basis(edge_geometry(points, edge_index).norm(dim=-1)))

    assert_equivariant(
        weights,
        args_in=[positions],
        irreps_in=["cartesian_points"],
        irreps_out=[o3.Irreps("5x0e")],
        tolerance=TOL,
    )


@pytest.mark.parametrize("l_max", [1, 2, 3])
def test_spherical_harmonics_edge_features(l_max: int) -> None:
    """The model's edge features Y(r_ij / |r_ij|) transform with their irreps (1o, 2e, ...)."""
    positions, edge_index = cluster_edges()
    irreps_sh = o3.Irreps.spherical_harmonics(l_max)
    harmonics = o3.SphericalHarmonics(irreps_sh, normalize=True, normalization="component")
    assert [ir.p for _, ir in irreps_sh] == [(-1) ** l for l in range(l_max + 1)]

    def features(points: torch.Tensor) -> torch.Tensor:
        return harmonics(edge_geometry(points, edge_index))

    assert_equivariant(
        features,
        args_in=[positions],
        irreps_in=["cartesian_points"],
        irreps_out=[irreps_sh],
        tolerance=TOL,
    )


@pytest.mark.parametrize(
    "irreps_in, irreps_out, l_max, correlation",
    [
        ("8x0e", "natural 1", 2, 2),  # the first layer: scalars in
        ("natural 1", "natural 1", 2, 2),  # a middle layer
        ("natural 2", "natural 2", 2, 1),  # l = 2 features, no square
        ("natural 1", "8x0e", 2, 2),  # the last layer: scalars out
        ("natural 1", "natural 1", 3, 2),  # l_max 3 edge features
    ],
)
def test_interaction_block_on_random_features(
    irreps_in: str, irreps_out: str, l_max: int, correlation: int
) -> None:
    """Interaction(h, node attributes, Y, radial embedding) with its declared irreps."""

    def irreps(spec: str) -> o3.Irreps:
        return natural_irreps(8, int(spec.split()[1])) if spec.startswith("natural") else spec

    irreps_in, irreps_out = o3.Irreps(irreps(irreps_in)), o3.Irreps(irreps(irreps_out))
    irreps_sh = o3.Irreps.spherical_harmonics(l_max)
    num_elements, num_radial = 3, 8
    block = Interaction(irreps_in, irreps_out, irreps_sh, num_elements, num_radial, 16, correlation)
    block = block.double()
    _, edge_index = cluster_edges()
    n_edges = edge_index.shape[1]
    inv_avg = torch.tensor(0.2)

    def layer(h, attrs, sh, radial):  # noqa: ANN001, ANN202
        return block(h, attrs, sh, radial, edge_index, inv_avg)

    args = [
        irreps_in.randn(N_ATOMS, -1),
        torch.randn(N_ATOMS, num_elements),
        irreps_sh.randn(n_edges, -1),
        torch.randn(n_edges, num_radial),
    ]
    assert layer(*args).abs().max() > 1e-3
    assert_equivariant(
        layer,
        args_in=args,
        irreps_in=[irreps_in, o3.Irreps(f"{num_elements}x0e"), irreps_sh, f"{num_radial}x0e"],
        irreps_out=[irreps_out],
        tolerance=TOL,
    )


@pytest.mark.parametrize("hidden_l_max", [0, 1, 2])
def test_model_feature_stack_from_positions(hidden_l_max: int) -> None:
    """Embedding, edge features and every interaction layer of an MLIPModel, as a
    function of the positions: the node features after each layer are equivariant."""
    config = ModelConfig(
        atomic_numbers=[1, 6, 8], num_channels=8, num_layers=3, r_max=R_MAX,
        hidden_l_max=hidden_l_max, radial_hidden=16,
    )  # fmt: skip
    model = MLIPModel(config).double()
    positions, edge_index = cluster_edges()
    species = torch.tensor([0, 1, 2, 0, 0, 1])
    attrs = torch.nn.functional.one_hot(species, 3).double()

    def features(points: torch.Tensor) -> list[torch.Tensor]:
        vectors = edge_geometry(points, edge_index)
        lengths = vectors.norm(dim=-1)
        radial = model.radial_basis(lengths) * model.envelope(lengths).unsqueeze(-1)
        sh = model.spherical_harmonics(vectors)
        h = model.embedding(attrs)
        out = []
        for layer in model.layers:
            h = layer(h, attrs, sh, radial, edge_index, model.inv_avg_neighbors)
            out.append(h)
        return out

    assert_equivariant(
        features,
        args_in=[positions],
        irreps_in=["cartesian_points"],
        irreps_out=[layer.irreps_out for layer in model.layers],
        tolerance=TOL,
    )
