"""Harmonic thermochemistry of a :class:`~mlip.vib.harmonic.HarmonicResult` via ASE.

Molecules use ``ase.thermochemistry.IdealGasThermo`` (ideal-gas translation, rigid
rotor, harmonic vibrations); periodic systems and partial analyses (some atoms fixed,
e.g. an adsorbate on a frozen slab) use ``HarmonicThermo`` (harmonic vibrations only).
Energies in eV, entropies in eV/K, temperature in K, pressure in Pa.
Imaginary modes are left out (``ignore_imag_modes``) and counted in ``n_imaginary``.
"""

from __future__ import annotations

import warnings

from ase import Atoms
from ase.thermochemistry import HarmonicThermo, IdealGasThermo

from mlip.vib.harmonic import HarmonicResult

GAS_GEOMETRIES = ("monatomic", "linear", "nonlinear")
HARMONIC_GEOMETRIES = ("periodic", "partial")


def thermochemistry(
    result: HarmonicResult,
    atoms: Atoms,
    temperature: float = 298.15,
    pressure: float = 101325.0,
    geometry: str | None = None,
    symmetrynumber: int = 1,
    spin: float = 0,
    potentialenergy: float = 0.0,
) -> dict[str, float]:
    """Thermochemical functions at ``temperature`` K (and ``pressure`` Pa for a gas).

    ``geometry`` (monatomic/linear/nonlinear) defaults to the one of the analysis; a
    periodic or partial result uses the harmonic model. Returns, in eV and eV/K:
    gas: zero_point_energy, enthalpy, entropy, gibbs_energy; solid: zero_point_energy,
    internal_energy, entropy, helmholtz_energy; both: temperature, n_imaginary.
    ``potentialenergy`` (eV) is added to the energies. ``atoms`` (the analysed system:
    same number of atoms, ValueError otherwise) gives the masses and moments of inertia.
    """
    result.check_atoms(atoms)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature}")
    geometry = geometry or result.geometry
    # complex energies (imaginary ones as i|E|), sorted by E^2 as IdealGasThermo expects
    energies = sorted(result.energies.tolist(), key=lambda e: (e * e).real)
    out: dict[str, float] = {"temperature": float(temperature)}
    if geometry in HARMONIC_GEOMETRIES:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*imag modes removed")
            thermo = HarmonicThermo(
                energies, potentialenergy=potentialenergy, ignore_imag_modes=True
            )
        out["zero_point_energy"] = float(thermo.get_ZPE_correction())
        out["internal_energy"] = float(thermo.get_internal_energy(temperature, verbose=False))
        out["entropy"] = float(thermo.get_entropy(temperature, verbose=False))
        out["helmholtz_energy"] = float(thermo.get_helmholtz_energy(temperature, verbose=False))
    elif geometry in GAS_GEOMETRIES:
        if pressure <= 0:
            raise ValueError(f"pressure must be > 0 Pa, got {pressure}")
        with warnings.catch_warnings():  # imaginary modes are reported in n_imaginary
            warnings.filterwarnings("ignore", message=".*imag modes removed")
            thermo = IdealGasThermo(
                energies,
                geometry=geometry,
                potentialenergy=potentialenergy,
                atoms=atoms,
                symmetrynumber=symmetrynumber,
                spin=spin,
                ignore_imag_modes=True,
            )
        out["pressure"] = float(pressure)
        out["zero_point_energy"] = float(thermo.get_ZPE_correction())
        out["enthalpy"] = float(thermo.get_enthalpy(temperature, verbose=False))
        out["entropy"] = float(thermo.get_entropy(temperature, pressure, verbose=False))
        out["gibbs_energy"] = float(thermo.get_gibbs_energy(temperature, pressure, verbose=False))
    else:
        allowed = (*GAS_GEOMETRIES, *HARMONIC_GEOMETRIES)
        raise ValueError(f"geometry must be one of {allowed}, got {geometry!r}")
    out["n_imaginary"] = int(thermo.n_imag)
    return out
