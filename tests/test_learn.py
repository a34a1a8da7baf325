"""``mlip learn`` end to end with EMT on a 4-atom Cu cell (tiny committee, few epochs),
resume, selection with the diversity rule, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from support.learn import learn_args, rows

from mlip.cli import main
from mlip.committee import is_committee
from mlip.data.formats import read_mlip
from mlip.errors import CheckpointError
from mlip.learn import LearnConfig, Learner, descriptor, select_frames
from mlip.model import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learn")
    out = tmp / "run"
    assert main(learn_args(tmp, out, "--budget", "11")) == 0
    return tmp, out


def test_end_to_end_outputs(run) -> None:
    _, out = run
    committee = load_model(out / "model.pt")
    assert is_committee(committee) and committee.num_members == 2
    table = rows(out)
    assert [int(r["round"]) for r in table] == [0, 1, 2]
    labels = [int(r["labels"]) for r in table]
    assert labels == [5, 8, 11]  # 5 rattles, then 3 per round up to the budget
    assert all(float(r["valid_forces_mae"]) > 0 for r in table)
    assert all(float(r["md_largest_std"]) >= float(r["md_mean_std"]) > 0 for r in table[1:])
    assert all(float(r["md_time_ps"]) == pytest.approx(0.02) for r in table[1:])  # 40 x 0.5 fs
    assert (out / "rounds.png").stat().st_size > 0
    state = json.loads((out / "state.json").read_text())
    assert state["finished"] == "budget spent"
    # --explore-from last: round 2's MD went on from round 1's last frames (4 systems)
    ends = ase.io.read(out / "round_1" / "md_last.extxyz", index=":")
    assert len(ends) == 4 and all(np.abs(a.get_momenta()).max() > 0 for a in ends)


def test_data_holds_every_label_as_the_calculator_gives_it(run) -> None:
    _, out = run
    (group,) = read_mlip(out / "data.h5")
    assert group.name == "seed0_Cu4" and len(group.structures) == 11
    hessians = sum(s.hessian is not None for s in group.structures)
    assert hessians == 2 + 1 + 1  # ceil(0.25 n) of each round's labels
    for s in group.structures[::4]:
        atoms = s.to_atoms()
        atoms.calc = EMT()
        assert s.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(s.forces, atoms.get_forces(), atol=1e-10)
        np.testing.assert_allclose(s.stress, atoms.get_stress(), atol=1e-10)


def test_selected_frames_are_uncertain_and_diverse(run) -> None:
    _, out = run
    for r in (1, 2):
        chosen = ase.io.read(out / f"round_{r}" / "selected.extxyz", index=":")
        candidates = ase.io.read(out / f"round_{r}" / "candidates.extxyz", index=":")
        assert len(chosen) == 3 and len(candidates) >= 3
        stds = [c.info["force_std_eVA"] for c in candidates]
        inside = [x for x in stds if x <= LearnConfig.max_force_std]  # the trust window
        first = max(inside) if inside else min(stds)  # most uncertain inside, else nearest
        assert chosen[0].info["force_std_eVA"] == pytest.approx(first)
        d = [descriptor(a) for a in chosen]
        assert all(np.sqrt(np.mean((d[i] - d[j]) ** 2)) >= 0.01
                   for i in range(3) for j in range(i))  # fmt: skip


def test_resume_continues_with_a_larger_budget(run, capsys) -> None:
    tmp, out = run
    assert main(learn_args(tmp, out, "--budget", "13")) == 1  # without --resume
    assert "already holds an mlip learn run" in capsys.readouterr().err
    assert main(learn_args(tmp, out, "--budget", "11", "--per-round", "2", "--resume")) == 1
    assert "cannot resume with other settings: per_round" in capsys.readouterr().err
    assert main(learn_args(tmp, out, "--budget", "13", "--resume")) == 0
    assert [int(r["labels"]) for r in rows(out)] == [5, 8, 11, 13]


def test_an_interrupted_phase_is_resumed(tmp_path: Path) -> None:
    args = learn_args(tmp_path, tmp_path / "run", "--budget", "8")
    import argparse

    from mlip.cli.learn import add_parser, config_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    config = config_from_args(parser.parse_args(args))
    learner = Learner(config)
    learner._select(0)  # the run "stops" after round 0's selection
    learner._label(0)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["phase"] == "train"
    state = Learner(config.replace(resume=True)).run()
    assert state["finished"] == "budget spent"
    assert [int(r["labels"]) for r in rows(tmp_path / "run")] == [5, 8]


def test_labeller_failures_are_counted_and_the_loop_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = learn_args(tmp_path, out, "--budget", "5")
    args[args.index("emt")] = "support.labellers:failing_emt"  # fails when atom 0 has x > 0
    with pytest.warns(UserWarning, match="spent by round 0"):
        assert main(args) == 0
    (row,) = rows(out)
    assert int(row["failed"]) > 0 and int(row["labels"]) == 5 - int(row["failed"])


def test_a_committee_unsure_at_the_seed_still_finds_new_frames(tmp_path: Path) -> None:
    """Above the stop (stop_force_std None: max_force_std) from the start: each system
    stops at its first sample, not at the seed (already labelled), and that moved frame
    is a candidate."""
    from support import small_model

    from mlip.committee import Committee
    from mlip.learn.explore import explore

    seed = bulk("Cu", "fcc", a=3.61, cubic=True)
    config = LearnConfig(("unused",), "emt", str(tmp_path), temperature=(300.0,),
                         replicas=2, md_steps=20, sample_every=5, min_force_std=1e-7,
                         max_force_std=1e-6, stop_force_std=None)  # fmt: skip
    committee = Committee([small_model(seed=s) for s in range(2)])
    found = explore(committee, [("seed0_Cu4", seed)], config, 1)
    assert len(found.stopped) == 2 and len(found.candidates) == 2
    assert all(r == pytest.approx(2.5) for r in found.reached.values())  # 5 x 0.5 fs
    for frame in found.candidates:
        assert frame.info["stopped"] and frame.info["step"] == 5
        assert frame.info["group"] == "seed0_Cu4"
        assert np.abs(frame.positions - seed.positions).max() > 1e-4  # it moved
    # a higher stop_force_std: MD goes on past the frames above max_force_std
    going_on = explore(committee, [("seed0_Cu4", seed)], config.replace(stop_force_std=100.0), 1)
    assert going_on.stopped == [] and len(going_on.candidates) == 2 * 4  # every 5 steps
    assert all(r == pytest.approx(10.0) for r in going_on.reached.values())
    with pytest.raises(ValueError, match="stop_force_std .* must be at least max_force_std"):
        config.replace(stop_force_std=1e-7).check()


def test_exploration_continues_from_the_last_frames(tmp_path: Path) -> None:
    """explore_from "last": a round's systems start where the previous round's ended
    (positions and momenta), not at the seed."""
    from support import small_model

    from mlip.committee import Committee
    from mlip.learn.explore import explore

    seed = bulk("Cu", "fcc", a=3.61, cubic=True)
    config = LearnConfig(("unused",), "emt", str(tmp_path), temperature=(600.0,),
                         replicas=2, md_steps=40, sample_every=5, min_force_std=1e-7,
                         max_force_std=100.0, stop_force_std=None, timestep=2.0)  # fmt: skip
    committee = Committee([small_model(seed=s) for s in range(2)])
    first = explore(committee, [("seed0_Cu4", seed)], config, 1)
    assert len(first.last) == 2 and first.stopped == []
    ends = {a.info["system"]: a for a in first.last}
    moved = max(np.abs(a.positions - seed.positions).max() for a in first.last)
    assert moved > 0.02
    one_step = config.replace(md_steps=1, sample_every=1)
    fresh = explore(committee, [("seed0_Cu4", seed)], one_step, 2)
    continued = explore(committee, [("seed0_Cu4", seed)], one_step, 2, starts=ends)
    for a in continued.last:
        end = ends[a.info["system"]]
        assert np.abs(a.positions - end.positions).max() < moved / 4
        # one step on from the saved momenta: the momenta change by F dt only
        assert np.abs(a.get_momenta() - end.get_momenta()).max() < 0.5 * np.abs(
            end.get_momenta()).max()  # fmt: skip
    for a in fresh.last:
        assert np.abs(a.positions - seed.positions).max() < moved / 4
    with pytest.raises(ValueError, match="continuing .*: 1 atoms, the system has 4"):
        explore(committee, [("seed0_Cu4", seed)], one_step, 2,
                starts={first.last[0].info["system"]: bulk("Cu")})  # fmt: skip


def test_select_frames_keeps_one_of_near_duplicates() -> None:
    base = bulk("Cu", "fcc", a=3.61, cubic=True)
    frames = []
    for k, (shift, std) in enumerate([(0.0, 0.5), (0.001, 0.9), (0.2, 0.3), (0.0, 0.1)]):
        atoms = base.copy()
        atoms.positions[1] += shift
        atoms.info.update(group="g", force_std_eVA=std, k=k)
        frames.append(atoms)
    rotated = frames[2].copy()
    rotated.rotate(30, "z", rotate_cell=True)
    rotated.info.update(force_std_eVA=0.8, k=4)
    chosen = select_frames([*frames, rotated], limit=10, diversity=0.01)
    assert [a.info["k"] for a in chosen] == [1, 4]  # 0 and 3 near 1, 2 a rotation of 4
    assert [a.info["k"] for a in select_frames(frames, 1, 0.01)] == [1]
    known = {"g": [descriptor(frames[1])]}
    assert [a.info["k"] for a in select_frames(frames, 10, 0.01, known)] == [2]


def test_select_frames_relaxes_diversity_only_when_a_round_is_short() -> None:
    """Frames a step d0 apart in a row: at 1.5 d0 every other frame passes; with
    relax_to the rule takes the others at a lower threshold, after the strict ones."""
    from mlip.learn.select import DIVERSITY_KEY, distance

    base = bulk("Cu", "fcc", a=3.61, cubic=True)
    frames = []
    for k in range(5):
        atoms = base.copy()
        atoms.positions[1, 0] += 0.01 * k
        atoms.info.update(group="g", force_std_eVA=0.2 - 0.01 * k, k=k)  # in order 0..4
        frames.append(atoms)
    d0 = distance(descriptor(frames[0]), descriptor(frames[1]))
    assert (
        d0 > 0 and abs(distance(descriptor(frames[0]), descriptor(frames[2])) - 2 * d0) < 0.05 * d0
    )
    strict = select_frames(frames, limit=5, diversity=1.5 * d0)
    assert [a.info["k"] for a in strict] == [0, 2, 4]
    relaxed = select_frames(frames, limit=5, diversity=1.5 * d0, relax_to=0.5)
    assert [a.info["k"] for a in relaxed] == [0, 2, 4, 1, 3]
    assert [a.info[DIVERSITY_KEY] for a in relaxed[:3]] == [1.5 * d0] * 3
    assert all(0.75 * d0 <= a.info[DIVERSITY_KEY] <= d0 for a in relaxed[3:])
    # a round the strict rule fills is not relaxed
    assert [a.info["k"] for a in select_frames(frames, 3, 1.5 * d0, relax_to=0.5)] == [0, 2, 4]
    with pytest.raises(ValueError, match="relax_to"):
        select_frames(frames, 5, d0, relax_to=0.0)


def test_uncertain_rule_stays_in_the_trust_window() -> None:
    """Most uncertain first, but not above max_force_std (frames MD should not visit);
    only when no frame is inside the window the nearest above it."""
    base = bulk("Cu", "fcc", a=3.61, cubic=True)
    frames = []
    for k, std in enumerate([0.2, 3.0, 0.9, 1.5, 0.5]):
        atoms = base.copy()
        atoms.positions[1] += 0.1 * k
        atoms.info.update(group="g", force_std_eVA=std, k=k)
        frames.append(atoms)

    def picked(candidates: list, limit: int = 10) -> list[int]:
        chosen = select_frames(candidates, limit, 0.01, window=(0.05, 1.0))
        return [a.info["k"] for a in chosen]

    assert picked(frames, limit=3) == [2, 4, 0]  # 1 and 3 above the window
    assert picked(frames, limit=1) == [2]
    # a window that does not fill the round: then above it, least uncertain first
    assert picked(frames) == [2, 4, 0, 3, 1]
    assert picked([frames[1], frames[3]]) == [3, 1]  # none inside: least uncertain first
    assert picked([frames[1], frames[3]], limit=1) == [3]
    # window frames near-duplicates of labels: the round is filled from above the window
    known = {"g": [descriptor(frames[k]) for k in (0, 2, 4)]}
    chosen = select_frames(frames, 2, 0.01, known, window=(0.05, 1.0))
    assert [a.info["k"] for a in chosen] == [3, 1]


def test_window_rule_draws_at_random_inside_the_trust_window() -> None:
    base = bulk("Cu", "fcc", a=3.61, cubic=True)
    frames = []
    for k, std in enumerate([0.01, 0.2, 0.3, 0.4, 0.5, 2.0, 0.25]):
        atoms = base.copy()
        atoms.positions[1] += 0.1 * k  # no two near-duplicates
        atoms.info.update(group="g", force_std_eVA=std, k=k)
        frames.append(atoms)

    def picked(seed: int, limit: int = 10, diversity: float = 0.01) -> list[int]:
        chosen = select_frames(frames, limit, diversity, rule="window",
                               window=(0.05, 1.0), seed=seed)  # fmt: skip
        return [a.info["k"] for a in chosen]

    assert sorted(picked(0, limit=5)) == [1, 2, 3, 4, 6]  # 0 below, 5 above the window
    assert picked(0)[-1] == 5  # above the window: only once the window is used up
    orders = {tuple(picked(seed)) for seed in range(6)}
    assert len(orders) > 1 and picked(3) == picked(3)  # random, and fixed by the seed
    assert len(picked(0, limit=2)) == 2
    # the diversity rule still holds: frames 0.1 A apart are duplicates at diversity 1 A
    assert len(picked(0, diversity=1.0)) == 1
    with pytest.raises(ValueError, match="unknown selection rule 'best'"):
        select_frames(frames, 1, 0.01, rule="best")


def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    seed = tmp_path / "cu4.xyz"
    ase.io.write(seed, bulk("Cu", "fcc", a=3.61, cubic=True))
    config = LearnConfig((str(seed),), "emt", str(tmp_path / "a"), budget=5, rattles=10)
    with pytest.raises(ValueError, match="budget 5 is smaller than the first round: 10 labels"):
        Learner(config)
    ase.io.write(tmp_path / "cl.xyz", molecule("CH3Cl"))
    with pytest.raises(ValueError, match="seed seed0_CH3Cl: element\\(s\\) Cl cannot be"):
        Learner(config.replace(start=(str(tmp_path / "cl.xyz"),), budget=50))
    with pytest.raises(ValueError, match="unknown calculator spec"):
        Learner(config.replace(calculator="gaussian", budget=50))
    with pytest.raises(ValueError, match="max_force_std"):
        Learner(config.replace(budget=50, max_force_std=0.01))
    with pytest.raises(ValueError, match="unknown selection rule 'top'"):
        Learner(config.replace(budget=50, selection="top"))
    with pytest.raises(ValueError, match="explore_from must be one of seeds, last"):
        Learner(config.replace(budget=50, explore_from="end"))
    assert not (tmp_path / "a").exists()
    with pytest.raises(CheckpointError):  # keep the import used: resume errors are this type
        raise CheckpointError("x")


def test_a_committee_unsure_everywhere_still_spends_its_budget(tmp_path: Path) -> None:
    """Every system stops at its first sample and every frame MD reaches lies within the
    diversity of a label: the loop fills its rounds with rattles of where MD went and
    spends the budget (it used to stop with "no new frame to label")."""
    out = tmp_path / "run"
    args = learn_args(tmp_path, out, "--budget", "11", "--min-force-std", "1e-7",
                      "--max-force-std", "1e-6", "--stop-force-std", "1e-6",
                      "--diversity", "0.2")  # fmt: skip
    assert main(args) == 0
    table = rows(out)
    assert [int(r["labels"]) for r in table] == [5, 8, 11]
    for r in table[1:]:
        assert int(r["md_stopped"]) == int(r["md_systems"]) == 4
        assert int(r["rattled"]) == 3 and r["note"] == ""
    state = json.loads((out / "state.json").read_text())
    assert state["finished"] == "budget spent"
    known = [
        descriptor(s.to_atoms())
        for s in next(iter(read_mlip(out / "round_0" / "labels.h5"))).structures
    ]
    for frame in ase.io.read(out / "round_1" / "selected.extxyz", index=":"):
        assert frame.info["group"] == "seed0_Cu4"
        assert min(np.sqrt(np.mean((descriptor(frame) - k) ** 2)) for k in known) >= 0.2


def _fake_round(monkeypatch, found) -> None:  # noqa: ANN001
    import mlip.learn.loop as loop

    monkeypatch.setattr(loop, "explore", lambda *args, **kwargs: found)


def _learner_after_round_0(tmp_path: Path, **changes) -> Learner:  # noqa: ANN003
    seed = tmp_path / "cu4.xyz"
    ase.io.write(seed, bulk("Cu", "fcc", a=3.61, cubic=True))
    tiny = {"model.num_channels": 4, "model.num_layers": 1, "model.l_max": 1,
            "train.max_epochs": 1}  # fmt: skip
    config = LearnConfig((str(seed),), "emt", str(tmp_path / "run"), budget=12, rattles=4,
                         per_round=3, committee=2, md_steps=20, sample_every=5,
                         final_epochs=0, train=tiny, progress=False, **changes)  # fmt: skip
    learner = Learner(config)
    for phase in (learner._select, learner._label, learner._train):
        phase(0)
    return learner


def test_exploded_md_is_not_convergence(tmp_path: Path, monkeypatch) -> None:
    """A round whose systems all exploded has no candidate, but it is not converged: the
    round labels rattles of the seeds (it used to end the loop as "converged")."""
    from mlip.learn.explore import Exploration

    learner = _learner_after_round_0(tmp_path)
    _fake_round(monkeypatch, Exploration(candidates=[], peaks={"a": 5.0}, reached={"a": 1.0},
                                         exploded=["a"]))  # fmt: skip
    learner._select(1)
    assert learner.state["finished"] is None and learner.state["phase"] == "label"
    assert learner.state["pending"]["rattled"] == 3
    chosen = ase.io.read(tmp_path / "run" / "round_1" / "selected.extxyz", index=":")
    assert len(chosen) == 3 and {a.info["group"] for a in chosen} == {"seed0_Cu4"}
    # full-length MD, every system, nothing above min_force_std: converged
    full = learner.config.md_steps * learner.config.timestep
    assert learner._converged(Exploration(candidates=[], peaks={"a": 0.0}, reached={"a": full}))
    assert not learner._converged(Exploration([], {"a": 0.0}, {"a": full / 2}))


def test_an_early_end_is_warned_about_and_in_the_table(tmp_path: Path, monkeypatch) -> None:
    """Should even the rattles find no new frame, the loop ends with a warning and the
    round table says why; the normal ends do not warn."""
    import mlip.learn.loop as loop
    from mlip.learn.explore import Exploration

    learner = _learner_after_round_0(tmp_path)
    labelled = next(iter(read_mlip(tmp_path / "run" / "data.h5"))).structures[0].to_atoms()
    labelled.info.update(group="seed0_Cu4", force_std_eVA=0.05)  # a duplicate of a label
    _fake_round(monkeypatch, Exploration([labelled], {"a": 0.05}, {"a": 10.0}))
    monkeypatch.setattr(loop, "fallback_rattles", lambda *args, **kwargs: [])
    with pytest.warns(UserWarning, match="stopped early, 8 of 12 labels unspent"):
        state = learner.run()
    assert state["finished"].startswith("no new frame to label")
    assert rows(tmp_path / "run")[-1]["note"] == state["finished"]


def test_round_0_rattles_grow_from_rattle_std_to_rattle_max_std() -> None:
    from mlip.learn.loop import rattle_stds

    config = LearnConfig(("x",), "emt", "o", rattles=5, rattle_std=0.02, rattle_max_std=0.08)
    np.testing.assert_allclose(rattle_stds(config), [0.0, 0.02, 0.04, 0.06, 0.08])
    np.testing.assert_allclose(rattle_stds(config.replace(rattle_max_std=None)),
                               [0.0, 0.02, 0.02, 0.02, 0.02])  # fmt: skip
    with pytest.raises(ValueError, match="rattle_max_std .* must be at least rattle_std"):
        config.replace(rattle_max_std=0.01).check()
