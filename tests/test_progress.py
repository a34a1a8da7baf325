"""mlip.progress: a bar on a terminal, one line per interval in a log (and in the jobs)."""

from __future__ import annotations

import io
import re

import ase
import ase.io
from ase.build import bulk

from mlip.cli import main
from mlip.md import run_md
from mlip.potentials import LennardJones
from mlip.progress import Progress

LINE = re.compile(r"^md: (\d+)/20 step \((\d+)%\), [\d.e+-]+ step/s, t_ps=[\d.]+ .*T_K=[\d.]+")


def test_without_a_terminal_a_line_per_report_and_none_per_update():
    stream = io.StringIO()
    with Progress(100, "step", "epoch 1/2", stream=stream, terminal=False) as bar:
        bar.update(10)
        bar.update(10, F="35.1")
        assert stream.getvalue() == ""  # updates draw nothing
        bar.report(E="1.2", F="35.1")
        bar.update(30)
        bar.report(E="1.1", F="30.0")
        bar.update(5)  # moved after the last report: close writes where it ended
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue()
    assert re.fullmatch(r"epoch 1/2: 20/100 step \(20%\), [\d.e+-]+ step/s, E=1.2 F=35.1", lines[0])
    assert lines[1].startswith("epoch 1/2: 50/100 step (50%)") and lines[1].endswith("F=30.0")
    assert lines[2].startswith("epoch 1/2: 55/100 step (55%)")


def test_text_every_thins_the_lines_and_off_is_silent():
    stream = io.StringIO()
    bar = Progress(None, "step", stream=stream, terminal=False, text_every=10)
    for _ in range(25):
        bar.update(1)
        bar.report(k=bar.count)
    bar.close()
    counts = [int(line.split(" ")[0]) for line in stream.getvalue().splitlines()]
    assert counts == [10, 20, 25]  # open-ended: no total, no percentage
    silent = io.StringIO()
    with Progress(5, "step", stream=silent, terminal=False, enabled=False) as bar:
        bar.update(5)
        bar.report(x=1)
    assert silent.getvalue() == ""


def test_on_a_terminal_the_bar_stays():
    stream = io.StringIO()
    with Progress(4, "step", "md", stream=stream, terminal=True) as bar:
        for _ in range(4):
            bar.update(1)
            bar.report(T_K="300.0")
    text = stream.getvalue()
    assert "\r" in text and "|##########| 4/4" in text and "T_K=300.0]" in text  # tqdm's
    assert "md: 4/4 step (100%)" not in text  # not the text lines


def test_md_writes_a_line_per_log_step_to_a_log(capsys):
    """stderr captured (not a tty): 20 steps, a row every 5 -> 4 lines, no bar redraws."""
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True)
    run_md(LennardJones(epsilon=0.0104, sigma=3.4, r_max=7.0), atoms, "nvt-langevin",
           steps=20, log_every=5, progress=True)  # fmt: skip
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and len(lines) == 4, err
    assert [int(LINE.match(line).group(1)) for line in lines] == [5, 10, 15, 20]


def test_labelling_writes_a_line_per_rewrite_of_the_output(tmp_path, capsys):
    frames = [bulk("Cu", "fcc", a=3.6 + 0.01 * k, cubic=True) for k in range(3)]
    ase.io.write(tmp_path / "cu.xyz", frames)
    out = str(tmp_path / "cu.h5")
    assert main(["label", str(tmp_path / "cu.xyz"), out, "--calculator", "emt",
                 "--flush-seconds", "0"]) == 0  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        f"label: {k}/3 structure ({round(100 * k / 3)}%)" for k in (1, 2, 3)
    ]
    assert all(line.endswith("failed=0") for line in lines)
