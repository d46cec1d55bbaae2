"""``softq compare``'s numbers against hand-computed ones, on run directories whose events are
written by the driver's own TensorBoardLogger."""

from __future__ import annotations

import json

import pytest

from distributed.metrics import TensorBoardLogger
from launch.cli import main
from launch.config import load_config, save_config

METRIC = "eval/return_mean"


def _run(root, name, curve, preset="multigoal-quick", sets=()):
    run = root / name
    (run / "tb").mkdir(parents=True)
    save_config(load_config(preset, list(sets)), run / "config.yaml")
    tb = TensorBoardLogger(run / "tb")
    for step, value in curve:
        tb.scalars({METRIC: value}, step)
    tb.close()
    return run


def test_a_run_longer_than_the_others_is_named_and_the_final_step_reported(tmp_path, capsys):
    # the group's curve ends at 2000, where "short" ends; "long" goes on to 10 at 4000
    long = _run(tmp_path, "long", [(1000, 0.0), (2000, 4.0), (3000, 10.0), (4000, 10.0)])
    short = _run(tmp_path, "short", [(1000, 2.0), (2000, 2.0)])
    report = tmp_path / "c.json"
    assert main(["compare", str(long), str(short), "--out", str(tmp_path / "c.png"),
                 "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    assert f"final {METRIC} = 3.00 +- 1.00 at step 2000" in out  # mean(4, 2), std of (4, 2)
    assert f"cut off there: {long} (to step 4000, last value 10.00)" in err
    rep = json.loads(report.read_text())["multigoal-quick"]
    assert rep["final_step"] == 2000 and rep["final_mean"] == 3.0
    assert rep["runs"] == [
        {"run": str(long), "first_step": 1000, "last_step": 4000, "last_value": 10.0,
         "value_at_final_step": 4.0},
        {"run": str(short), "first_step": 1000, "last_step": 2000, "last_value": 2.0,
         "value_at_final_step": 2.0}]


def test_runs_without_a_common_step_keep_their_ranges_in_the_report(tmp_path, capsys):
    early = _run(tmp_path, "early", [(100, 1.0), (200, 2.0)])
    late = _run(tmp_path, "late", [(1000, 3.0), (2000, 5.0)], sets=["run.seed=1"])
    report = tmp_path / "c.json"
    assert main(["compare", str(early), str(late), "--out", str(tmp_path / "c.png"),
                 "--report", str(report)]) == 0
    rep = json.loads(report.read_text())["multigoal-quick"]
    assert rep["final_mean"] is None and rep["final_step"] is None
    assert [(r["first_step"], r["last_step"], r["last_value"], r["value_at_final_step"])
            for r in rep["runs"]] == [(100, 200, 2.0, None), (1000, 2000, 5.0, None)]
    assert "warning" not in capsys.readouterr().err


def test_std_over_seeds_is_the_population_std_and_says_so(tmp_path, capsys):
    # values 0, 0, 3 at both steps: mean 1, population std sqrt(2) (the sample std is sqrt(3))
    runs = [_run(tmp_path, f"s{i}", [(1000, v), (2000, v)]) for i, v in enumerate((0.0, 0.0, 3.0))]
    report, out = tmp_path / "c.json", tmp_path / "c.png"
    assert main(["compare", *map(str, runs), "--out", str(out), "--report", str(report)]) == 0
    rep = json.loads(report.read_text())["multigoal-quick"]
    assert rep["final_mean"] == 1.0 and rep["final_std"] == pytest.approx(2 ** 0.5)
    assert rep["std_ddof"] == 0
    assert f"final {METRIC} = 1.00 +- 1.41 at step 2000" in capsys.readouterr().out


def test_the_figure_says_what_its_band_is():
    import numpy as np

    from launch.plots import curves_figure

    steps = np.array([0.0, 1.0])
    curves = {"a": (steps, np.array([1.0, 2.0]), np.array([0.5, 0.5]), 3)}
    assert "1 std (population, ddof=0)" in curves_figure(curves, "m").axes[0].get_title()
    per_seed = curves_figure(curves, "m", seeds={"a": [(steps, np.array([1.0, 2.0]))]})
    assert per_seed.axes[0].get_title() == "one line per run"


@pytest.mark.parametrize("value,reached", [("-1e-3", [1000]), ("-2.5E+0", [2000]),
                                           ("-3", [None])])
def test_negative_thresholds_in_any_float_notation_are_values(tmp_path, capsys, value, reached):
    run = _run(tmp_path, "r", [(500, 0.0), (1000, -0.001), (2000, -2.5)])
    report = tmp_path / "c.json"
    assert main(["compare", str(run), "--below", value, "--out", str(tmp_path / "c.png"),
                 "--report", str(report)]) == 0
    assert json.loads(report.read_text())["multigoal-quick"]["threshold"]["first_steps"] == reached


def test_a_negative_infinite_threshold_is_refused_as_not_finite(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["compare", str(tmp_path), "--below", "-inf"])
    assert "argument --below: must be a finite number, got -inf" in capsys.readouterr().err


def test_a_resumes_purge_drops_the_stray_events_of_the_same_second_and_process(tmp_path):
    """Event files are read in name order, ``...tfevents.<second>.<host>.<pid>.<counter>``. With
    the counter going from 9 to 10 (or 99 to 100) within one second of one process, the resume's
    file sorted first and its purge kept the stray events logged after the last checkpoint."""
    from torch.utils.tensorboard import SummaryWriter

    from launch.compare_cmd import read_scalars

    def counter_of(writer_dir):
        return int(next(writer_dir.glob("events.out.tfevents.*")).name.split(".")[-1])

    for i in range(1000):  # advance this process's writer counter to just below a new digit
        junk = tmp_path / f"junk{i}"
        SummaryWriter(str(junk)).close()
        c = counter_of(junk)
        if str(c + 2) < str(c + 1):
            break
    tb_dir = tmp_path / "run" / "tb"
    crashed = TensorBoardLogger(tb_dir)
    crashed.scalars({METRIC: 1.0}, 300)  # the last checkpoint's step
    crashed.scalars({METRIC: -99.0}, 350)  # logged after it, before the crash
    crashed.close()
    resumed = TensorBoardLogger(tb_dir, purge_step=301)
    resumed.scalars({METRIC: 2.0}, 400)
    resumed.close()
    steps, values = read_scalars(tmp_path / "run", METRIC)
    assert steps.tolist() == [300, 400] and values.tolist() == [1.0, 2.0]


def test_label_dir_keeps_two_runs_of_the_same_name_apart(tmp_path, capsys):
    """``--label dir`` draws one curve per run: old/x and new/x (the same preset and seed
    before and after a change) used to share the label "x" and be averaged as two seeds of one
    curve (5 +- 4 here) instead of 1 and 9."""
    old = _run(tmp_path / "old", "multigoal-quick-s0", [(1000, 0.0), (2000, 1.0)])
    new = _run(tmp_path / "new", "multigoal-quick-s0", [(1000, 4.0), (2000, 9.0)])
    other = _run(tmp_path, "other", [(1000, 2.0), (2000, 3.0)])
    report = tmp_path / "c.json"
    assert main(["compare", str(old), str(new), str(other), "--label", "dir",
                 "--out", str(tmp_path / "c.png"), "--report", str(report)]) == 0
    rep = json.loads(report.read_text())
    assert {k: (v["seeds"], v["final_mean"]) for k, v in rep.items()} == {
        str(old): (1, 1.0), str(new): (1, 9.0), "other": (1, 3.0)}
