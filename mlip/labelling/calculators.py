"""Reference calculators by name: one thin adapter per tool, all ASE calculators.

A calculator spec names the method that labels structures (``mlip label``, ``mlip
learn``). Built in:

    emt                  ASE's effective-medium theory (Al Cu Ag Au Ni Pd Pt H C N O)
    tblite:GFN2-xTB      tblite's GFN2-xTB (also GFN1-xTB, IPEA1-xTB); pip install tblite
    pyscf:METHOD/BASIS   PySCF molecules: METHOD HF or a DFT functional (e.g. pbe, b3lyp),
                         any basis PySCF knows (e.g. def2-svp); pip install pyscf
    sevenn:MODEL         a SevenNet universal potential (e.g. 7net-0, shipped in the
                         wheel) for distillation; pip install sevenn
    mlip:MODEL.pt        an mlip model (or committee) through MLIPCalculator, with its
                         exact Hessian
    MODULE:FACTORY       anything else: ``FACTORY()`` from the importable module MODULE
                         (or from a file ``path/to/file.py``) returning an ASE calculator,
                         e.g. a universal potential for distillation

Every adapter returns a :class:`Labeller`: the calculator and the elements it can
treat (None: unknown, not checked), so that structures with other elements are refused
before any work. Units: the calculators' own ASE units, eV and Angstrom.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers, chemical_symbols


@dataclass
class Labeller:
    """A calculator and what it can label. ``elements`` None: any (not checked)."""

    spec: str
    calculator: Calculator
    elements: frozenset[int] | None = None

    def check_elements(self, numbers: Iterable[int], where: str = "") -> None:
        """ValueError naming the elements the calculator cannot treat (and ``where``)."""
        if self.elements is None:
            return
        bad = sorted({int(z) for z in numbers} - self.elements)
        if bad:
            known = " ".join(chemical_symbols[z] for z in sorted(self.elements))
            place = f"{where}: " if where else ""
            raise ValueError(
                f"{place}element(s) {', '.join(chemical_symbols[z] for z in bad)} cannot be "
                f"labelled by '{self.spec}' (it treats {known})"
            )


def _emt(argument: str) -> Labeller:
    from ase.calculators.emt import EMT, parameters

    return Labeller("emt", EMT(), frozenset(atomic_numbers[s] for s in parameters))


TBLITE_METHODS = ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB")


def _tblite(argument: str) -> Labeller:
    method = argument or "GFN2-xTB"
    if method not in TBLITE_METHODS:
        raise ValueError(f"tblite method must be one of {TBLITE_METHODS}, got {method!r}")
    try:
        from tblite.ase import TBLite
    except ImportError as err:
        raise ValueError(
            "calculator 'tblite' needs the tblite package: pip install tblite "
            "(or pip install 'mlip[xtb]')"
        ) from err
    return Labeller(f"tblite:{method}", TBLite(method=method, verbosity=0), frozenset(range(1, 87)))


def _pyscf(argument: str) -> Labeller:
    if "/" not in argument:
        raise ValueError(
            f"pyscf spec is pyscf:METHOD/BASIS (e.g. pyscf:pbe/def2-svp), got {argument!r}"
        )
    method, basis = argument.split("/", 1)
    from mlip.labelling.pyscf_calculator import PySCFCalculator, basis_elements

    return Labeller(
        f"pyscf:{argument}", PySCFCalculator(method=method, basis=basis), basis_elements(basis)
    )


def _sevenn(argument: str) -> Labeller:
    try:
        from sevenn.calculator import SevenNetCalculator
    except ImportError as err:
        raise ValueError(
            "calculator 'sevenn' needs the sevenn package: pip install sevenn "
            "(or pip install 'mlip[sevenn]')"
        ) from err
    model = argument or "7net-0"
    try:  # device "auto": a GPU where torch sees one
        calculator = SevenNetCalculator(model=model)
    except Exception as err:  # noqa: BLE001 (sevenn raises several kinds for a bad model name)
        message = f"calculator spec 'sevenn:{model}': SevenNet cannot load it: {err}"
        raise ValueError(message) from err
    known = getattr(calculator, "type_map", None)
    return Labeller(f"sevenn:{model}", calculator, None if not known else frozenset(known))


def _mlip(argument: str) -> Labeller:
    from mlip.calculator import MLIPCalculator

    if not argument:
        raise ValueError("mlip spec is mlip:MODEL.pt")
    calculator = MLIPCalculator(argument)
    known = calculator.known_numbers
    return Labeller(f"mlip:{argument}", calculator, None if known is None else frozenset(known))


#: built-in calculator names -> adapter(argument after the colon)
BUILTIN: dict[str, Callable[[str], Labeller]] = {
    "emt": _emt,
    "tblite": _tblite,
    "pyscf": _pyscf,
    "sevenn": _sevenn,
    "mlip": _mlip,
}
KNOWN_SPECS = ("emt", "tblite:GFN2-xTB", "tblite:GFN1-xTB", "pyscf:METHOD/BASIS", "sevenn:MODEL",
               "mlip:MODEL.pt", "MODULE:FACTORY")  # fmt: skip


def _factory(spec: str) -> Labeller:
    module_name, _, name = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            if not os.path.exists(module_name):
                raise FileNotFoundError(f"calculator factory file not found: {module_name}")
            loader = importlib.util.spec_from_file_location("mlip_user_calculator", module_name)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"unknown calculator spec {spec!r}: not a built-in ({', '.join(KNOWN_SPECS)}) and "
            f"module {module_name!r} cannot be imported ({err})"
        ) from err
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"calculator spec {spec!r}: {module_name} has no callable {name!r}")
    calculator = factory()
    if isinstance(calculator, Labeller):
        return calculator
    if not hasattr(calculator, "get_potential_energy") and not hasattr(calculator, "calculate"):
        raise ValueError(f"calculator spec {spec!r}: {name}() did not return an ASE calculator")
    known = getattr(calculator, "known_numbers", None)
    return Labeller(spec, calculator, None if known is None else frozenset(known))


def make_labeller(spec: str) -> Labeller:
    """The :class:`Labeller` of a calculator spec (see the module docstring); ValueError
    listing the known specs for an unknown one."""
    spec = str(spec).strip()
    name, colon, argument = spec.partition(":")
    if name.lower() in BUILTIN:
        return BUILTIN[name.lower()](argument)
    if not colon:
        raise ValueError(f"unknown calculator spec {spec!r}; known: {', '.join(KNOWN_SPECS)}")
    return _factory(spec)
