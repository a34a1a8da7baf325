"""The ensembles of the MD engine by name: what each needs and how it is built.

:data:`INTEGRATOR_REGISTRY` maps an ensemble name to its :class:`EnsembleSpec`: the
integrator class, the :class:`~mlip.md.config.MDConfig` fields it takes (its
parameters: only these are recorded in a trajectory) and its :class:`Needs` (stress
from the force field, periodic cells, thermostat variables in the state, a random
stream). The runner (:class:`mlip.md.runner.Simulation`) reads the needs to configure
the force field; integrators never change it.

    ensemble       integrator                                  parameters
    nve            velocity Verlet                             -
    nvt-langevin   Langevin BAOAB                              friction (1/fs)
    nvt-bussi      Bussi stochastic velocity rescaling         tau (fs)
    nvt-nhc        Nose-Hoover chains (MTK)                    tau (fs), chain_length, ...
    npt-langevin   Langevin + stochastic cell rescaling        friction, pressure (GPa), ...
    npt-bussi      Bussi + stochastic cell rescaling           tau, pressure (GPa), ...

Time step dt in fs for all; ``seed`` for the stochastic ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlip.md.barostat import NPTBussi, NPTLangevin
from mlip.md.config import DEFAULTS, MDConfig
from mlip.md.integrators import BussiCSVR, LangevinBAOAB, VelocityVerlet
from mlip.md.nose_hoover import NoseHooverChain
from mlip.md.steps import Integrator


@dataclass(frozen=True)
class Needs:
    """What an ensemble needs from the force field and the systems it integrates."""

    stress: bool = False  # state.stress every step: ForceField(stress=True, variable_cell=True)
    periodic: bool = False  # every system periodic in 3D with a cell of volume > 0
    thermostat_state: bool = False  # dynamical thermostat variables in state.thermostat
    stochastic: bool = False  # a random stream (seed), snapshot with the state on rollback


@dataclass(frozen=True)
class EnsembleSpec:
    """One ensemble: ``integrator(timestep, **parameters[, seed])`` builds it."""

    name: str
    summary: str
    integrator: type[Integrator]
    parameters: tuple[str, ...]  # MDConfig fields passed to the integrator
    needs: Needs
    aliases: tuple[str, ...] = ()

    def parameter_values(self, config: MDConfig) -> dict[str, Any]:
        """The ensemble's parameters in ``config`` (e.g. {'friction': 0.01})."""
        return {name: getattr(config, name) for name in self.parameters}

    def build(self, config: MDConfig) -> Integrator:
        """The integrator with the timestep, parameters (and seed) of ``config``."""
        seed = {"seed": config.seed} if self.needs.stochastic else {}
        return self.integrator(config.timestep, **self.parameter_values(config), **seed)


_BAROSTAT = ("pressure", "compressibility", "tau_p")
_NPT = Needs(stress=True, periodic=True, stochastic=True)

INTEGRATOR_REGISTRY: dict[str, EnsembleSpec] = {
    spec.name: spec
    for spec in (
        EnsembleSpec("nve", "velocity Verlet", VelocityVerlet, (), Needs()),
        EnsembleSpec(
            "nvt-langevin",
            "Langevin dynamics, BAOAB splitting",
            LangevinBAOAB,
            ("friction",),
            Needs(stochastic=True),
            aliases=("langevin",),
        ),
        EnsembleSpec(
            "nvt-bussi",
            "Bussi stochastic velocity rescaling (CSVR)",
            BussiCSVR,
            ("tau",),
            Needs(stochastic=True),
            aliases=("bussi", "csvr"),
        ),
        EnsembleSpec(
            "nvt-nhc",
            "Nose-Hoover chains, MTK integrator",
            NoseHooverChain,
            ("tau", "chain_length", "yoshida", "substeps"),
            Needs(thermostat_state=True),
            aliases=("nhc", "nose-hoover"),
        ),
        EnsembleSpec(
            "npt-langevin",
            "Langevin thermostat + stochastic cell rescaling",
            NPTLangevin,
            ("friction", *_BAROSTAT),
            _NPT,
        ),
        EnsembleSpec(
            "npt-bussi",
            "Bussi thermostat + stochastic cell rescaling",
            NPTBussi,
            ("tau", *_BAROSTAT),
            _NPT,
        ),
    )
}

ENSEMBLES: tuple[str, ...] = tuple(INTEGRATOR_REGISTRY)
_ALIASES = {alias: spec.name for spec in INTEGRATOR_REGISTRY.values() for alias in spec.aliases}
#: every MDConfig field some ensemble takes (what make_integrator accepts)
ENSEMBLE_PARAMETERS: tuple[str, ...] = tuple(
    dict.fromkeys(p for spec in INTEGRATOR_REGISTRY.values() for p in spec.parameters)
)


def ensemble_spec(name: str) -> EnsembleSpec:
    """The spec of an ensemble name or alias (case-insensitive); ValueError if unknown."""
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in INTEGRATOR_REGISTRY:
        aliases = ", ".join(f"{a} = {n}" for a, n in _ALIASES.items())
        raise ValueError(
            f"unknown ensemble '{name}'; known ensembles: {', '.join(ENSEMBLES)} "
            f"(aliases: {aliases})"
        )
    return INTEGRATOR_REGISTRY[key]


def build_integrator(config: MDConfig) -> Integrator:
    """The integrator of ``config.ensemble`` with the config's parameters."""
    return ensemble_spec(config.ensemble).build(config)


def make_integrator(
    ensemble: str, timestep: float = DEFAULTS.timestep, seed: int = DEFAULTS.seed, **parameters: Any
) -> Integrator:
    """The integrator of an ensemble name (:data:`ENSEMBLES`); dt in fs.

    ``parameters`` are ensemble parameters of :class:`~mlip.md.config.MDConfig`
    (:data:`ENSEMBLE_PARAMETERS`: ``friction`` 1/fs, ``tau`` fs, ``chain_length``,
    ``yoshida``, ``substeps``, ``pressure`` GPa, ``compressibility`` 1/GPa, ``tau_p``
    fs; one value or one per system); those the ensemble does not take are ignored,
    unknown names are a TypeError.
    """
    unknown = sorted(set(parameters) - set(ENSEMBLE_PARAMETERS))
    if unknown:
        raise TypeError(
            f"unknown integrator parameter(s) {', '.join(unknown)}; the parameters are "
            f"{', '.join(ENSEMBLE_PARAMETERS)}"
        )
    config = DEFAULTS.replace(ensemble=ensemble, timestep=timestep, seed=seed, **parameters)
    return build_integrator(config)


def needs_of(integrator: Integrator) -> Needs:
    """The needs of an integrator's ensemble (``integrator.ensemble``; none if unregistered)."""
    spec = INTEGRATOR_REGISTRY.get(getattr(integrator, "ensemble", ""))
    return Needs() if spec is None else spec.needs
