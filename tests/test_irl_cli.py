"""`softq irl` sub-commands end to end on a tiny city, and their refusals of bad arguments."""

from __future__ import annotations

import argparse
import errno
import json
import os

import numpy as np
import pytest

from envs.road_graph import FEATURE_NAMES
from launch.cli import main
from launch.config import ConfigError
from launch.irl_cli import TRUE_COST, add_irl_parser


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="softq")
    add_irl_parser(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_generate_train_evaluate_destinations(tmp_path, capsys):
    d = str(tmp_path / "run")
    assert _run(["irl", "generate", "--rows", "12", "--cols", "12", "--n-train", "1000",
                 "--n-test", "150", "--n-destinations", "5", "--format", "csv",
                 "--out", d]) == 0
    assert (tmp_path / "run" / "graph" / "segments.csv").exists()
    assert _run(["irl", "train", "--data", d, "--out", d, "--iters", "25", "--mmp-iters", "3",
                 "--mmp-batch", "16"]) == 0
    out, err = capsys.readouterr()  # no terminal: no progress bar debris (the maxent bar's was)
    assert "\r" not in out + err and "it/s" not in out + err
    assert "action model: " in out and "max margin planning: " in out  # each phase's summary
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


@pytest.mark.parametrize("argv", [
    ["train", "--data", "CITY", "--init", ""],  # trained from cold costs without a word
    ["evaluate", "--data", "CITY", "--model", ""],  # read --data's costs.json instead
    ["destinations", "--data", ""],  # read the current directory
    ["generate", "--out", ""],  # wrote into runs/irl-<timestamp>
])
def test_an_empty_directory_argument_is_refused_by_argparse(argv, tmp_path, capsys,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    flag = argv[argv.index("") - 1]
    argv = [str(tmp_path) if a == "CITY" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(["irl", *argv, *(["--out", str(tmp_path / "out")] if "--out" not in argv else [])])
    assert exit_info.value.code == 2
    assert f"argument {flag}: is empty (an unset shell variable?)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,needle", [
    (["generate", "--rows", "6"], "--rows and --cols go together"),
    (["generate", "--rows", "3", "--cols", "3", "--n-destinations", "500"],
     "--n-destinations 500 exceeds the city's"),
    (["train", "--data", "MISSING"], "no graph.npz or graph/"),
    (["train", "--data", "MISSING", "--models", "maxent,"], "no graph.npz"),
    (["evaluate", "--data", "MISSING"], "no graph.npz or graph/"),
    (["train", "--data", "CITY", "--address", "127.0.0.1:1"], "no Ray head answers at"),
    (["train", "--data", "CITY", "--horizon", "3"], "take more steps than the horizon 3"),
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


def _tiny_city(d, *more: str, train: bool = True, fmt: str = "npz") -> str:
    """generate a tiny city into ``d`` (and train every model into it, --out = --data as
    docs/irl.md does); returns ``d`` as a string."""
    d = str(d)
    assert _run(["irl", "generate", "--size", "tiny", "--n-train", "30", "--n-test", "10",
                 "--n-destinations", "3", "--format", fmt, "--out", d, *more]) == 0
    if train:
        assert _run(["irl", "train", "--data", d, "--out", d, "--iters", "3", "--mmp-iters", "2",
                     "--mmp-batch", "4"]) == 0
    return d


def test_retraining_one_model_keeps_the_others_in_costs_json(tmp_path, capsys):
    d = _tiny_city(tmp_path / "city")
    before = json.loads((tmp_path / "city" / "costs.json").read_text())
    assert set(before) == {"maxent", "action", "mmp"}
    capsys.readouterr()
    assert _run(["irl", "train", "--data", d, "--out", d, "--models", "maxent",
                 "--iters", "2"]) == 0
    after = json.loads((tmp_path / "city" / "costs.json").read_text())
    assert list(after) == ["maxent", "action", "mmp"]
    assert after["action"] == before["action"] and after["mmp"] == before["mmp"]
    assert after["maxent"] != before["maxent"]  # 2 iterations, not 3: retrained
    assert "(not retrained): action, mmp" in capsys.readouterr().out
    # --out's own costs.json outranks --init's: its action model stays, --init's mmp comes along
    o = str(tmp_path / "o")
    assert _run(["irl", "train", "--data", d, "--out", o, "--models", "action",
                 "--iters", "1"]) == 0
    own = json.loads((tmp_path / "o" / "costs.json").read_text())["action"]
    assert own != before["action"]
    assert _run(["irl", "train", "--data", d, "--out", o, "--models", "maxent", "--init", d,
                 "--iters", "1"]) == 0
    both = json.loads((tmp_path / "o" / "costs.json").read_text())
    assert set(both) == {"maxent", "action", "mmp"}
    assert both["action"] == own and both["mmp"] == before["mmp"]


@pytest.mark.parametrize("crash", ["disk full while writing", "rename fails"])
def test_a_crash_while_writing_costs_json_leaves_the_old_one_whole(crash, tmp_path, monkeypatch):
    d = _tiny_city(tmp_path / "city")
    f = tmp_path / "city" / "costs.json"
    old = f.read_bytes()
    from envs import atomic_files

    real_fdopen = os.fdopen

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    def full_disk_fdopen(fd, *args, **kwargs):  # half the data reaches the disk, then ENOSPC
        fh = real_fdopen(fd, *args, **kwargs)
        write = fh.write

        def half_then_full(data):
            write(data[: len(data) // 2])
            fh.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fh.write = half_then_full
        return fh

    if crash == "rename fails":
        monkeypatch.setattr(atomic_files.os, "replace", fail)
    else:
        monkeypatch.setattr(atomic_files.os, "fdopen", full_disk_fdopen)
    with pytest.raises(OSError):
        _run(["irl", "train", "--data", d, "--out", d, "--models", "maxent", "--iters", "2"])
    assert f.read_bytes() == old
    assert sorted(p.name for p in (tmp_path / "city").glob("*costs.json*")) == ["costs.json"]


def test_a_train_log_link_in_out_is_refused_not_followed(tmp_path, capsys):
    # --out = --data (docs/irl.md): a data directory from elsewhere may hold a planted link
    d = _tiny_city(tmp_path / "city", train=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "city" / "train_log.jsonl")
    assert main(["irl", "train", "--data", d, "--out", d, "--models", "maxent",
                 "--iters", "2"]) == 2
    assert "train_log.jsonl is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious\n"  # was appended the training log


def test_a_second_train_into_the_same_out_loses_no_model(tmp_path, monkeypatch, capsys):
    """Two `irl train --out D` at once each rewrite D/costs.json from what they read: the second
    is refused while the first trains, and one that read costs.json before the first wrote it
    reads it again under the lock (each used to write its stale copy over the other's model)."""
    import agents.irl.learning as learning
    from launch import irl_cli

    d = _tiny_city(tmp_path / "city")
    f = tmp_path / "city" / "costs.json"
    before = json.loads(f.read_text())
    action = ["irl", "train", "--data", d, "--out", d, "--models", "action", "--iters", "1"]
    real_lbfgs, real_truth = learning.train_lbfgs, irl_cli.load_true_cost

    def while_maxent_trains(*a, **k):
        assert main(action) == 2  # refused, not run beside it
        return real_lbfgs(*a, **k)

    monkeypatch.setattr(learning, "train_lbfgs", while_maxent_trains)
    assert _run(["irl", "train", "--data", d, "--out", d, "--models", "maxent",
                 "--iters", "2"]) == 0
    assert "in use: another softq process" in capsys.readouterr().err
    maxent = json.loads(f.read_text())["maxent"]
    assert maxent != before["maxent"]
    monkeypatch.setattr(learning, "train_lbfgs", real_lbfgs)

    def maxent_finishes_meanwhile(data):  # after this call read costs.json, before it locks
        monkeypatch.setattr(irl_cli, "load_true_cost", real_truth)
        assert _run(["irl", "train", "--data", d, "--out", d, "--models", "maxent",
                     "--iters", "1"]) == 0
        return real_truth(data)

    monkeypatch.setattr(irl_cli, "load_true_cost", maxent_finishes_meanwhile)
    assert _run(action) == 0
    after = json.loads(f.read_text())
    assert after["action"] != before["action"]  # this call's
    assert after["maxent"] not in (maxent, before["maxent"])  # the one trained meanwhile


def test_commands_started_in_one_second_without_out_get_their_own_directories(tmp_path,
                                                                              monkeypatch):
    # runs/irl-<timestamp>: two `irl generate` in one second used to write into one directory
    from launch.irl_files import out_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "irl-20260101-000000")
    assert [str(out_dir(None)) for _ in range(2)] == ["runs/irl-20260101-000000",
                                                        "runs/irl-20260101-000000-2"]


@pytest.mark.parametrize("content,needle", [
    ("{not json", "is not a costs file of `softq irl train`"),
    (json.dumps({"action": {n: 1.0 for n in (*FEATURE_NAMES, "miles_unpaved")}}),
     "has weights for unknown features miles_unpaved"),
])
def test_an_unreadable_costs_json_in_out_is_refused_not_overwritten(content, needle, tmp_path,
                                                                     capsys):
    d = _tiny_city(tmp_path / "city", train=False)
    f = tmp_path / "city" / "costs.json"
    f.write_text(content)
    capsys.readouterr()
    assert main(["irl", "train", "--data", d, "--out", d, "--models", "maxent"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "move it away" in err[0], err
    assert f.read_text() == content


def _object_array_npz(d) -> None:
    z = dict(np.load(d / "graph.npz"))
    z["lanes"] = z["lanes"].astype(object)
    np.savez(d / "graph.npz", **z)


def _corrupt_member(d) -> None:
    raw = bytearray((d / "graph.npz").read_bytes())
    raw[200:260] = b"x" * 60  # inside the first compressed array
    (d / "graph.npz").write_bytes(bytes(raw))


@pytest.mark.parametrize("cmd,file,damage,needle", [
    ("train", "train_paths.csv", "path_id,segments\n0,99999 1\n",
     "train_paths.csv: path 0 has segment id 99999, outside the graph's 0.."),
    ("train", "train_paths.csv", "path_id,segments\n0,abc\n",
     "train_paths.csv:2: bad segment list"),
    ("train", "train_paths.csv", "id,path\n", "train_paths.csv: header must be"),
    ("evaluate", "test_paths.csv", "path_id,segments\n0,abc\n",
     "test_paths.csv:2: bad segment list"),
    ("destinations", "test_paths.csv", "path_id,segments\n0,99999 1\n",
     "test_paths.csv: path 0 has segment id 99999, outside the graph's 0.."),
    ("train", "graph.npz", np.random.default_rng(0).bytes(2000),
     "graph.npz is not an .npz archive"),
    ("evaluate", "graph.npz", b"", "graph.npz is not an .npz archive"),
    ("train", "graph.npz", _object_array_npz, "graph.npz: Object arrays cannot be loaded"),
    ("train", "graph.npz", _corrupt_member, "graph.npz: "),
    ("train", "true_cost.json", "[1, 2]", "true_cost.json: not a costs file"),
], ids=["segment-outside-graph", "not-a-number", "header", "evaluate-test-paths",
        "destinations-test-paths", "npz-random-bytes", "npz-empty", "npz-object-array",
        "npz-corrupt-member", "true-cost"])
def test_corrupt_input_files_are_one_line_errors_naming_the_file(cmd, file, damage, needle,
                                                                 tmp_path, capsys):
    city, out = tmp_path / "city", tmp_path / "out"
    _tiny_city(city)
    if callable(damage):
        damage(city)
    elif isinstance(damage, bytes):
        (city / file).write_bytes(damage)
    else:
        (city / file).write_text(damage)
    capsys.readouterr()
    assert main(["irl", cmd, "--data", str(city), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("softq: error:") and needle in err[0], err
    assert str(city / file) in err[0]
    assert not out.exists()


def test_a_csv_graph_with_a_bad_value_is_a_one_line_error(tmp_path, capsys):
    city = tmp_path / "city"
    _tiny_city(city, train=False, fmt="csv")
    seg = city / "graph" / "segments.csv"
    lines = seg.read_text().splitlines()
    lines[1] = "abc" + lines[1][lines[1].index(","):]
    seg.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["irl", "train", "--data", str(city), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{seg}: non-numeric value" in err[0], err


def test_regenerating_in_the_other_format_replaces_the_earlier_graph(tmp_path, capsys):
    d = tmp_path / "city"
    _tiny_city(d, train=False)  # graph.npz of an 8 x 8 city
    capsys.readouterr()
    _tiny_city(d, "--rows", "9", "--cols", "9", train=False, fmt="csv")
    assert f"removed {d / 'graph.npz'}" in capsys.readouterr().out
    assert not (d / "graph.npz").exists() and (d / "graph" / "segments.csv").exists()
    # the new paths are of the 9 x 9 city: training reads the new graph, not the stale one
    assert _run(["irl", "train", "--data", str(d), "--out", str(d), "--models", "action",
                 "--iters", "1"]) == 0
    _tiny_city(d, train=False)  # and back to npz: graph/ goes
    assert (d / "graph.npz").exists() and not (d / "graph").exists()
    # both at once (a directory an older softq regenerated): refused by name, not guessed
    (d / "graph").mkdir()
    capsys.readouterr()
    assert main(["irl", "train", "--data", str(d), "--out", str(tmp_path / "out")]) == 2
    assert "holds both graph.npz and graph/" in capsys.readouterr().err
    # a graph/ with files generate did not write is not deleted: generate refuses instead
    (d / "graph" / "notes.txt").write_text("mine")
    assert main(["irl", "generate", "--size", "tiny", "--format", "npz", "--n-train", "30",
                 "--n-test", "10", "--n-destinations", "3", "--out", str(d)]) == 2
    assert "holds files other than segments.csv and transitions.csv" in capsys.readouterr().err
    assert (d / "graph" / "notes.txt").read_text() == "mine"


def test_an_out_that_is_or_lies_below_a_file_is_one_line(tmp_path, capsys):
    """`irl generate --out FILE` (or FILE/sub) raised a raw FileExistsError from mkdir."""
    f = tmp_path / "file"
    f.write_text("mine")
    for out in (f, f / "sub"):
        assert main(["irl", "generate", "--size", "tiny", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"softq: error: --out {out}: {f} is a file, not a directory"], err
    assert f.read_text() == "mine"


def test_generate_without_a_terminal_leaves_no_progress_bar_in_its_output(tmp_path, capsys):
    """The backward pass's transient bar (leave=False) was written to a log file or pipe too,
    where its remains prefixed the next line ("backward:   0%| ... 0%:45.0 10%:53.7")."""
    _tiny_city(tmp_path / "city", train=False)
    out, err = capsys.readouterr()
    assert "backward" not in out + err and "\r" not in out + err
    assert "city" in out  # the summary line itself
