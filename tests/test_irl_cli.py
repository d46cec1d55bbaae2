"""`softq irl` sub-commands end to end on a tiny city (the lead wires add_irl_parser into
launch/cli.py; here it hangs off a bare parser)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

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


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="graph.npz"):
        _run(["irl", "train", "--data", str(tmp_path), "--out", str(tmp_path)])
    d = str(tmp_path / "r")
    _run(["irl", "generate", "--rows", "6", "--cols", "6", "--n-train", "20", "--n-test", "5",
          "--n-destinations", "2", "--out", d])
    with pytest.raises(SystemExit, match="unknown --models"):
        _run(["irl", "train", "--data", d, "--out", d, "--models", "maxent,qlearning"])
