"""Choosing frames to label: most uncertain first, no two near-duplicates.

A frame's descriptor is the vector of its interatomic distances d_ij (i < j; the
minimum image for periodic cells), invariant under rotations and translations. Two
frames of the same system (same group, same atom order) are near-duplicates when

    D(a, b) = sqrt( mean_{i<j} (d_ij(a) - d_ij(b))^2 ) < diversity     (Angstrom)

:func:`select_frames` goes through the candidates in the order of its ``rule`` and keeps
a frame unless it is a near-duplicate of a frame kept before or of a frame already
labelled; it stops at ``limit`` frames. Both rules (:data:`RULES`) take the frames
whose force std lies in the trust window [min_force_std, max_force_std] (DP-GEN's trust
levels: below it the model is trusted, above it the trajectory has left physical space,
and a label there teaches the model a region MD at that temperature does not visit):

* ``uncertain``: by decreasing force std (eV/A), the frames where the committee is most
  unsure first;
* ``window``: in a random order (``seed``), so that the labels follow the distribution MD
  visits where the model is unsure rather than its tail.

When the window holds fewer than ``limit`` frames that pass the diversity rule (a
committee unsure everywhere it went, as a first one trained on a few rattles can be,
finds few frames in the window, all near its labels), both go on to the frames above
it, least uncertain first (the nearest to the window, where MD went next), so that a
round still learns where its MD went instead of labelling nothing.

The distance between neighbouring frames of a molecule's MD depends on the molecule: a
rigid ring moves less than a flexible chain at the same temperature, so a threshold
that just binds on one molecule rejects nearly every frame of another. When the rule
leaves a round short of ``limit`` frames, ``relax_to`` < 1 lets it go through the
candidates again with the threshold lowered step by step (by 3/4 each pass) down to
``relax_to`` times ``diversity``; frames kept at the full threshold come first, and
each frame records the threshold it passed in ``atoms.info[DIVERSITY_KEY]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from ase import Atoms

GROUP_KEY = "group"  # atoms.info key: the data group (one per seed)
STD_KEY = "force_std_eVA"  # atoms.info key: the frame's largest per-atom force std
DIVERSITY_KEY = "diversity_A"  # atoms.info key: the threshold a selected frame passed


def descriptor(atoms: Atoms) -> np.ndarray:
    """The interatomic distances d_ij, i < j (A; minimum image when periodic)."""
    distances = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    return distances[np.triu_indices(len(atoms), k=1)]


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """D(a, b) of the module docstring (A)."""
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else 0.0


RULES = ("uncertain", "window")


def check_rule(rule: str) -> None:
    """ValueError unless ``rule`` is one of :data:`RULES`."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; known: {', '.join(RULES)}")


def select_frames(
    candidates: Sequence[Atoms],
    limit: int,
    diversity: float,
    labelled: dict[str, list[np.ndarray]] | None = None,
    rule: str = "uncertain",
    window: tuple[float, float] = (0.0, float("inf")),
    seed: int = 0,
    relax_to: float = 1.0,
) -> list[Atoms]:
    """Up to ``limit`` frames of the trust ``window`` (eV/A) in the order of ``rule``
    (``seed``: of the random order), then frames above it, least uncertain first, no two
    within ``diversity`` (A) of each other or of a ``labelled`` descriptor of their
    group; should that leave fewer than ``limit``, further passes with the threshold
    lowered down to ``relax_to`` x ``diversity`` (module docstring)."""
    if not 0.0 < relax_to <= 1.0:
        raise ValueError(f"relax_to must be in (0, 1], got {relax_to}")
    check_rule(rule)
    known = {k: list(v) for k, v in (labelled or {}).items()}
    low, high = window

    def std(atoms: Atoms) -> float:
        return float(atoms.info.get(STD_KEY, 0.0))

    inside = [a for a in candidates if low <= std(a) <= high]
    if rule == "uncertain":
        ranked = sorted(inside, key=std, reverse=True)
    else:  # "window"
        ranked = [inside[i] for i in np.random.default_rng(seed).permutation(len(inside))]
    # then, should the window not fill the round: the nearest above it first
    ranked += sorted((a for a in candidates if std(a) > high), key=std)
    thresholds = [diversity]
    while thresholds[-1] * 0.75 > diversity * relax_to:
        thresholds.append(thresholds[-1] * 0.75)
    if relax_to < 1.0:
        thresholds.append(diversity * relax_to)
    chosen: list[Atoms] = []
    taken: set[int] = set()
    descriptors: dict[int, np.ndarray] = {}  # computed when a frame is first looked at
    for threshold in thresholds:
        for index, atoms in enumerate(ranked):
            if len(chosen) >= limit:
                return chosen
            if index in taken:
                continue
            group = str(atoms.info.get(GROUP_KEY))
            if index not in descriptors:
                descriptors[index] = descriptor(atoms)
            d = descriptors[index]
            if any(distance(d, other) < threshold for other in known.get(group, [])):
                continue
            atoms.info[DIVERSITY_KEY] = threshold
            chosen.append(atoms)
            taken.add(index)
            known.setdefault(group, []).append(d)
    return chosen


# The top of the MD labels' energy range is this quantile of them, not their maximum: one
# MD frame that went far up (a broken bond) would otherwise let every rattle below it back
# in (ethanol, seed 2: an MD label 4.1 eV up kept 32 of 40 rattles, up to 4.1 eV).
MD_ENERGY_QUANTILE = 0.95


def _below(groups: dict[str, list], ceilings: dict[str, float]) -> tuple[dict[str, list], int]:
    """The structures of each group (name -> structures) of energy (eV) at most the
    group's ceiling; a group without one keeps all. Returns (kept, how many left out)."""
    kept = {name: [s for s in structures if name not in ceilings or s.energy <= ceilings[name]]
            for name, structures in groups.items()}  # fmt: skip
    return kept, sum(len(groups[name]) - len(kept[name]) for name in groups)


def below_md_energies(first: dict[str, list], later: dict[str, list],
                      margin: float) -> tuple[dict[str, list], int]:  # fmt: skip
    """Round 0's labels (``first``: group -> structures) kept for the final training:
    those of energy (eV) at most ``margin`` above the top of the energies of the labels
    the MD rounds gave the same group (``later``; their :data:`MD_ENERGY_QUANTILE`
    quantile); a group without MD labels keeps all of them. Round 0's wide rattles let
    the first committees' MD run, but a rattle far above what MD at the temperature
    visits teaches the final model a region it will not meet (and costs it accuracy
    where it will). Returns (kept, how many left out)."""
    ceilings = {name: float(np.quantile([s.energy for s in later[name]], MD_ENERGY_QUANTILE))
                + margin for name in first if later.get(name)}  # fmt: skip
    return _below(first, ceilings)


# An MD label is an outlier when its energy lies more than this many times the spread of
# the MD labels' energies (their 95th percentile less their median) above that percentile:
# MD at one temperature spreads its potential energy like a Gamma distribution, whose
# values this far out do not occur, so such a frame is one where a committee's MD broke
# the molecule (ethanol, seed 2: three round-4 labels 3.0-3.5 eV above the median, the
# next 0.42 eV). Judged only in groups with at least MD_OUTLIER_MIN_LABELS MD labels.
MD_OUTLIER_SPREADS = 3.0
MD_OUTLIER_MIN_LABELS = 20


def without_md_outliers(later: dict[str, list]) -> tuple[dict[str, list], int]:
    """The MD rounds' labels (``later``: group -> structures) kept for a training: those
    of energy (eV) at most :data:`MD_OUTLIER_SPREADS` spreads above the group's
    :data:`MD_ENERGY_QUANTILE` quantile, the spread being that quantile less the median;
    a group with fewer than :data:`MD_OUTLIER_MIN_LABELS` labels keeps all of them.
    The labels left out are real, but of a region the molecule at the temperature does
    not visit; trained on, they cost the model its energies where it is used (the
    benchmark page of active learning has the run). Returns (kept, how many left out)."""
    ceilings = {}
    for name, structures in later.items():
        if len(structures) >= MD_OUTLIER_MIN_LABELS:
            median, top = np.quantile([s.energy for s in structures], [0.5, MD_ENERGY_QUANTILE])
            ceilings[name] = float(top + MD_OUTLIER_SPREADS * (top - median))
    return _below(later, ceilings)


def labels_digest(groups: dict[str, list]) -> str:
    """A fingerprint (SHA-256, hex) of a training's labels (group -> structures): group
    names, elements, positions and energies in order. Two trainings on the same labels
    have the same digest; a resumed run compares it to know whether the labels its final
    training would take are the ones it took."""
    h = hashlib.sha256()
    for name in sorted(groups):
        h.update(name.encode())
        for s in groups[name]:
            h.update(np.ascontiguousarray(s.atomic_numbers, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(s.positions, dtype=np.float64).tobytes())
            h.update(np.float64(np.nan if s.energy is None else s.energy).tobytes())
    return h.hexdigest()
