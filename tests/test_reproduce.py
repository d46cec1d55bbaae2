"""``softq reproduce``: the paper experiments' run plans (launch/experiments.py) and their
execution as ``softq train`` processes, fine-tuning runs after their pretraining runs."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distributed.checkpoint import load_checkpoint
from launch import reproduce_cmd
from launch.cli import main
from launch.config import ConfigError, load_config, read_config, save_config
from launch.experiments import (
    EXPERIMENTS,
    PlannedRun,
    build_plan,
    maze_threshold,
    parse_seeds,
    swimmer_finish_line,
)
from launch.reproduce_cmd import is_finished, planned_config, progress_of

ROOT = Path(__file__).resolve().parents[1]


def test_finetune_plan_pairs_every_run_with_its_own_seeds_pretraining():
    plan = build_plan(["finetune"], quick=True, seeds=[0, 1])
    names = [r.name for r in plan.runs]
    assert len(names) == len(set(names)) == 2 * 2 + 3 * 3 * 2
    expected_init = {"sql-finetune": "ant-pretrain-sql-quick", "ddpg-pretrained":
                     "ant-pretrain-ddpg-quick", "ddpg-scratch": None}
    for run in plan.runs:
        if run.preset.startswith("ant-pretrain-"):
            assert run.init_from is None
            continue
        kind = next(k for k in expected_init if f"-{k}-" in run.preset)
        base = expected_init[kind]
        assert run.init_from == (None if base is None else f"{base}-s{run.seed}")
        # listed after the run it starts from, so a plain pass in order is a valid schedule
        if run.init_from is not None:
            assert names.index(run.init_from) < names.index(run.name)
    assert [c.name for c in plan.comparisons] == ["pretrain", "hallway-wide", "hallway-narrow",
                                                  "umaze"]
    umaze = plan.comparisons[3]
    assert len(umaze.runs) == 6 and all(r.startswith("ant-umaze-") for r in umaze.runs)
    assert umaze.flags == ("--metric", "eval/discounted_return_mean")  # Figure 5's y-axis


@pytest.mark.parametrize("quick", [True, False])
def test_every_planned_preset_exists_and_fine_tuning_matches_its_pretraining(quick):
    plan = build_plan(["all"], quick=quick, seeds=[0])
    assert {c.name for c in plan.comparisons} >= set(EXPERIMENTS) - {"finetune"}
    by_name = {r.name: r for r in plan.runs}
    for run in plan.runs:
        cfg = load_config(run.preset)
        assert cfg.preset == run.preset and ("quick" in run.preset) == quick
        if run.init_from is not None:  # the weights must fit: same algorithm and networks
            source = load_config(by_name[run.init_from].preset)
            assert (source.algo, source.agent.hidden_sizes) == (cfg.algo, cfg.agent.hidden_sizes)


def test_thresholds_come_from_the_presets_tasks():
    assert swimmer_finish_line(quick=True) == 0.3  # swimmer-finish-line-sql-quick's line
    assert swimmer_finish_line(quick=False) == 2.0  # the paper-size swimmer task's line
    # the upper passage's barrier end to the target: hypot(3.5 - 1.75, 0.75), hypot(8.5 - 5.5, 1.5)
    assert maze_threshold(quick=True) == pytest.approx(1.9039, abs=1e-4)
    assert maze_threshold(quick=False) == pytest.approx(3.3541, abs=1e-4)
    maze = build_plan(["maze"], quick=True, seeds=[0]).comparisons[0]
    assert maze.flags[maze.flags.index("--below") + 1] == "1.9039"


def test_thresholds_follow_the_set_overrides():
    # the quick swimmer on the paper's task: the figure counts seeds past the 2 m line
    swimmer = build_plan(["swimmer"], quick=True, seeds=[0],
                         overrides=["env.kwargs.finish_line_x=2.0"]).comparisons[0]
    assert swimmer.flags[swimmer.flags.index("--above") + 1] == "2"
    # the quick presets on the paper-size maze: its threshold, 3.3541 m, not the compact one's
    maze = build_plan(["maze"], quick=True, seeds=[0],
                      overrides=["env.id=softq/AntMaze-v0"]).comparisons[0]
    assert maze.flags[maze.flags.index("--below") + 1] == "3.3541"


def test_atari_figures_share_runs_and_every_game_has_every_variant():
    plan = build_plan(["atari-fig1", "atari-fig3"], quick=False, seeds=[0, 1], games=["pong"])
    # A2C naive is in both figures and trained once
    assert [r.name for r in plan.runs] == [
        "pong-a2c-naive-s0", "pong-a2c-naive-s1", "pong-a2c-proper-s0", "pong-a2c-proper-s1",
        "pong-soft-q-a2c-s0", "pong-soft-q-a2c-s1"]
    fig1, fig3 = plan.comparisons
    assert (fig1.name, fig3.name) == ("fig1-pong", "fig3-pong")
    assert fig3.runs == ("pong-a2c-naive-s0", "pong-a2c-naive-s1", "pong-soft-q-a2c-s0",
                         "pong-soft-q-a2c-s1")
    every = build_plan(["atari-fig1", "atari-fig2", "atari-fig3"], quick=False, seeds=[0])
    assert len(every.runs) == 7 * 7 and len(every.comparisons) == 3 * 7
    for run in every.runs:
        cfg = load_config(run.preset)
        assert cfg.env.id.startswith("ALE/") and run.preset.split("-")[0] in cfg.env.id.lower()
    with pytest.raises(ConfigError, match="atari-fig2 has no -quick presets"):
        build_plan(["atari-fig2"], quick=True, seeds=[0])
    with pytest.raises(ConfigError, match="--games: unknown game 'pacman'"):
        build_plan(["atari-fig1"], quick=False, seeds=[0], games=["pong", "pacman"])


def test_seeds_and_names_are_checked():
    assert parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    assert parse_seeds("5") == [5]
    for bad in ["2-1", "a", "0-x", ""]:
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="unknown experiment 'figure9'"):
        build_plan(["figure9"], quick=True, seeds=[0])


def test_bad_jobs_and_out_are_refused_before_anything_is_made(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse: one line, exit code 2
        main(["reproduce", "swimmer", "--quick", "--jobs", "0", "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert "argument --jobs: must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["reproduce", "swimmer", "--quick", "--out", str(target)]) == 2
    assert f"--out {target} is a file" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_set_for_reaches_only_that_algorithms_runs(capsys):
    assert main(["reproduce", "maze", "--quick", "--seeds", "0", "--dry-run", "--out", "r",
                 "--set", "run.log_every=7", "--set-for", "sql", "agent.cuda_graphs=true"]) == 0
    lines = capsys.readouterr().out.splitlines()
    sql = "softq train ant-maze-sql-quick --seed 0 --out r/ant-maze-sql-quick-s0"
    ddpg = "softq train ant-maze-ddpg-quick --seed 0 --out r/ant-maze-ddpg-quick-s0"
    assert lines[:2] == [f"{sql} --set run.log_every=7 --set agent.cuda_graphs=true",
                         f"{ddpg} --set run.log_every=7"]
    assert lines[2].startswith("softq compare r/ant-maze-sql-quick-s0 r/ant-maze-ddpg-quick-s0")
    assert main(["reproduce", "maze", "--quick", "--dry-run", "--set-for", "a2c", "x.y=1"]) == 2
    assert "--set-for a2c: no run of this plan trains 'a2c' (here: ddpg, sql)" in (
        capsys.readouterr().err)


# Tiny runs: 300 steps, 8x8 nets, one short evaluation; the SQL schedules still run over 10k.
TINY = ["run.total_env_steps=300", "replay.min_size=100", "run.eval_every=300",
        "run.eval_episodes=1", "env.max_episode_steps=50", "run.log_every=100",
        "run.checkpoint_every=300", "agent.hidden_sizes=[8, 8]"]


def _set_flags(overrides: list[str]) -> list[str]:
    return [x for s in overrides for x in ("--set", s)]


def _reproduce(root: Path, *extra: str) -> int:
    return main(["reproduce", "finetune", "--quick", "--seeds", "0", "--jobs", "2",
                 "--out", str(root), *_set_flags(TINY), *extra])


def test_progress_is_read_from_the_last_progress_line(tmp_path):
    log = tmp_path / "run.log"
    assert progress_of(log) is None  # not started yet
    log.write_text("run directory: x\n")
    assert progress_of(log) is None
    log.write_text("[1000/30000 steps] ret=1.0 sps=900\n" + "x" * 5000  # beyond the tail read
                   + "\n[11000/30000 steps] ret=5.0 sps=200"
                   + "\n[12000/30000 steps] ret=5.9 sps=100 eval=5.0\nwarning: y\n")
    # 18,000 steps left at the mean of 200 and 100 steps/s: 120 s
    assert progress_of(log) == "12000/30000, ~2 min left"
    log.write_text("[12000/3000000 steps] ret=5.9 sps=100\n")  # 29,880 s
    assert progress_of(log) == "12000/3000000, ~8.3 h left"
    log.write_text("[30000/30000 steps] ret=5.9 sps=100\n")
    assert progress_of(log) == "30000/30000"


def test_the_finetune_chain_runs_trains_from_pretraining_and_picks_up_where_it_stopped(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce_cmd, "HEARTBEAT_S", 0.0)  # list the running runs every poll
    assert _reproduce(tmp_path) == 0
    out = capsys.readouterr().out
    running = [line for line in out.splitlines() if "] running: " in line]
    assert running and all("-s0 " in line for line in running)
    plan = build_plan(["finetune"], quick=True, seeds=[0])
    for run in plan.runs:
        summary = json.loads((tmp_path / run.name / "summary.json").read_text())
        assert summary["env_steps"] >= 300
    # fine-tuning runs were started from their pretraining run's directory
    log = (tmp_path / "logs" / "ant-umaze-sql-finetune-quick-s0.log").read_text()
    assert "--init-from" in out and "differ from the pretraining run" in log
    for comp in ["pretrain", "hallway-wide", "hallway-narrow", "umaze"]:
        report = json.loads((tmp_path / f"{comp}.json").read_text())
        assert (tmp_path / f"{comp}.png").stat().st_size > 0
        assert all(group["seeds"] == 1 for group in report.values()) and len(report) in (2, 3)
    hallway = json.loads((tmp_path / "hallway-wide.json").read_text())
    assert set(hallway) == {"ant-hallway-wide-sql-finetune-quick",
                            "ant-hallway-wide-ddpg-pretrained-quick",
                            "ant-hallway-wide-ddpg-scratch-quick"}

    # again: a run that lost its summary continues from its checkpoint; one that died before
    # its first checkpoint is kept under another name and started afresh; the rest are done
    (tmp_path / "ant-umaze-ddpg-scratch-quick-s0" / "summary.json").unlink()
    died = tmp_path / "ant-umaze-ddpg-pretrained-quick-s0"
    (died / "summary.json").unlink()
    (died / "checkpoint.pt").unlink()
    assert _reproduce(tmp_path) == 0
    out = capsys.readouterr().out
    assert "(9 finished before)" in out
    started = sorted(line.split("softq ", 1)[1] for line in out.splitlines()
                     if " started " in line)
    assert started == [
        f"train --resume {tmp_path}/ant-umaze-ddpg-scratch-quick-s0",
        f"train ant-umaze-ddpg-pretrained-quick --seed 0 --out {died} --init-from "
        f"{tmp_path}/ant-pretrain-ddpg-quick-s0 "  # printed so that a shell can run it
        + " ".join(f"--set {shlex.quote(s)}" for s in TINY)]
    # kept out of the runs a shell glob hands to `softq compare`, where it was one more seed
    assert [p.name for p in tmp_path.glob("ant-umaze-ddpg-pretrained-quick-s0*")] == [died.name]
    aside = list((tmp_path / ".incomplete").glob("ant-umaze-ddpg-pretrained-quick-s0-*"))
    assert len(aside) == 1 and (aside[0] / "config.yaml").exists()
    assert is_finished(died) and is_finished(tmp_path / "ant-umaze-ddpg-scratch-quick-s0")


def _fake_run(root: Path, preset: str, overrides: list[str], checkpoint: bytes) -> Path:
    """A run directory as an earlier call left it: its config and a checkpoint file."""
    run_dir = root / f"{preset}-s0"
    run_dir.mkdir(parents=True)
    save_config(planned_config(PlannedRun(preset, 0), overrides), run_dir / "config.yaml")
    (run_dir / "checkpoint.pt").write_bytes(checkpoint)
    return run_dir


def test_a_failed_pretraining_run_skips_its_fine_tuning_runs(tmp_path, capsys):
    # DDPG's pretraining run left a corrupt checkpoint: resuming it fails, the three runs
    # fine-tuned from it are skipped, every other run goes on
    _fake_run(tmp_path, "ant-pretrain-ddpg-quick", TINY, b"not a checkpoint")
    assert _reproduce(tmp_path) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED (exit ") == 1 and "FAILED (exit 2; " in out
    log = (tmp_path / "logs" / "ant-pretrain-ddpg-quick-s0.log").read_text()
    assert "corrupt or unsafe checkpoint" in log
    skipped = sorted(line.split()[1].rstrip(":") for line in out.splitlines()
                     if line.startswith("skipped "))
    assert skipped == [f"ant-{t}-ddpg-pretrained-quick-s0" for t in
                       ("hallway-narrow", "hallway-wide", "umaze")]
    assert "3 run(s) did not finish" not in out and "4 run(s) did not finish" in out
    for done in ["ant-umaze-sql-finetune-quick-s0", "ant-umaze-ddpg-scratch-quick-s0"]:
        assert is_finished(tmp_path / done)


def test_settings_must_match_the_runs_already_there(tmp_path, capsys):
    swimmer = ["reproduce", "swimmer", "--quick", "--seeds", "0", "--out", str(tmp_path)]
    _fake_run(tmp_path, "swimmer-finish-line-sql-quick", ["run.log_every=500"], b"")
    # another setting than the run was started with: nothing starts, the key is named
    assert main([*swimmer, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "swimmer-finish-line-sql-quick-s0 was started with other settings" in err
    assert "run.log_every is 500 there, 1000 here" in err
    # an unknown key is named with the run it reached, before anything starts
    assert main([*swimmer, "--dry-run", "--set", "agent.kernel_particles=4"]) == 2
    err = capsys.readouterr().err
    assert "swimmer-finish-line-ddpg-quick-s0: unknown config key 'agent.kernel_particles'" in err
    assert "--set-for ALGO KEY=VALUE" in err
    # the same settings and a larger budget: the run continues to it
    assert main([*swimmer, "--dry-run", "--set", "run.log_every=500",
                 "--set", "run.total_env_steps=90000"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (f"softq train --resume {tmp_path}/swimmer-finish-line-sql-quick-s0 "
                     "--set run.total_env_steps=90000")


def test_a_later_call_with_a_larger_budget_continues_finished_runs(tmp_path, capsys):
    def swimmer(total: int) -> int:
        return main(["reproduce", "swimmer", "--quick", "--seeds", "0", "--jobs", "2",
                     "--out", str(tmp_path), *_set_flags([*TINY, f"run.total_env_steps={total}"])])

    assert swimmer(300) == 0
    assert swimmer(300) == 0 and "(2 finished before)" in capsys.readouterr().out
    assert swimmer(600) == 0
    out = capsys.readouterr().out
    assert "(0 finished before)" in out and out.count("--set run.total_env_steps=600") == 2
    for name in ["swimmer-finish-line-sql-quick-s0", "swimmer-finish-line-ddpg-quick-s0"]:
        run_dir = tmp_path / name
        assert json.loads((run_dir / "summary.json").read_text())["env_steps"] >= 600
        assert read_config(run_dir / "config.yaml").run.total_env_steps == 600
        assert load_checkpoint(run_dir)["counters"]["env_steps"] >= 600


def test_ctrl_c_checkpoints_every_running_run_and_the_next_call_resumes_them(tmp_path):
    root = tmp_path / "r"
    argv = [sys.executable, "-m", "launch.cli", "reproduce", "swimmer", "--quick", "--seeds", "0",
            "--jobs", "2", "--out", str(root)]
    sets = ["run.total_env_steps=10000000", "run.checkpoint_every=200", "run.eval_every=0",
            "agent.hidden_sizes=[8, 8]", "replay.min_size=100"]
    proc = subprocess.Popen(argv + _set_flags(sets), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runs = [root / f"swimmer-finish-line-{a}-quick-s0" for a in ("sql", "ddpg")]
    deadline = time.time() + 120
    while time.time() < deadline and not all((r / "checkpoint.pt").exists() for r in runs):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "interrupted" in out
    for run in runs:
        log = (root / "logs" / f"{run.name}.log").read_text()
        assert "interrupted: writing a final checkpoint" in log  # each got one SIGINT
        steps = load_checkpoint(run)["counters"]["env_steps"]
        assert 200 <= steps < 10_000_000
        assert not is_finished(run)  # its summary.json is not a finished run's
    again = subprocess.run(argv + _set_flags(sets) + ["--dry-run"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.stdout.splitlines()[:2] == [f"softq train --resume {r}" for r in runs]


def test_a_run_that_diverged_at_its_budgets_end_is_not_finished(tmp_path, capsys):
    """A learner found non-finite at the last step stops the run with exit code 1, but its
    summary.json reaches the budget: counted as finished, a later call skipped it and drew its
    figure from it. With lr = 1e12 the weights are nan by step 100, the last log and budget."""
    run = tmp_path / "run"
    assert main(["train", "cartpole-soft-dqn", "--out", str(run), "--set", "run.eval_every=0",
                 "--set", "run.total_env_steps=100", "--set", "replay.min_size=64",
                 "--set", "run.log_every=100", "--set", "run.checkpoint_every=50",
                 "--set", "agent.lr=1e12", "--set", "agent.grad_clip=0"]) == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] == 100 and summary["diverged_at_step"] == 100
    assert not is_finished(run)


def test_a_run_in_use_is_refused_before_any_run_starts(tmp_path, capsys):
    """A second `softq reproduce` with the same --out found the first one's runs in use only at
    each run's turn: the error came after it had started the runs before it, which then trained
    with nothing to watch them. Now it is refused before anything starts, naming the run."""
    from tests.run_dir_lock import lock_held_elsewhere

    busy = tmp_path / "multigoal-ddpg-quick-s0"
    busy.mkdir()
    with lock_held_elsewhere(busy):
        assert main(["reproduce", "multigoal", "--quick", "--seeds", "0", "--jobs", "2",
                     "--out", str(tmp_path)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multigoal-ddpg-quick-s0"]
    assert "multigoal-ddpg-quick-s0 in use: another softq process" in capsys.readouterr().err
