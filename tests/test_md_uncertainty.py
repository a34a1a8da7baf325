"""MD with a committee: the force std per system, stopping and collecting above a
threshold (mlip.md.uncertainty), the trajectory and log columns, and ``mlip md``."""

from __future__ import annotations

import csv

import ase.io
import h5py
import numpy as np
import pytest
from ase.build import bulk, molecule
from support import small_model

from mlip import keys
from mlip.cli import main
from mlip.committee import Committee, committee_spread
from mlip.derivatives import compute
from mlip.md import ForceField, run_md

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def committee() -> Committee:
    return Committee([small_model(seed=s) for s in range(3)])


def systems() -> list:
    return [molecule("CH3CH2OH"), bulk("Cu", "fcc", a=3.6, cubic=True)]


def spread_now(committee, state) -> np.ndarray:
    ff = ForceField(committee)
    ff.rebuild(state)
    batch = ff.batch(state)
    out = compute(committee, batch, members=True)
    return committee_spread(
        out[keys.MEMBER_ENERGY], out[keys.MEMBER_FORCES], state.system_idx, state.n_systems
    )["max_force_std"].numpy()


def test_force_std_is_logged_per_system(committee, tmp_path) -> None:
    traj, log = tmp_path / "md.h5", tmp_path / "md.csv"
    result = run_md(committee, systems(), ensemble="nvt-langevin", temperature=300, steps=10,
                    log_every=5, traj=traj, log=log, progress=False)  # fmt: skip
    assert result.force_std.shape == (3, 2) and np.isfinite(result.force_std).all()
    np.testing.assert_allclose(result.force_std[-1], spread_now(committee, result.state),
                               rtol=1e-10)  # fmt: skip
    with h5py.File(traj) as f:
        for s, name in enumerate(result.state.names):
            np.testing.assert_allclose(f[name]["force_std"][()], result.force_std[:, s])
    rows = list(csv.DictReader(open(log)))
    assert len(rows) == 6 and all(float(r["force_std_eVA"]) > 0 for r in rows)


def test_a_plain_model_has_no_force_std(tmp_path) -> None:
    result = run_md(small_model(), molecule("H2O"), steps=3, log_every=1, progress=False)
    assert np.isnan(result.force_std).all()
    with pytest.raises(ValueError, match="committee"):
        run_md(small_model(), molecule("H2O"), steps=3, max_force_std=0.1, progress=False)


def test_systems_above_max_force_std_stop_and_the_others_go_on(committee, tmp_path) -> None:
    first = run_md(committee, systems(), steps=0, progress=False).force_std[0]
    threshold = float(np.mean(first))  # between the two systems' spreads
    assert first.min() < threshold < first.max()
    traj = tmp_path / "md.h5"
    result = run_md(committee, systems(), steps=12, log_every=4, max_force_std=threshold,
                    traj=traj, progress=False, init_velocities=False)  # fmt: skip
    names = ["0000_C2H6O_r0", "0001_Cu4_r0"]
    high = names[int(np.argmax(first))]
    low = names[int(np.argmin(first))]
    watch = result.uncertainty
    assert set(watch.stopped) == {high} and watch.stopped[high].step == 1
    assert watch.stopped[high].force_std > threshold
    assert result.state.names == [low] and result.state.step == 12
    column = names.index(high)
    assert np.isnan(result.force_std[1:, column]).all()  # no values once stopped
    with h5py.File(traj) as f:
        assert f[high]["positions"].shape[0] == 1 and f[low]["positions"].shape[0] == 4
    assert watch.peak[high] >= watch.stopped[high].force_std


def test_all_systems_stopped_ends_the_run(committee) -> None:
    result = run_md(committee, systems(), steps=50, max_force_std=1e-9, progress=False)
    assert result.state.step == 1 and len(result.uncertainty.stopped) == 2


def test_frames_above_collect_force_std_are_written(committee, tmp_path) -> None:
    out = tmp_path / "uncertain.extxyz"
    result = run_md(committee, systems(), steps=6, log_every=3, collect_force_std=1e-9,
                    collect=out, progress=False)  # fmt: skip
    frames = ase.io.read(out, index=":")
    assert len(frames) == 4 == len(result.uncertainty.frames)  # 2 systems x steps 3, 6
    assert {f.info["step"] for f in frames} == {3, 6}
    assert all(f.info["force_std_eVA"] > 1e-9 for f in frames)
    cu = [f for f in frames if f.info["system"] == "0001_Cu4_r0"]
    assert cu[0].pbc.all() and len(cu[0]) == 4


def test_a_stopped_systems_last_frame_is_collected(committee) -> None:
    first = run_md(committee, systems(), steps=0, progress=False).force_std[0]
    threshold = float(np.mean(first))
    result = run_md(committee, systems(), steps=8, log_every=4, max_force_std=threshold,
                    collect_force_std=1e9, progress=False, init_velocities=False)  # fmt: skip
    (frame,) = result.uncertainty.frames  # none above 1e9 at the log steps; the stop only
    high = ["0000_C2H6O_r0", "0001_Cu4_r0"][int(np.argmax(first))]
    assert frame.info["system"] == high and frame.info["stopped"] is True
    assert frame.info["step"] == 1 == result.uncertainty.stopped[high].step


def test_mlip_md_cli_stops_and_reports(committee, tmp_path, capsys) -> None:
    path = tmp_path / "committee.pt"
    committee.save(path)
    ase.io.write(tmp_path / "start.xyz", molecule("CH3CH2OH"))
    code = main(["md", str(path), str(tmp_path / "start.xyz"), "--steps", "4", "--replicas",
                 "2", "--max-force-std", "1e-9", "--collect-force-std", "1e-9", "--collect",
                 str(tmp_path / "c.extxyz"), "--log-every", "2", "--no-progress"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "stopped at step 1" in printed and "largest force std" in printed
