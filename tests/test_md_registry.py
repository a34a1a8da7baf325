"""The structure of mlip.md: an acyclic import graph, the ensemble registry (needs,
parameters, errors), one place for the defaults, the state helpers the runner uses."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import ase
import h5py
import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip.cli import build_parser
from mlip.cli.md import config_from_args
from mlip.md import (
    DEFAULTS,
    ENSEMBLES,
    INTEGRATOR_REGISTRY,
    ForceField,
    MDConfig,
    Simulation,
    build_integrator,
    degrees_of_freedom,
    ensemble_spec,
    from_atoms,
    make_integrator,
    maxwell_boltzmann,
    run_md,
    select_systems,
)
from mlip.md.barostat import StochasticCellRescaling
from mlip.md.nose_hoover import NoseHooverHalfStep
from mlip.potentials import LennardJones

pytestmark = pytest.mark.usefixtures("one_thread")

PACKAGE = Path(__file__).resolve().parents[1] / "mlip"
EPS, SIGMA, RC = 0.0104, 3.4, 6.0  # argon


# --- the import graph ----------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the mlip package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest module prefix of a dotted name (None outside the package)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """(module -> imported mlip modules, imports of private names across modules), with
    the imports inside functions; the implicit import of a parent package is left out."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    private: list[str] = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [_resolve(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if full in modules:
                        targets.append(full)
                    else:
                        targets.append(_resolve(base, modules))
                        if alias.name.startswith("_") and base.startswith("mlip"):
                            private.append(f"{name}: from {base} import {alias.name}")
            graph[name].update(t for t in targets if t is not None and t != name)
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_md_import_graph_is_acyclic():
    graph, private = _import_graph()
    md = [name for name in graph if name.startswith("mlip.md")]
    assert {"mlip.md.integrators", "mlip.md.registry", "mlip.md.runner"} <= set(md)
    # every module reachable from mlip.md, so that a cycle through another package counts
    reachable, todo = set(md), list(md)
    while todo:
        for w in graph[todo.pop()]:
            if w not in reachable:
                reachable.add(w)
                todo.append(w)
    sub = {v: graph[v] & reachable for v in reachable}
    assert _cycles(sub) == []
    assert [p for p in private if p.startswith("mlip.md")] == []
    # the test sees function-level imports: a cycle made of one is found
    sub["mlip.md.state"] = sub["mlip.md.state"] | {"mlip.md.runner"}
    assert any("mlip.md.state" in c and "mlip.md.runner" in c for c in _cycles(sub))


def test_layers_of_the_md_package():
    """Low modules import nothing from the ensembles; integrators not from the runner."""
    graph, _ = _import_graph()
    md = lambda name: {m for m in graph[name] if m.startswith("mlip.md")}  # noqa: E731
    assert md("mlip.md.config") == set()
    assert md("mlip.md.state") == {"mlip.md.config"}
    assert md("mlip.md.steps") == {"mlip.md.config", "mlip.md.state"}
    for name in ("mlip.md.integrators", "mlip.md.nose_hoover", "mlip.md.barostat"):
        assert md(name) <= {"mlip.md.config", "mlip.md.state", "mlip.md.steps"}, name
    assert "mlip.md.runner" not in md("mlip.md.registry")


# --- the registry --------------------------------------------------------------------------
def crystal(n: int = 1) -> list[ase.Atoms]:
    return [bulk("Ar", "fcc", a=5.26, cubic=True) * (2, 2, 2)] * n


@pytest.mark.parametrize("name", ENSEMBLES)
def test_each_ensemble_declares_what_it_needs(name):
    spec = INTEGRATOR_REGISTRY[name]
    assert spec.name == name and spec.integrator.ensemble == name and spec.summary
    assert ensemble_spec(name) is spec
    assert set(spec.parameters) <= set(MDConfig.field_names())
    # built from a config: its constructor takes the timestep, exactly the declared
    # parameters (and the seed when stochastic), with MDConfig's defaults
    signature = inspect.signature(spec.integrator)
    seed = {"seed"} if spec.needs.stochastic else set()
    assert set(signature.parameters) == {"timestep", *spec.parameters, *seed}
    for parameter in signature.parameters.values():
        assert parameter.default == getattr(DEFAULTS, parameter.name), parameter.name
    config = DEFAULTS.replace(ensemble=name, timestep=2.0, seed=5)
    integrator = build_integrator(config)
    assert isinstance(integrator, spec.integrator) and integrator.timestep == 2.0
    assert integrator.stochastic == spec.needs.stochastic
    state = from_atoms(crystal(2), temperature=40.0)
    state = maxwell_boltzmann(state, generator=torch.Generator().manual_seed(0))
    # an integrator never switches the force field's stress on
    force_field = ForceField(LennardJones(EPS, SIGMA, RC), skin=0.5)
    if spec.needs.stress:
        with pytest.raises(ValueError, match="stress"):
            integrator.init(state, force_field)
    else:
        assert integrator.init(state, force_field).stress is None
    assert force_field.stress is False and force_field.variable_cell is False
    # the runner does, from the registry
    sim = Simulation(state, force_field, build_integrator(config))
    assert force_field.stress == force_field.variable_cell == spec.needs.stress
    sim.advance(3)
    assert (sim.state.stress is not None) == spec.needs.stress
    assert (sim.state.thermostat is not None) == spec.needs.thermostat_state
    assert (sim.integrator.rng_state() is not None) == spec.needs.stochastic
    # periodic cells: a molecule is refused exactly when the ensemble needs them
    dimer = from_atoms(ase.Atoms("Ar2", [[0, 0, 0], [3.8, 0, 0]]), temperature=40.0)
    if spec.needs.periodic:
        with pytest.raises(ValueError, match="not periodic in all three directions"):
            Simulation(dimer, ForceField(LennardJones(EPS, SIGMA, RC)), build_integrator(config))
    else:
        Simulation(dimer, ForceField(LennardJones(EPS, SIGMA, RC)), build_integrator(config))


def test_unknown_ensemble_lists_the_known_ones():
    for call in (
        lambda: ensemble_spec("npt-berendsen"),
        lambda: make_integrator("npt-berendsen", 1.0),
        lambda: build_integrator(DEFAULTS.replace(ensemble="npt-berendsen")),
        lambda: run_md(LennardJones(EPS, SIGMA, RC), crystal(), "npt-berendsen", steps=1),
    ):
        with pytest.raises(ValueError, match="unknown ensemble 'npt-berendsen'") as info:
            call()
        for name in ENSEMBLES:
            assert name in str(info.value)


def test_aliases_and_unknown_parameters():
    assert ensemble_spec("Langevin").name == "nvt-langevin"
    assert ensemble_spec("csvr").name == ensemble_spec("bussi").name == "nvt-bussi"
    assert ensemble_spec("nose-hoover").name == ensemble_spec("NHC").name == "nvt-nhc"
    assert make_integrator("nhc", 1.0).ensemble == "nvt-nhc"
    with pytest.raises(TypeError, match="unknown integrator parameter.*frictoin"):
        make_integrator("nvt-langevin", 1.0, frictoin=0.1)
    with pytest.raises(TypeError, match="unknown MD option.*temprature"):
        run_md(LennardJones(EPS, SIGMA, RC), crystal(), "nve", temprature=10.0)


def test_trajectory_records_only_the_parameters_of_the_ensemble(tmp_path):
    model = LennardJones(EPS, SIGMA, RC)
    for name in ("nve", "nvt-langevin", "nvt-nhc", "npt-bussi"):
        traj = tmp_path / f"{name}.h5"
        run_md(model, crystal(), name, temperature=30.0, timestep=4.0, steps=2, log_every=1,
               traj=traj, progress=False, friction=0.05, tau=50.0)  # fmt: skip
        with h5py.File(traj, "r") as f:
            attrs = dict(next(iter(f.values())).attrs)
        spec = INTEGRATOR_REGISTRY[name]
        common = {"ensemble", "timestep_fs", "seed", "temperature_K"}
        assert set(attrs) - {"sampling", "system_index"} == common | set(spec.parameters)
        assert attrs["ensemble"] == name and attrs["timestep_fs"] == 4.0
    assert float(attrs["tau"]) == 50.0 and float(attrs["tau_p"]) == DEFAULTS.tau_p


# --- one place for the defaults ------------------------------------------------------------
def test_cli_and_operators_take_the_defaults_of_mdconfig():
    args = build_parser().parse_args(["md", "model.pt", "structure.xyz"])
    assert config_from_args(args) == DEFAULTS
    argv = ["md", "m.pt", "s.xyz", "--traj", "out/md.h5", "--tau-p", "50", "--no-progress"]
    args = build_parser().parse_args([*argv, "--dtype", "float32"])
    config = config_from_args(args)
    assert config.tau_p == 50.0 and config.progress is False and config.dtype == torch.float32
    assert Path(config.log) == Path("out/md.csv")
    for operator in (NoseHooverHalfStep, StochasticCellRescaling):
        for parameter in inspect.signature(operator).parameters.values():
            if parameter.name != "noise":
                assert parameter.default == getattr(DEFAULTS, parameter.name), parameter.name
    defaults = [p.default for p in inspect.signature(run_md).parameters.values()]
    assert set(defaults) <= {None, inspect.Parameter.empty}  # run_md's are MDConfig's


def test_degrees_of_freedom():
    n = torch.tensor([1, 2, 5])
    assert degrees_of_freedom(n).tolist() == [3.0, 3.0, 12.0]
    assert degrees_of_freedom(n, fixed_com=False).tolist() == [3.0, 6.0, 15.0]
    assert from_atoms([ase.Atoms("Ar"), *crystal()]).dof.tolist() == [3.0, 93.0]


# --- the runner's chunks and selection -----------------------------------------------------
def test_run_chunks_end_on_log_steps():
    state = from_atoms(crystal(), temperature=30.0)
    sim = Simulation(state, ForceField(LennardJones(EPS, SIGMA, RC)), make_integrator("nve", 2.0))
    sim.check_every = 3
    assert list(sim.run(20, every=5)) == [3, 5, 8, 10, 13, 15, 18, 20]
    sim.check_every = 8
    assert list(sim.run(12)) == [8, 12] and sim.state.step == 32


def test_select_keeps_every_field_and_the_chains_continue():
    """Dropping a system between chunks: the others go on as if it had never been there."""
    systems = [bulk("Ar", "fcc", a=a, cubic=True) * (2, 2, 1) for a in (5.2, 5.3, 5.4)]

    def simulation(atoms_list, temperatures):
        state = from_atoms(atoms_list, temperature=temperatures)
        generator = torch.Generator().manual_seed(1)
        state = maxwell_boltzmann(state, temperature=60.0, generator=generator)
        integrator = make_integrator("nvt-nhc", 4.0, tau=30.0)
        return Simulation(state, ForceField(LennardJones(EPS, SIGMA, RC), skin=0.5), integrator)

    sim = simulation(systems, [20.0, 50.0, 80.0])
    for _ in range(10):
        sim.advance(1)
    before = sim.state
    keep = torch.tensor([True, False, True])
    part = select_systems(before, keep)
    rows = keep[before.system_idx]
    assert part.n_systems == 2 and part.names == [before.names[0], before.names[2]]
    torch.testing.assert_close(part.positions, before.positions[rows], rtol=0, atol=0)
    torch.testing.assert_close(part.thermostat, before.thermostat[keep], rtol=0, atol=0)
    torch.testing.assert_close(part.heat, before.heat[keep], rtol=0, atol=0)
    assert part.system_idx.tolist() == sorted(part.system_idx.tolist())
    force_field, integrator = ForceField(LennardJones(EPS, SIGMA, RC)), make_integrator("npt-bussi")
    npt = Simulation(from_atoms(crystal(2), temperature=30.0), force_field, integrator)
    torch.testing.assert_close(
        select_systems(npt.state, [False, True]).stress, npt.state.stress[1:]
    )
    with pytest.raises(ValueError, match="one bool per system"):
        select_systems(before, [True])
    # Simulation.select: the chains (thermostat variables) carry on
    sim.select(keep)
    for _ in range(10):
        sim.advance(1)
    alone = simulation(systems, [20.0, 50.0, 80.0])
    for _ in range(20):
        alone.advance(1)
    want = alone.state.positions[keep[alone.state.system_idx]]
    np.testing.assert_allclose(sim.state.positions.numpy(), want.numpy(), rtol=0, atol=1e-10)
