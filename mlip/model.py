"""The mlip energy model: an E(3)-equivariant message-passing network (e3nn).

    E = sum_i [ E0(z_i) + s * sum_t e_t(h_i^t) ] + E_rep

h_i^0 is an embedding of the element z_i; each of ``num_layers`` interaction blocks
(:mod:`mlip.nn.blocks`) updates the features from neighbours within r_max; e_t is a
linear readout of the scalar channels after layer t (an MLP after the last one).
E0 are per-element reference energies (least squares on the training set) and s a
scale (the force RMS), so the network learns a small, O(1) correction. E_rep is a
fixed short-range pair term (:mod:`mlip.nn.repulsion`, ``repulsion``): by default ZBL
below the training data's shortest distance of each pair of elements, zero wherever
the data are, so that a pair closer than any the data hold is pushed apart. Forces,
stress and Hessians come from :mod:`mlip.derivatives` by autograd.
Units: eV, Angstrom.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch
from e3nn import o3

from mlip import keys
from mlip.committee import COMMITTEE_FORMAT, COMMITTEE_VERSION, Committee
from mlip.errors import CheckpointError, check_known_elements
from mlip.fields import option, resolve_device
from mlip.fileio import atomic_torch_save
from mlip.nn.blocks import Interaction, natural_irreps
from mlip.nn.geometry import pair_vectors
from mlip.nn.radial import (
    INNER_FEATURES,
    BesselBasis,
    PolynomialEnvelope,
    TangentBelow,
    pair_cutoffs,
)
from mlip.nn.repulsion import REPULSION_KINDS, CoreRepulsion, make_repulsion

MODEL_FORMAT = "mlip-model"
MODEL_VERSION = 1
CODEGEN_MARK = "._compiled_"


@dataclass
class Architecture:
    """Hyperparameters of the network, independent of the elements. Lengths in Angstrom.

    r_max: cutoff; num_radial: Bessel functions; envelope_p: envelope exponent; l_max:
    spherical-harmonic degree of the edge features (with ``num_layers`` 2 the degrees above
    ``hidden_l_max`` couple to nothing: the first layer reads scalars, the last writes
    scalars; they act in the layers between); hidden_l_max: highest l of the node
    features; num_channels: channels per irrep; num_layers: interaction blocks;
    radial_hidden: width of the radial MLP; correlation: 2 adds the channel-wise square
    (body order 3 per layer), 1 leaves it out; readout_hidden: width of the last readout
    MLP; repulsion: the fixed pair term of :mod:`mlip.nn.repulsion` (``core``: ZBL below
    the training data's shortest distance of each element pair, so that atoms closer
    than any training pair repel; ``zbl``: ZBL below the covalent radii; ``none``).
    These defaults are the training recipe's (the ``model`` section of
    :class:`mlip.train.config.TrainConfig` is this class plus training-only keys).
    """

    r_max: float = option(5.0, "cutoff radius", unit="A")
    num_radial: int = option(8, "radial (Bessel) basis functions")
    envelope_p: int = option(6, "exponent of the polynomial cutoff envelope")
    l_max: int = option(2, "maximum angular momentum of the edge features")
    hidden_l_max: int = option(1, "maximum angular momentum of the node features")
    num_channels: int = option(64, "channels per irrep")
    num_layers: int = option(2, "interaction (message-passing) layers")
    radial_hidden: int = option(32, "width of the radial MLP")
    correlation: int = option(2, "2: add the channel-wise square (body order 3 a layer); 1: not")
    readout_hidden: int = option(16, "width of the last readout MLP")
    repulsion: str = option(
        "core",
        "short-range pair term added to the network (mlip.nn.repulsion): 'core', ZBL only "
        "below the training data's shortest distance of each element pair; 'zbl', ZBL "
        "below the sum of covalent radii; 'none'",
        choices=REPULSION_KINDS,
    )
    inner_features: str = option(
        "tangent",
        "radial features below the training data's shortest distance of each element pair "
        "(mlip.nn.radial): 'tangent', continued on their tangent there, so forces keep the "
        "data's trend; 'bessel', the Bessel basis' own continuation",
        choices=INNER_FEATURES,
    )

    def check(self) -> None:
        """ValueError naming the first invalid hyperparameter."""
        checks = {
            "r_max": self.r_max > 0, "num_radial": self.num_radial >= 1,
            "envelope_p": self.envelope_p >= 2, "l_max": 0 <= self.l_max <= 4,
            "hidden_l_max": 0 <= self.hidden_l_max <= self.l_max,
            "num_channels": self.num_channels >= 1, "num_layers": self.num_layers >= 1,
            "radial_hidden": self.radial_hidden >= 1, "correlation": self.correlation in (1, 2),
            "readout_hidden": self.readout_hidden >= 1,
            "repulsion": self.repulsion in REPULSION_KINDS,
            "inner_features": self.inner_features in INNER_FEATURES,
        }  # fmt: skip
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid model hyperparameter {name}={getattr(self, name)!r}")

    @classmethod
    def field_names(cls) -> list[str]:
        """The architecture's hyperparameter names (not ``atomic_numbers``)."""
        return [f.name for f in dataclasses.fields(Architecture)]


@dataclass
class ModelConfig(Architecture):
    """An :class:`Architecture` for the elements ``atomic_numbers`` (sorted, distinct)."""

    atomic_numbers: list[int] = field(default_factory=lambda: [1, 6, 8])

    def __post_init__(self) -> None:
        z = list(self.atomic_numbers)
        if not z or len(set(z)) != len(z) or min(z) < 1 or max(z) > 118:
            raise ValueError(f"atomic_numbers must be distinct in 1..118, got {z}")
        self.atomic_numbers = sorted(int(x) for x in z)
        self.check()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model hyperparameters: {sorted(unknown)}")
        return cls(**values)


class MLIPModel(torch.nn.Module):
    """Energy model; forward(batch) -> {ENERGY: (n_systems,), NODE_ENERGY: (n_atoms,)} in eV."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.r_max = float(config.r_max)
        self.atomic_numbers = list(config.atomic_numbers)
        n_el = len(self.atomic_numbers)
        # Raise UnknownElementError for elements outside atomic_numbers (one host sync per
        # call; the MD engine validates once and switches this off).
        self.check_elements = True

        table = torch.full((119,), -1, dtype=torch.long)
        table[torch.tensor(self.atomic_numbers)] = torch.arange(n_el)
        self.register_buffer("element_index", table, persistent=False)
        self.register_buffer("atomic_energies", torch.zeros(n_el))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("inv_avg_neighbors", torch.ones(()))

        self.radial_basis = BesselBasis(config.r_max, config.num_radial)
        self.envelope = PolynomialEnvelope(config.r_max, config.envelope_p)
        self.repulsion = make_repulsion(config.repulsion, self.atomic_numbers, config.r_max)
        self.tangent = TangentBelow(n_el) if config.inner_features == "tangent" else None
        self.irreps_sh = o3.Irreps.spherical_harmonics(config.l_max)
        self.spherical_harmonics = o3.SphericalHarmonics(
            self.irreps_sh, normalize=True, normalization="component"
        )
        parity = [float(ir.p) for _, ir in self.irreps_sh for _ in range(ir.dim)]
        self.register_buffer("sh_parity", torch.tensor(parity), persistent=False)  # (-1)^l
        scalars = o3.Irreps(f"{config.num_channels}x0e")
        hidden = natural_irreps(config.num_channels, config.hidden_l_max)
        self.embedding = o3.Linear(o3.Irreps(f"{n_el}x0e"), scalars)
        self.layers = torch.nn.ModuleList()
        self.readouts = torch.nn.ModuleList()
        irreps_in = scalars
        self.num_scalars: list[int] = []  # per layer; scalars come first in its irreps
        for t in range(config.num_layers):
            last = t == config.num_layers - 1
            irreps_out = scalars if last else hidden
            self.layers.append(
                Interaction(
                    irreps_in, irreps_out, self.irreps_sh, n_el, config.num_radial,
                    config.radial_hidden, config.correlation,
                )
            )  # fmt: skip
            num_scalars = irreps_out.count("0e")
            self.num_scalars.append(num_scalars)
            if last:
                self.readouts.append(
                    torch.nn.Sequential(
                        torch.nn.Linear(num_scalars, config.readout_hidden),
                        torch.nn.SiLU(),
                        torch.nn.Linear(config.readout_hidden, 1),
                    )
                )
            else:
                self.readouts.append(torch.nn.Linear(num_scalars, 1))
            irreps_in = irreps_out

    # -- statistics set by the trainer -------------------------------------
    def set_atomic_energies(self, energies: dict[int, float]) -> None:
        """Per-element reference energies E0 (eV); elements not given keep 0."""
        for z, e in energies.items():
            if z not in self.atomic_numbers:
                raise ValueError(f"element {z} is not among the model's {self.atomic_numbers}")
            self.atomic_energies[self.atomic_numbers.index(z)] = float(e)

    def set_scale(self, scale: float) -> None:
        """Scale s of the network's per-atom output (eV), e.g. the force RMS."""
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale.fill_(float(scale))

    def set_shortest_distances(self, shortest: dict[tuple[int, int], float]) -> None:
        """The training data's shortest distance (A) of each pair of atomic numbers: the
        cutoffs of the ``core`` pair term (:meth:`CoreRepulsion.set_cutoffs`) and of the
        tangent features (:class:`mlip.nn.radial.TangentBelow`); a model with neither
        ignores them."""
        if isinstance(self.repulsion, CoreRepulsion):
            self.repulsion.set_cutoffs(shortest)
        if self.tangent is not None:
            self.tangent.cutoff.copy_(pair_cutoffs(self.atomic_numbers, shortest))

    def set_avg_num_neighbors(self, n: float) -> None:
        """Average neighbour count, normalising the message sums."""
        if not n > 0:
            raise ValueError(f"avg_num_neighbors must be > 0, got {n}")
        self.inv_avg_neighbors.fill_(1.0 / float(n))

    # -- forward -------------------------------------------------------------
    def element_indices(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Row of each atom's element in the model's tables; UnknownElementError if absent.

        The check reads a device value (a host sync, and a graph break under
        torch.compile); it is skipped while compiling, so compiled callers
        (MLIPCalculator, mlip.md.ForceField) check the elements themselves first.
        """
        index = self.element_index[atomic_numbers]
        check = self.check_elements and not torch.compiler.is_compiling()
        if check and bool((index < 0).any()):
            check_known_elements(atomic_numbers[index < 0].tolist(), self.atomic_numbers)
        return index

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        species = self.element_indices(batch[keys.ATOMIC_NUMBERS])
        paired = keys.EDGES_PAIRED in batch and keys.HOP_COUNTS not in batch
        lengths, edge_sh, edge_radial = self._edge_features(batch, species, paired)
        edge_index = batch[keys.EDGE_INDEX]
        # one-hot by comparison: F.one_hot validates its input with a host sync
        classes = torch.arange(len(self.atomic_numbers), device=species.device)
        node_attrs = (species.unsqueeze(-1) == classes).to(edge_sh)

        h = self.embedding(node_attrs)
        if keys.HOP_COUNTS in batch:
            node_energy = self._domain_energies(batch, h, node_attrs, edge_sh, edge_radial)
        else:
            node_energy = torch.zeros_like(lengths.new_empty(h.shape[0]))
            for layer, readout, n_scalars in zip(
                self.layers, self.readouts, self.num_scalars, strict=True
            ):
                h = layer(
                    h, node_attrs, edge_sh, edge_radial, edge_index, self.inv_avg_neighbors,
                    paired=paired,
                )  # fmt: skip
                node_energy = node_energy + readout(h[:, :n_scalars]).squeeze(-1)
        node_energy = self.scale * node_energy + self.atomic_energies[species]
        if self.repulsion is not None:
            node_energy = node_energy + self.repulsion(lengths, edge_index, species)
        if keys.HOP_COUNTS in batch:  # only the first hop_counts[0] energies are wanted
            wanted = int(batch[keys.HOP_COUNTS][0])
            node_energy = torch.cat([node_energy[:wanted], node_energy.new_zeros(len(h) - wanted)])
        n_systems = batch[keys.NUM_ATOMS].shape[0]
        energy = torch.zeros(n_systems, dtype=node_energy.dtype, device=node_energy.device)
        energy = energy.index_add(0, batch[keys.BATCH], node_energy)
        return {keys.ENERGY: energy, keys.NODE_ENERGY: node_energy}

    def _edge_features(
        self, batch: dict[str, torch.Tensor], species: torch.Tensor, paired: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Lengths (n_edges,) and spherical harmonics (n_edges, sh) of every edge, and
        the radial features: (n_edges, num_radial), or, with ``paired`` edges
        (:data:`mlip.keys.EDGES_PAIRED`), those of the first half, which serve both.

        r_ji = -r_ij: with paired edges everything is computed on the first half only,
        the second half taking the same lengths and Y_l(-r) = (-1)^l Y_l(r).
        """
        edge_index, shifts = batch[keys.EDGE_INDEX], batch[keys.EDGE_SHIFTS]
        if paired:
            half = edge_index.shape[1] // 2
            edge_index, shifts = edge_index[:, :half], shifts[:half]
        vectors = pair_vectors(
            batch[keys.POSITIONS], edge_index, shifts, batch.get(keys.CELL), batch.get(keys.BATCH)
        )
        lengths = vectors.norm(dim=-1)
        edge_radial = self.radial_basis(lengths) * self.envelope(lengths).unsqueeze(-1)
        if self.tangent is not None:
            edge_radial = self.tangent(
                lengths, edge_radial, species[edge_index[0]], species[edge_index[1]],
                self.radial_basis, self.envelope,
            )  # fmt: skip
        edge_sh = self.spherical_harmonics(vectors)
        if paired:
            edge_sh = torch.cat([edge_sh, edge_sh * self.sh_parity.to(edge_sh)])
            lengths = torch.cat([lengths, lengths])
        return lengths, edge_sh, edge_radial

    def _domain_energies(
        self,
        batch: dict[str, torch.Tensor],
        h: torch.Tensor,
        node_attrs: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
    ) -> torch.Tensor:
        """Unscaled network energies of a domain (:data:`mlip.keys.HOP_COUNTS`): layer t
        of L runs on the atoms within L - t hops of the wanted ones and on their edges
        only, the readouts on the wanted atoms; the other atoms' entries are zero.

        The result equals the full evaluation on the wanted atoms: an atom's features
        after layer t depend only on atoms within t hops, and an atom more than L - t hops
        away cannot reach a wanted atom in the remaining layers.
        """
        hops = batch[keys.HOP_COUNTS].tolist()
        num_layers = len(self.layers)
        n_atoms = h.shape[0]

        def within(n_hops: int) -> int:  # atoms within n_hops hops (all beyond the table)
            return int(hops[n_hops]) if n_hops < len(hops) else n_atoms

        centre = batch[keys.EDGE_INDEX][0]
        wanted = within(0)
        energy = h.new_zeros(wanted)
        for t, (layer, readout, n_scalars) in enumerate(
            zip(self.layers, self.readouts, self.num_scalars, strict=True), start=1
        ):
            n_out = within(num_layers - t)
            edges = torch.nonzero(centre < n_out).squeeze(-1)
            h = layer(
                h, node_attrs, edge_sh[edges], edge_radial[edges],
                batch[keys.EDGE_INDEX][:, edges], self.inv_avg_neighbors, num_out=n_out,
            )  # fmt: skip
            energy = energy + readout(h[:wanted, :n_scalars]).squeeze(-1)
        return torch.cat([energy, energy.new_zeros(n_atoms - wanted)])

    # -- state -------------------------------------------------------------
    # e3nn's generated code modules gain constant buffers ("..._compiled_...
    # _tensor_constant0") when deep-copied or unpickled; they are rebuilt from the
    # irreps at construction, so they are left out of the state on both sides.
    def state_dict(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 (torch's signature)
        state = super().state_dict(*args, **kwargs)
        for key in [k for k in state if CODEGEN_MARK in k]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # noqa: ANN001, ANN201
        state = {k: v for k, v in state_dict.items() if CODEGEN_MARK not in k}
        result = super().load_state_dict(state, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if CODEGEN_MARK not in k]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"state dict does not match the model: missing {missing}, "
                f"unexpected {result.unexpected_keys}"
            )
        return result

    # -- files ---------------------------------------------------------------
    def payload(self) -> dict:
        """What :meth:`save` writes: hyperparameters, weights, elements and units."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "config": self.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "units": {"energy": "eV", "length": "Angstrom"},
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write hyperparameters, weights, elements and units to ``path`` atomically."""
        atomic_torch_save(self.payload(), path)


def interaction_layers(model: torch.nn.Module) -> int:
    """Message-passing layers of an energy model: ``config.num_layers`` of an
    :class:`MLIPModel`, the most of a committee's members, 1 for a model without layers
    (a pair potential). An atom's energy depends on atoms within this many times r_max."""
    members = getattr(model, "members", None)
    if members is not None:
        return max(interaction_layers(m) for m in members)
    return int(getattr(getattr(model, "config", None), "num_layers", 1))


def covering_model(model: torch.nn.Module, atomic_numbers) -> torch.nn.Module:  # noqa: ANN001
    """``model`` if it knows every element of ``atomic_numbers`` (or takes any element);
    else an untrained :class:`MLIPModel` with its hyperparameters for the union of
    elements, on the same device and dtype (benchmarks time systems a trained model
    cannot evaluate with it: the cost, not the values, is what they measure)."""
    known = getattr(model, "atomic_numbers", None)
    wanted = {int(z) for z in atomic_numbers}
    if known is None or wanted <= set(known):
        return model
    config = dataclasses.replace(model.config, atomic_numbers=sorted(wanted | set(known)))
    param = next(model.parameters())
    return MLIPModel(config).to(device=param.device, dtype=param.dtype).eval()


def load_model(
    path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
) -> MLIPModel | Committee:
    """Load a model written by :meth:`MLIPModel.save` (or a :class:`~mlip.committee.Committee`
    written by its ``save``) onto ``device`` (``auto``: cuda if torch sees a GPU, else
    cpu); raises CheckpointError if it is not one."""
    path = os.fspath(path)
    device = resolve_device(device)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: model file not found") from err
    except Exception as err:  # noqa: BLE001 (torch raises many kinds for a bad file)
        raise CheckpointError(f"{path}: not a readable mlip model file ({err})") from err
    if isinstance(payload, dict) and payload.get("format") == COMMITTEE_FORMAT:
        if payload.get("version") != COMMITTEE_VERSION:
            raise CheckpointError(
                f"{path}: committee file version {payload.get('version')} unsupported"
            )
        members = payload.get("members")
        if not isinstance(members, list) or not members:
            raise CheckpointError(f"{path}: committee file without members")
        built = [_from_payload(p, f"{path}, member {k}") for k, p in enumerate(members)]
        return Committee(built).to(device=device, dtype=dtype).eval()
    return _from_payload(payload, path).to(device=device, dtype=dtype).eval()


def _current_config(config: dict) -> dict:
    """A saved model config in today's keys: files written before ``repulsion`` had no
    pair term, or the ZBL one under ``pair_repulsion: true``; before ``inner_features``,
    the Bessel features below the data."""
    config = dict(config)
    if "repulsion" not in config:
        config["repulsion"] = "zbl" if config.pop("pair_repulsion", False) else "none"
    config.setdefault("inner_features", "bessel")
    return config


def _from_payload(payload: object, path: str) -> MLIPModel:
    """The float64 model of one :meth:`MLIPModel.payload`; CheckpointError naming ``path``."""
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path}: not an mlip model file (no '{MODEL_FORMAT}' header)")
    if payload.get("version") != MODEL_VERSION:
        raise CheckpointError(f"{path}: model file version {payload.get('version')} unsupported")
    try:
        # Build in float64 first so that float64 weights are not rounded on the way in.
        model = MLIPModel(ModelConfig.from_dict(_current_config(payload["config"]))).double()
        model.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: model file is inconsistent ({err})") from err
    return model
