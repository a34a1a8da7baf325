"""``mlip lammps IN.lmp`` (``mpiexec -n N python -m mlip.cli lammps ...``) end to end.

An ordinary LAMMPS input with ``pair_style mlip ${model}`` in an included file, command
line variables, a loop, a dump and a committee's force spread runs on two ranks and its
dumped forces, per-atom energies and spreads equal the calculator's; a missing element
mapping and an element the model does not know are one-line errors before any step, as
is an error in the input on two ranks (printed once); a model that returns NaN stops the
run (exit status 2); the example inputs of md/lammps run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from support import far_reaching_model, small_model
from support.lammps_jobs import environment, write_data
from support.processes import mpiexec

from mlip.calculator import MLIPCalculator
from mlip.committee import Committee

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "md" / "lammps"

INPUT = """# an ordinary LAMMPS input: variables, an include, a loop
variable steps index 3
units metal
atom_style atomic
atom_modify map array
read_data ${data}
include potential.mod
compute pe all pe/atom
thermo_style custom step pe f_mlip[1]
run 0
write_dump all custom state.dump id type x y z fx fy fz c_pe d_mlip_force_std &
    modify sort id format float %22.16g
print "MLIP pe $(pe:%.12f) largest std $(f_mlip[1]:%.12f)"
velocity all create 300 1 loop geom
fix integrate all nve
label loop
variable i loop 2
  run ${steps}
  print "MLIP iteration $i"
next i
jump SELF loop
"""

POTENTIAL = "pair_style mlip ${model}   # the model from a variable\npair_coeff * * ${elements}\n"


def mlip_lammps(ranks: int, args: list[str], folder: Path):  # noqa: ANN201
    return mpiexec(ranks, ["-m", "mlip.cli", "lammps", *args], folder, environment())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lammps_cli")
    Committee([small_model((29, 79), seed=k, r_max=4.0) for k in (0, 1)]).save(
        folder / "committee.pt"
    )
    far_reaching_model((29,), 2, 4.0).save(folder / "copper.pt")
    far_reaching_model((1, 6, 8), 2, 3.0).save(folder / "organic.pt")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 4))
    atoms.numbers[::4] = 79
    atoms.rattle(0.05, seed=0)
    write_data(atoms, folder / "cuau.data", ["Cu", "Au"])
    (folder / "in.lmp").write_text(INPUT)
    (folder / "potential.mod").write_text(POTENTIAL)
    return folder


def read_dump(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    lines = path.read_text().splitlines()
    box = np.array([lines[i].split()[:2] for i in range(5, 8)], dtype=float)
    columns = lines[8].split()[2:]
    table = np.array([line.split() for line in lines[9:]], dtype=float)
    return box, {name: table[:, k] for k, name in enumerate(columns)}


def test_an_input_with_include_variables_and_loop_runs_on_two_ranks(folder):
    variables = ["-var", "model", "committee.pt", "-var", "data", "cuau.data",
                 "-var", "elements", "Cu Au"]  # fmt: skip
    result = mlip_lammps(2, ["in.lmp", *variables, "--log", "run.log"], folder)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "MLIP iteration 1" in result.stdout and "MLIP iteration 2" in result.stdout
    assert "2 by 1 by 1 MPI processor grid" in (folder / "run.log").read_text() or (
        "1 by 1 by 2 MPI processor grid" in (folder / "run.log").read_text()
    )
    box, dump = read_dump(folder / "state.dump")
    atoms = Atoms(
        symbols=[["Cu", "Au"][int(t) - 1] for t in dump["type"]],
        positions=np.stack([dump["x"], dump["y"], dump["z"]], axis=1),
        cell=np.diag(box[:, 1] - box[:, 0]),
        pbc=True,
    )
    atoms.calc = MLIPCalculator(folder / "committee.pt")
    forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], axis=1)
    assert np.abs(forces - atoms.get_forces()).max() < 1e-9
    assert np.abs(dump["c_pe"] - atoms.get_potential_energies()).max() < 1e-9
    spread = atoms.calc.get_property("forces_std", atoms)
    assert np.abs(dump["d_mlip_force_std"] - spread).max() < 1e-9
    printed = next(line for line in result.stdout.splitlines() if line.startswith("MLIP pe"))
    assert abs(float(printed.split()[2]) - atoms.get_potential_energy()) < 1e-9
    assert abs(float(printed.split()[5]) - spread.max()) < 1e-9


@pytest.mark.parametrize(
    "elements, message",
    [
        (["Cu"], "gives 1 element(s) (Cu) for 2 atom type(s)"),
        (["Cu", "Ag"], "element(s) Ag not known to the model; it knows Cu, Au"),
    ],
)
def test_element_mapping_errors_are_one_line_before_any_step(folder, elements, message):
    variables = ["-var", "model", "committee.pt", "-var", "data", "cuau.data",
                 "-var", "elements", " ".join(elements)]  # fmt: skip
    result = mlip_lammps(1, ["in.lmp", *variables], folder)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()
    assert error[0].startswith("mlip lammps: error: ") and "potential.mod:2: " in error[0]
    assert message in error[0]
    assert "Step" not in result.stdout  # no run began


def test_an_input_error_on_two_ranks_is_one_line(folder):
    """Every rank meets it alike; only rank 0 prints it (the dispatcher), exit status 1."""
    (folder / "bad.lmp").write_text("units metal\nno_such_command 1\n")
    for args in (["missing.lmp"], ["bad.lmp", "--log", "none"]):
        result = mlip_lammps(2, args, folder)
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and errors[0].startswith("mlip lammps: error: "), errors
    assert "Unknown command: no_such_command" in errors[0]


def test_a_non_finite_model_stops_the_run(folder):
    model = far_reaching_model((29, 79), 2, 4.0)
    model.atomic_energies[1] = float("nan")
    model.save(folder / "nan.pt")
    variables = ["-var", "model", "nan.pt", "-var", "data", "cuau.data",
                 "-var", "elements", "Cu Au"]  # fmt: skip
    result = mlip_lammps(2, ["in.lmp", *variables], folder)
    assert result.returncode == 2  # as mlip md's explosions
    assert "mlip lammps: error: step 0, rank" in result.stderr
    assert "non-finite energy" in result.stderr
    assert "MLIP pe" not in result.stdout


@pytest.mark.parametrize(
    "example, variables, printed",
    [
        ("cu_relax.lmp", ["n", "2"], "lattice constant"),
        ("cu_nvt.lmp", ["n", "2", "steps", "20"], "Loop time"),
        ("cu_npt.lmp", ["n", "2", "steps", "40"], "mean lattice constant"),
        ("ethanol_box.lmp", ["molecules", "4", "steps", "10", "model", "organic.pt"], "Loop time"),
    ],
)
def test_example_inputs_run(folder, example, variables, printed):
    defaults = ["model", str(ROOT / "datasets" / "cu_tiny.pt"), "here", str(EXAMPLES)]
    pairs = dict(zip(defaults[::2], defaults[1::2], strict=True))
    pairs.update(dict(zip(variables[::2], variables[1::2], strict=True)))
    args = [str(EXAMPLES / example)]
    for name, value in pairs.items():
        args += ["-var", name, value]
    result = mlip_lammps(1, args, folder)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert printed in result.stdout
