"""`softq irl` sub-commands end to end on a tiny city, and their refusals of bad arguments."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from launch.cli import main
from launch.config import ConfigError
from launch.irl_cli import TRUE_COST, add_irl_parser


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="softq")
    add_irl_parser(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_generate_train_evaluate_destinations(tmp_path):
    d = str(tmp_path / "run")
    assert _run(["irl", "generate", "--rows", "12", "--cols", "12", "--n-train", "1000",
                 "--n-test", "150", "--n-destinations", "5", "--format", "csv",
                 "--out", d]) == 0
    assert (tmp_path / "run" / "graph" / "segments.csv").exists()
    assert _run(["irl", "train", "--data", d, "--out", d, "--iters", "25", "--mmp-iters", "3",
                 "--mmp-batch", "16"]) == 0
    costs = json.loads((tmp_path / "run" / "costs.json").read_text())
    assert set(costs) == {"maxent", "action", "mmp"}
    assert all(v >= 0 for v in costs["maxent"].values())
    assert _run(["irl", "evaluate", "--data", d, "--out", d]) == 0
    rows = json.loads((tmp_path / "run" / "table1.json").read_text())
    assert set(rows) == {"Time-based", "Max Margin", "Action", "Action (costs)", "MaxEnt paths"}
    for r in rows.values():
        assert 0.0 <= r["matching_pct"] <= 100.0 and 0.0 <= r["match90_pct"] <= 100.0
    # log-probabilities are of held-out paths: negative, and MaxEnt's beats the action model's
    assert rows["Action"]["log_prob"] < rows["MaxEnt paths"]["log_prob"] < 0.0
    assert _run(["irl", "destinations", "--data", d, "--out", d, "--n-dest", "3"]) == 0
    fig = json.loads((tmp_path / "run" / "figure5.json").read_text())
    assert (tmp_path / "run" / "figure5.png").stat().st_size > 1000
    acc = np.array(fig["accuracy"])
    # with nothing observed the posterior is the prior; seeing 90% of the route must help
    assert acc[0] == pytest.approx(fig["prior_only"][0])
    assert acc[-1] > acc[0]
    assert len(TRUE_COST) == 23
    # a warm start retrains MaxEnt and carries the other models over: Table 1 keeps its rows
    cont = str(tmp_path / "cont")
    assert _run(["irl", "train", "--data", d, "--out", cont, "--models", "maxent",
                 "--init", d, "--iters", "2"]) == 0
    warm = json.loads((tmp_path / "cont" / "costs.json").read_text())
    assert set(warm) == {"maxent", "action", "mmp"}
    assert warm["action"] == costs["action"] and warm["mmp"] == costs["mmp"]


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="graph.npz"):
        _run(["irl", "train", "--data", str(tmp_path), "--out", str(tmp_path)])
    d = str(tmp_path / "r")
    _run(["irl", "generate", "--rows", "6", "--cols", "6", "--n-train", "20", "--n-test", "5",
          "--n-destinations", "2", "--out", d])
    with pytest.raises(ConfigError, match="--models 'maxent,qlearning': unknown entries"):
        _run(["irl", "train", "--data", d, "--out", d, "--models", "maxent,qlearning"])
    # costs trained without MaxEnt: the commands that plan with MaxEnt's costs say so
    m = str(tmp_path / "m")
    assert _run(["irl", "train", "--data", d, "--out", m, "--models", "action"]) == 0
    for argv in (["irl", "destinations", "--data", d, "--model", m, "--out", m],
                 ["irl", "train", "--data", d, "--out", m, "--init", m]):
        with pytest.raises(ConfigError, match="costs.json has no 'maxent' costs.*action"):
            _run(argv)
    (tmp_path / "m" / "costs.json").write_text('{"maxent": {"length": 1.0}}')
    with pytest.raises(ConfigError, match="not a costs file.*KeyError"):
        _run(["irl", "evaluate", "--data", d, "--model", m, "--out", m])


@pytest.mark.parametrize("argv,needle", [
    (["generate", "--rows", "2", "--cols", "6"], "argument --rows: must be >= 3, got 2"),
    (["generate", "--n-train", "0"], "argument --n-train: must be >= 1, got 0"),
    (["generate", "--epsilon", "1"], "argument --epsilon: must be in [0, 1), got 1"),
    (["generate", "--trip-miles", "nan"], "argument --trip-miles: must be a finite number > 0"),
    (["generate", "--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    (["train", "--data", "DATA", "--iters", "0"], "argument --iters: must be >= 1, got 0"),
    (["destinations", "--data", "DATA", "--n-dest", "-1"], "argument --n-dest: must be >= 1"),
])
def test_out_of_range_numbers_are_refused_by_argparse(argv, needle, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(tmp_path) if a == "DATA" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(["irl", *argv, "--out", str(out)])
    assert exit_info.value.code == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv,needle", [
    (["generate", "--rows", "6"], "--rows and --cols go together"),
    (["generate", "--rows", "3", "--cols", "3", "--n-destinations", "500"],
     "--n-destinations 500 exceeds the city's"),
    (["train", "--data", "MISSING"], "no graph.npz or graph/"),
    (["train", "--data", "MISSING", "--models", "maxent,"], "no graph.npz"),
    (["evaluate", "--data", "MISSING"], "no graph.npz or graph/"),
    (["train", "--data", "CITY", "--address", "127.0.0.1:1"], "no Ray head answers at"),
])
def test_bad_inputs_are_one_line_and_leave_no_output_directory(argv, needle, tmp_path, capsys):
    out = tmp_path / "out"
    if "CITY" in argv:
        assert main(["irl", "generate", "--rows", "6", "--cols", "6", "--n-train", "20",
                     "--n-test", "5", "--n-destinations", "2", "--out", str(tmp_path / "c")]) == 0
        capsys.readouterr()
    argv = [{"MISSING": str(tmp_path / "missing"), "CITY": str(tmp_path / "c")}.get(a, a)
            for a in argv]
    assert main(["irl", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("softq: error:") and needle in err[0], err
    assert not out.exists()


def test_commands_read_their_inputs_before_making_the_output_directory(tmp_path, capsys):
    d, out = tmp_path / "city", tmp_path / "out"
    assert main(["irl", "generate", "--rows", "6", "--cols", "6", "--n-train", "20",
                 "--n-test", "5", "--n-destinations", "2", "--out", str(d)]) == 0
    for cmd in (["train", "--init", str(tmp_path / "nowhere")], ["evaluate"], ["destinations"]):
        assert main(["irl", *cmd, "--data", str(d), "--out", str(out)]) == 2  # no costs.json
        assert "costs.json not found" in capsys.readouterr().err
        assert not out.exists()
