"""Bad input to ``softq compare`` and ``softq bench NAME`` is refused by name before any work.

Pins: compare counts a run listed twice (``good ./good/``, overlapping globs) once and says so;
refuses a figure format matplotlib cannot write before reading runs or writing --report, and
names the file it really wrote (``--out curves`` -> curves.png); refuses nan/inf thresholds; and
says why a group has no final mean (no step common to all its runs). The benchmarks refuse an
unknown --device, a non-integer --ref-sizes, a missing --reference-python, unknown --presets, a
bad --set, too few --steps for their own rate measurement and an SB3 comparison without SB3
installed, with exit code 2, before the first benchmark runs: every benchmark function is
replaced by one that fails the test if called.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

from launch.bench import atari, ddpg, irl, runtime, sql_update
from launch.cli import main
from tests.test_training_extremes import _fake_run

METRIC = "eval/return_mean"


def _no_work(*args, **kwargs):
    raise AssertionError("a benchmark ran before its flags were checked")


@pytest.fixture
def no_benchmarks(monkeypatch):
    for module, names in [
        (sql_update, ["bench_softq", "bench_matmul_floor", "bench_sb3_sac"]),
        (irl, ["bench_city", "bench_reference"]),
        (atari, ["replay_bytes_per_transition", "softq_rates", "sb3_dqn_rates",
                 "sb3_a2c_rates", "preset_rates"]),
        (ddpg, ["bench_softq", "bench_sb3"]),
        (runtime, ["_run"]),
    ]:
        for name in names:
            monkeypatch.setattr(module, name, _no_work)


def _refused(argv, capsys) -> str:
    """The argparse error line of ``softq ARGV`` (exit code 2)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# ---------------------------------------------------------------------- softq compare
@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    curves = {"good": [(500, 1.0), (900, 2.0)], "good2": [(500, 3.0), (900, 5.0)],
              "early": [(100, 1.0), (200, 2.0)], "late": [(1000, 3.0), (2000, 5.0)]}
    return {name: _fake_run(tmp_path, name, "multigoal-quick", METRIC, curve)
            for name, curve in curves.items()}


def test_compare_counts_a_run_listed_twice_once(runs, capsys):
    assert main(["compare", "good", "./good/", "good2", "good", str(runs["good2"]),
                 "--out", "c.png", "--report", "c.json"]) == 0
    out, err = capsys.readouterr()
    rep = json.loads((runs["good"].parent / "c.json").read_text())["multigoal-quick"]
    assert rep["seeds"] == 2 and rep["final_mean"] == 3.5
    assert "multigoal-quick: 2 run(s)" in out
    assert f"dropped repeated ./good/ (= good), good, {runs['good2']} (= good2)" in err


def test_compare_refuses_an_unknown_figure_format_before_writing_the_report(runs, capsys):
    line = _refused(["compare", "good", "--out", "c.foo", "--report", "rep.json"], capsys)
    assert "argument --out: cannot write a 'foo' figure; use one of" in line and ".png" in line
    assert not (runs["good"].parent / "rep.json").exists()
    line = _refused(["compare", "good", "--out", "figs/"], capsys)
    assert "argument --out: 'figs/' is no figure file name (a directory or empty)" in line


def test_compare_names_the_file_matplotlib_wrote(runs, capsys):
    assert main(["compare", "good", "--out", "curves"]) == 0
    assert "wrote curves.png" in capsys.readouterr().out
    assert (runs["good"].parent / "curves.png").stat().st_size > 0


@pytest.mark.parametrize("flag", [["--above", "nan"], ["--below", "inf"], ["--above=-inf"]])
def test_compare_refuses_non_finite_thresholds(runs, flag, capsys):
    line = _refused(["compare", "good", *flag, "--out", "c.png"], capsys)
    assert "must be a finite number" in line and line.split()[-1] in {"nan", "inf", "-inf"}


def test_compare_says_why_runs_without_a_common_step_have_no_mean(runs, capsys):
    assert main(["compare", "early", "late", "--out", "c.png"]) == 0
    out = capsys.readouterr().out
    assert (f"multigoal-quick: 2 run(s), final {METRIC} = n/a: no step is common to all runs "
            "(early: steps 100..200, final 2.00; late: steps 1000..2000, final 5.00)") in out


# ---------------------------------------------------------------------- softq bench
@pytest.mark.parametrize("argv,needle", [
    (["sql-update", "--device", "foo"],
     "argument --device: expected 'cpu', 'cuda' or 'cuda:N', got 'foo'"),
    (["sql-update", "--device", "cuda:1"], "argument --device: 'cuda:1': this machine has 1"),
    (["atari", "--device", "mps"], "argument --device: expected 'cpu', 'cuda' or 'cuda:N'"),
    (["irl", "--skip-city", "--ref-sizes", "abc"],
     "argument --ref-sizes: expected an integer, got 'abc'"),
    (["irl", "--skip-city", "--ref-sizes", "10,0"], "argument --ref-sizes: must be >= 1, got 0"),
    (["irl", "--skip-city", "--ref-sizes", "10", "--reference-python", "/no/such/python"],
     "--reference-python '/no/such/python' (or $SOFTQ_IMITATION_PYTHON): no such executable"),
    (["atari", "--steps", "1", "--skip", "sb3"], "argument --steps: must be >= 500 (two driver "
     "logs, every run.log_every=250 env steps, must follow the warm-up), got 1"),
    (["atari", "--steps", "600", "--set", "run.log_every=400"], "must be >= 800"),
    (["atari", "--set", "run.log_every=0"], "--set run.log_every=0 turns off the driver's logs"),
    (["atari", "--presets", "pong-dqn", "nope"], "argument --presets: unknown preset(s) 'nope'"),
    (["ddpg", "--steps", "8", "--workers", "2"],
     "argument --steps: must be >= 16 with --workers"),
    (["runtime", "--steps", "8"],
     "argument --steps: must be >= 64 for preset 'halfcheetah'"),
])
def test_benchmark_flags_are_refused_before_any_benchmark_runs(argv, needle, no_benchmarks,
                                                               monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # one GPU, for cuda:1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert needle in _refused(["bench", *argv], capsys)


def test_a_bad_set_for_the_atari_runs_is_refused_before_the_replay_benchmark(no_benchmarks,
                                                                             capsys):
    assert main(["bench", "atari", "--set", "agent.nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("softq: error: unknown config key 'agent.nope'")


def test_the_steps_minimum_applies_only_when_softq_trains(no_benchmarks, capsys):
    assert main(["bench", "atari", "--steps", "1", "--skip", "replay", "dqn", "a2c"]) == 0
    assert capsys.readouterr().out.strip() == "{}"


@pytest.mark.parametrize("argv,skip", [(["ddpg"], "--no-sb3"),
                                       (["atari", "--skip", "replay", "dqn"], "--skip sb3")])
def test_an_sb3_comparison_without_sb3_is_refused_before_any_run(argv, skip, no_benchmarks,
                                                                 monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import raises ImportError
    line = _refused(["bench", *argv], capsys)
    assert f"stable-baselines3 is not installed: pip install -e '.[bench]', or {skip}" in line
