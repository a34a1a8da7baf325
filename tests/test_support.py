"""The test support package itself: its fixture data are self-consistent."""

from __future__ import annotations

import h5py
import numpy as np
from support import ELEMENTS, label, make_h5, molecules, teacher

from mlip.data.graph import Structure
from mlip.data.hdf5 import H5Dataset


def test_teacher_labels_are_consistent() -> None:
    """The fixture data is self-consistent: forces are -dE/dR by finite differences."""
    mols = molecules(1)
    label(teacher(), mols, np.array([True]))
    s = mols[0]
    h = 1e-5
    for a, x in ((0, 0), (3, 2)):
        plus, minus = (
            Structure(s.atomic_numbers, s.positions.copy()),
            Structure(s.atomic_numbers, s.positions.copy()),
        )
        plus.positions[a, x] += h
        minus.positions[a, x] -= h
        label(teacher(), [plus, minus], np.array([False, False]))
        assert abs(-(plus.energy - minus.energy) / (2 * h) - s.forces[a, x]) < 1e-6
    assert np.allclose(s.hessian, s.hessian.T, atol=1e-10)


def test_fixture_file_holds_the_teacher_labels(tmp_path) -> None:
    """make_h5 writes what label computes: groups, Hessian mask, stress, no forces."""
    path = make_h5(tmp_path / "d.h5", n_mol=7, n_cryst=4, hessian_every=3)
    mol, cryst = H5Dataset(path, ["mol"]), H5Dataset(path, ["cryst"])
    assert len(mol) == 7 and len(cryst) == 4 and mol.elements == cryst.elements == ELEMENTS
    assert list(mol.hessian_mask) == [k % 3 == 0 for k in range(7)]
    assert list(cryst.hessian_mask) == [True, False, False, True]
    expected = molecules(7)
    label(teacher(), expected, np.arange(7) % 3 == 0)
    for s, ref in zip(mol.get_many(range(7)), expected, strict=True):
        assert s.energy == ref.energy
        np.testing.assert_array_equal(s.positions, ref.positions)
        np.testing.assert_array_equal(s.forces, ref.forces)
        assert (s.hessian is None) == (ref.hessian is None)
        if ref.hessian is not None:
            np.testing.assert_array_equal(s.hessian, ref.hessian)
    assert cryst[0].stress.shape == (6,) and cryst[0].pbc.all() and mol[0].cell is None
    bare = make_h5(tmp_path / "bare.h5", n_mol=4, forces=False)
    with h5py.File(bare, "r") as f:
        assert "forces" not in f["mol"] and "hessian" in f["mol"]


def test_a_skip_fails_the_run_where_ci_says_so(tmp_path) -> None:
    """tests/conftest.py: with MLIP_FAIL_ON_SKIP=1 (set by .ci/run) a skipped test fails
    the session, naming it; without it, a skip is a skip."""
    import os
    import shutil

    from support.processes import run_python

    shutil.copy(os.path.join(os.path.dirname(__file__), "conftest.py"), tmp_path)
    (tmp_path / "test_one.py").write_text(
        "import pytest\n\n\ndef test_runs():\n    pass\n\n\n"
        "def test_skips():\n    pytest.skip('peer absent')\n"
    )
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "MLIP_FAIL_ON_SKIP"}
    assert run_python(args, tmp_path, env).returncode == 0
    failed = run_python(args, tmp_path, {**env, "MLIP_FAIL_ON_SKIP": "1"})
    assert failed.returncode == 1, failed.stdout
    assert "1 test(s) skipped" in failed.stdout and "test_skips: " in failed.stdout
    assert "peer absent" in failed.stdout
