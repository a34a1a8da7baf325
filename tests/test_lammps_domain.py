"""The LAMMPS coupling's pieces without LAMMPS: domain graphs and the input rewrite.

A LAMMPS rank's view is emulated here: a periodic cell split into slabs (in fractional
coordinates, as LAMMPS's brick decomposition splits a triclinic box), each slab's
atoms owned, and every periodic image of every atom within the ghost cutoff of the slab
a ghost copy, with LAMMPS's atom ids. The energies, forces and virials of all the slabs'
graphs (:func:`build_domain_graph`, pruned by hops) summed by atom id must equal the
calculator's on the whole cell. No MPI here: mpiexec runs are in tests/test_lammps.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from support import close_pair, far_reaching_model

from mlip import keys
from mlip.calculator import MLIPCalculator
from mlip.derivatives import compute
from mlip.integrations.lammps_domain import build_domain_graph
from mlip.integrations.lammps_input import (
    InputError,
    logical_lines,
    parse_site,
    rank_device,
    strip_comment,
    translate_input,
)

R_MAX, LAYERS = 4.0, 3  # first and second neighbours of fcc (3.6 A)


def copies(atoms: Atoms, lo: np.ndarray, hi: np.ndarray, cutoff: float):  # noqa: ANN201
    """Positions and ids (1-based) of a slab's owned atoms, then its ghost copies."""
    cell = atoms.cell.array
    frac = atoms.get_scaled_positions(wrap=True)
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)  # between lattice planes
    margin = cutoff / spacing
    owned = np.flatnonzero(np.all((frac >= lo) & (frac < hi), axis=1))
    positions, tags = [frac[owned] @ cell], [owned + 1]
    reach = np.ceil(margin).astype(int) + 1
    for shift in itertools.product(*[range(-k, k + 1) for k in reach]):
        f = frac + np.array(shift)
        inside = np.all((f >= lo - margin) & (f < hi + margin), axis=1)
        if shift == (0, 0, 0):
            inside[owned] = False
        positions.append(f[inside] @ cell)
        tags.append(np.flatnonzero(inside) + 1)
    return np.concatenate(positions), np.concatenate(tags), len(owned)


def domain_batch(atoms: Atoms, graph, positions, tags):  # noqa: ANN001, ANN201
    """The batch of a domain graph's current step, and the atom index of each node."""
    step = graph.current(positions[graph.node_copy], atoms.cell.array, R_MAX, LAYERS)
    copy = graph.node_copy[step.nodes]
    batch = step.batch(positions[copy], atoms.numbers[tags[copy] - 1], atoms.cell.array,
                       np.ones(3, dtype=bool))  # fmt: skip
    return batch, tags[copy] - 1


def decomposed(atoms: Atoms, model, slabs: int, cutoff: float) -> dict:  # noqa: ANN001
    """Energy, forces, per-atom energies and virial summed over the slabs' graphs."""
    forces, energies = np.zeros((len(atoms), 3)), np.full(len(atoms), np.nan)
    energy, virial, nodes = 0.0, np.zeros((3, 3)), []
    for k in range(slabs):
        lo, hi = np.array([0, 0, k / slabs]), np.array([1, 1, (k + 1) / slabs])
        positions, tags, nlocal = copies(atoms, lo, hi, cutoff)
        graph = build_domain_graph(positions, tags, nlocal, atoms.cell.array, R_MAX, 0.5, LAYERS)
        batch, ids = domain_batch(atoms, graph, positions, tags)
        out = compute(model, batch, stress=True)
        np.add.at(forces, ids, out[keys.FORCES].numpy())
        energies[ids[:nlocal]] = out[keys.NODE_ENERGY].numpy()[:nlocal]
        energy += float(out[keys.ENERGY][0])
        virial += out[keys.VIRIAL][0].numpy()
        nodes.append((nlocal, len(ids), batch[keys.HOP_COUNTS].tolist()))
    return {"energy": energy, "forces": forces, "energies": energies, "virial": virial,
            "nodes": nodes}  # fmt: skip


@pytest.fixture(scope="module")
def model():
    return far_reaching_model((29, 79), LAYERS, R_MAX)


def copper_gold(repeat: tuple[int, int, int], tilt: bool) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    atoms.numbers[::3] = 79
    if tilt:  # a triclinic cell (LAMMPS's lower-triangular form)
        atoms.set_cell(atoms.cell.array + [[0, 0, 0], [0.4, 0, 0], [1.1, -0.3, 0]])
    atoms.rattle(0.1, seed=1)
    return close_pair(atoms)


@pytest.mark.parametrize("slabs", [1, 2, 3])
@pytest.mark.parametrize("tilt", [False, True])
def test_domains_sum_to_the_calculator(model, one_thread, slabs, tilt):
    """Three layers, two elements, a cell smaller than the interaction range (12 A):
    the slabs' owned energies, all forces by id and the virial equal the calculator's."""
    atoms = copper_gold((2, 2, 3), tilt)
    assert model.repulsion is not None  # the pair term is in what the domains must sum
    atoms.calc = MLIPCalculator(model)
    got = decomposed(atoms, model, slabs, LAYERS * R_MAX + 0.5)
    assert abs(got["energy"] - atoms.get_potential_energy()) < 1e-9
    assert np.abs(got["energies"] - atoms.get_potential_energies()).max() < 1e-10
    assert np.abs(got["forces"] - atoms.get_forces()).max() < 1e-10
    stress = -got["virial"] / atoms.get_volume()
    assert np.abs(stress - atoms.get_stress(voigt=False)).max() < 1e-10


def test_layers_are_pruned_and_images_mapped(model, one_thread):
    """A slab of a larger cell: remote atoms beyond L hops are not nodes, layer t runs on
    fewer atoms than layer t - 1, and periodic images of owned atoms are no nodes."""
    atoms = copper_gold((3, 3, 12), False)
    positions, tags, nlocal = copies(atoms, np.array([0, 0, 0]), np.array([1, 1, 0.25]), 10.0)
    graph = build_domain_graph(positions, tags, nlocal, atoms.cell.array, R_MAX, 0.5, LAYERS)
    assert abs(nlocal - len(atoms) // 4) < 10 and len(positions) > len(atoms)
    assert graph.num_nodes < len(atoms)  # each atom once, far ones left out
    hops = graph.hop_counts
    assert hops[0] == nlocal and (np.diff(hops) > 0).all() and hops[-1] == graph.num_nodes
    assert len(set(tags[graph.node_copy])) == graph.num_nodes
    step = graph.current(positions[graph.node_copy], atoms.cell.array, R_MAX, LAYERS)
    assert (step.hop_counts <= hops).all()  # exact hops: no more atoms than the build's
    assert step.hop_counts[0] == nlocal and len(step.nodes) == step.hop_counts[-1]


def test_a_ghost_shell_one_cutoff_short_is_wrong(model, one_thread):
    """The sum over slabs is exact only with ghosts out to L x r_max: one r_max short,
    the last layer's far neighbours are missing and the forces differ (the model's last
    layer matters), so the equality test above can fail."""
    atoms = copper_gold((2, 2, 8), False)  # slabs 14.4 A thick: L x r_max = 12 A matters
    atoms.calc = MLIPCalculator(model)
    short = decomposed(atoms, model, 2, (LAYERS - 1) * R_MAX)
    assert np.abs(short["forces"] - atoms.get_forces()).max() > 1e-6


def test_logical_lines_and_comments():
    text = 'variable a index 1 &\n   2 3\nprint """x\n# not a comment\n"""\nrun 10 # steps\n'
    lines = logical_lines(text)
    assert [n for n, _ in lines] == [1, 3, 6]
    assert lines[0][1].split() == ["variable", "a", "index", "1", "2", "3"]
    assert strip_comment(lines[2][1]) == "run 10"
    assert strip_comment('print "a # b" # c') == 'print "a # b"'
    assert "# not a comment" in strip_comment(lines[1][1])


def test_translation_of_pair_style_mlip_through_includes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pot.mod").write_text("pair_style mlip ${model} # file\npair_coeff * * Cu Au\n")
    (tmp_path / "in.lmp").write_text(
        "variable model index m.pt\nunits metal\ninclude pot.mod\nrun 0\n"
        "pair_style lj/cut 3.0\npair_coeff * * 0.1 2.0\njump in.lmp end\nlabel end\n"
    )
    translated = translate_input(tmp_path / "in.lmp")
    (site,) = translated.sites.values()
    assert site.style == "pair_style mlip ${model}" and site.where.endswith("pot.mod:2")
    assert parse_site("pair_style mlip m.pt", site.coeff) == ("m.pt", ["Cu", "Au"])
    top = open(translated.top).read().splitlines()
    assert top[0] == 'if "${_mlip_resume} == 1" then "jump SELF _mlip_resume_1"'
    include = next(i for i, line in enumerate(top) if line.startswith("include"))
    assert top[include - 1] == "label _mlip_resume_1"
    assert top[include + 1] == 'if "${_mlip_split} > 0" then "jump SELF _mlip_end"'
    assert 'if "$(is_defined(fix,mlip))" then "unfix mlip"' in top  # before lj/cut
    assert f"jump {translated.top} end" in top  # a jump to the input goes to its copy
    assert top[-1] == "label _mlip_end"
    inner = open(top[include].split()[1]).read()
    assert "pair_style zero ${_mlip_cutoff} nocoeff" in inner
    assert '"variable _mlip_split string 1" "jump SELF _mlip_end"' in inner
    translated.folder.cleanup()


@pytest.mark.parametrize(
    "text, message",
    [
        ("pair_style mlip m.pt\nrun 0\n", "needs a following 'pair_coeff * * ELEMENT"),
        ("pair_style mlip m.pt\npair_coeff 1 1 Cu\n", "takes 'pair_coeff * * ELEMENT ...'"),
        ("pair_style mlip\n", "expected 'pair_style mlip MODEL'"),
        ("pair_style hybrid mlip m.pt lj/cut 3\n", "cannot be part of a hybrid"),
    ],
)
def test_translation_errors_name_the_line(tmp_path, text, message):
    (tmp_path / "in.lmp").write_text("units metal\n" + text)
    with pytest.raises(InputError, match=r"in\.lmp:[23]: .*" + message.replace("*", r"\*")):
        translate_input(tmp_path / "in.lmp", cwd=tmp_path)


def test_rank_device():
    assert rank_device("cuda", 3, 2) == torch.device("cuda", 1)
    assert rank_device("cuda:0", 3, 2) == torch.device("cuda", 0)
    assert rank_device("cpu", 3, 2) == torch.device("cpu")
