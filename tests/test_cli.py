"""The softq CLI: clear one-line errors with exit code 2, resume continues exactly, eval."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from distributed.checkpoint import load_checkpoint, non_finite_tensors, save_checkpoint
from launch.cli import main
from launch.compare_cmd import read_scalars
from launch.config import config_to_dict, load_config, read_config

# A tiny inline multi-goal run: a few hundred steps, small nets, frequent checkpoints.
TINY = ["--inline", "--set", "agent.hidden_sizes=[16, 16]", "--set", "agent.kernel_particles=8",
        "--set", "agent.value_particles=8", "--set", "replay.min_size=50",
        "--set", "run.eval_every=200", "--set", "run.eval_episodes=2",
        "--set", "run.log_every=50", "--set", "run.checkpoint_every=100",
        "--set", "run.image_every=0"]


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("argv,needle", [
    (["train", "no-such-preset"], "no-such-preset"),
    (["train", "multigoal-quick", "--set", "agent.nope=1"], "agent.nope"),
    (["train", "multigoal-quick", "--set", "replay.batch_size=abc"], "replay.batch_size"),
    (["train", "multigoal-quick", "--set", "env.id=softq/Nope-v0"], "softq/Nope-v0"),
    (["train", "multigoal-quick", "--set", "algo=quantum"], "quantum"),
    (["eval", "/nonexistent/run"], "no run directory /nonexistent/run (it does not exist)"),
    (["train", "--resume", "/nonexistent/run"], "no run directory /nonexistent/run"),
    (["compare", "/nonexistent/run"], "no run directory /nonexistent/run"),
    (["bench", "nope"], "nope"),
    (["bench"], "bench needs a NAME: atari, ddpg, irl, runtime, sql-update"),
    (["train", "multigoal-quick", "--seed", "-1"], "run.seed"),
    (["train", "multigoal-quick", "--set", "run.total_env_steps=1e4"],
     "expected an integer, got '1e4' (write 10000)"),
    (["train", "multigoal-quick", "--set", "run.total_env_steps=2.5e+4"],
     "expected an integer, got 25000.0 (write 25000)"),
    (["train", "multigoal-quick", "--workers", "0"], "runtime.workers"),
    # worker i writes to shard i % shards: a shard without a worker stayed empty (half the
    # replay capacity unused with one worker and two shards)
    (["train", "multigoal-quick", "--workers", "1", "--set", "replay.shards=2"],
     "replay.shards=2 exceeds runtime.workers=1"),
    (["train", "multigoal-quick", "--set", "env.max_episode_steps=0"], "env.max_episode_steps"),
    # the env is built and stepped once before the run directory is made
    (["train", "multigoal-quick", "--set", "env.kwargs.foo=1"], "unexpected keyword argument"),
    (["train", "multigoal-quick", "--set", "env.kwargs.goal_reward=x"], "'goal_reward': 'x'"),
    # (a zero width made every reward nan: the run trained on nan and exited 0)
    (["train", "multigoal-quick", "--set", "env.kwargs.goal_sigma=0"], "goal_sigma must be"),
    (["train", "multigoal-quick", "--set", "env.kwargs.goal_sigma=.nan"], "goal_sigma must be"),
    (["train", "atari-dqn", "--set", "env.id=ALE/Nope-v5"], "ALE/Nope-v5"),
    # a cluster that does not answer is named at once (Ray itself retries for minutes)
    (["train", "multigoal-quick", "--address", "127.0.0.1:1"], "no Ray head answers at"),
    # --inline ran in-process and ignored the address without a word
    (["train", "cartpole-a2c", "--inline", "--address", "auto"], "give one of them"),
    # the learner is built once (on the CPU) before the run directory is made
    (["train", "cartpole-soft-dqn", "--set", "env.id=Pendulum-v1"], "Discrete action space"),
    (["train", "multigoal-quick", "--set", "env.id=CartPole-v1"], "1-D Box action"),
    (["train", "cartpole-a2c", "--set", "env.id=MountainCarContinuous-v0"], "Discrete action"),
    # ranges every algorithm's config checks (the discrete ones trained a zero-width net and
    # failed at their first evaluation with gamma 5)
    (["train", "cartpole-soft-dqn", "--set", "agent.gamma=5"], "gamma must be in [0, 1]"),
    (["train", "cartpole-a2c", "--set", "agent.gamma=-1"], "gamma must be in [0, 1]"),
    (["train", "cartpole-soft-dqn", "--set", "agent.hidden_sizes=[0]"], "hidden_sizes"),
    (["train", "cartpole-a2c", "--set", "agent.hidden_sizes=[]"], "hidden_sizes"),
    (["train", "cartpole-a2c", "--set", "agent.hidden_sizes=64,64"],
     "'agent.hidden_sizes': expected a list (in YAML: [a, b, ...]), got '64,64'"),
    (["train", "cartpole-soft-dqn", "--set", "agent.adam_eps=-1"], "adam_eps"),
    # (a negative decay was taken as none at all: eps_end from the first step)
    (["train", "cartpole-soft-dqn", "--set", "agent.eps_decay_steps=-5"], "eps_decay_steps"),
    (["train", "multigoal-quick", "--set", "agent.q_lr=-1"], "q_lr"),
    # a whole section set to nothing is refused, not silently replaced by the defaults
    (["train", "cartpole-soft-dqn", "--set", "run="], "override 'run': a section needs"),
])
def test_bad_input_is_one_line_naming_it_with_exit_2(argv, needle, capsys, tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = _error_line(capsys)
    assert line.startswith("softq: error:") and needle in line
    assert not (tmp_path / "runs").exists()  # nothing was created


@pytest.mark.parametrize("argv,needle", [
    (["bench", "ddpg", "--steps", "0"], "argument --steps: must be >= 1, got 0"),
    (["bench", "atari", "--workers", "1", "0"], "argument --workers: must be >= 1, got 0"),
    (["bench", "irl", "--rows", "1"], "argument --rows: must be >= 2, got 1"),
    (["bench", "runtime", "--envs-per-worker", "0"], "argument --envs-per-worker: must be >= 1"),
    (["bench", "sql-update", "--batch", "x"], "argument --batch: expected an integer, got 'x'"),
])
def test_benchmark_flags_refuse_bad_numbers_before_running(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def test_corrupt_checkpoint_is_named_and_nothing_is_damaged(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "multigoal-quick", "--out", str(run), *TINY,
                 "--set", "run.total_env_steps=100"]) == 0
    capsys.readouterr()
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main(["train", "--resume", str(run)]) == 2
    assert "checkpoint" in _error_line(capsys)
    assert main(["eval", str(run)]) == 2
    assert str(run) in _error_line(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # a second train into an existing run directory is refused, not overwritten
    assert main(["train", "multigoal-quick", "--out", str(run), *TINY]) == 2
    assert "--resume" in _error_line(capsys)


def test_a_run_whose_last_chunk_overshot_its_budget_resumes_with_that_budget(tmp_path, capsys):
    """3 envs step 102 times where the budget says 100 (every Ray run can overshoot so): a plain
    resume, which a run stopped during its final evaluation needs to make it, was refused as
    "run.total_env_steps 100 is below the 102 env steps the run has taken". Lowering the budget
    below the steps taken is still refused."""
    run = tmp_path / "run"
    assert main(["train", "cartpole-soft-dqn", "--out", str(run), "--envs-per-worker", "3",
                 "--set", "replay.min_size=50", "--set", "run.eval_every=0",
                 "--set", "run.total_env_steps=100"]) == 0
    assert load_checkpoint(run)["counters"]["env_steps"] == 102
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "nothing left to train" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=90"]) == 2
    assert "run.total_env_steps 90 is below the 102 env steps" in _error_line(capsys)


def test_resume_restores_parameters_optimizer_and_counters(tmp_path, capsys):
    """Resume with no steps left rewrites an identical checkpoint (networks, targets, optimizer
    moments, counters); resuming further continues the counters and the update schedule."""
    run = tmp_path / "run"
    common = ["train", "multigoal-quick", *TINY, "--set", "replay.save_contents=true"]
    assert main([*common, "--out", str(run), "--set", "run.total_env_steps=200"]) == 0
    mid = load_checkpoint(run)
    assert mid["counters"]["env_steps"] == 200
    summary = (run / "summary.json").read_text()
    assert "eval/return_mean" in json.loads(summary)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0  # nothing left to do, and it says so
    assert "nothing left to train" in capsys.readouterr().err
    assert (run / "summary.json").read_text() == summary  # its evaluation is kept
    again = load_checkpoint(run)
    assert again["counters"] == mid["counters"]
    _assert_same_tensors(again["runner"], mid["runner"])
    _assert_same_tensors(again["replay"], mid["replay"])
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=300"]) == 0
    end = load_checkpoint(run)
    assert end["counters"]["env_steps"] == 300
    # one update per env step once the buffer holds min_size: exactly 100 more updates
    assert end["runner"]["updates"] == mid["runner"]["updates"] + 100
    # the curves keep what was logged up to each checkpoint, the checkpoint's own step included
    # (it was logged just before the checkpoint was written), once
    assert read_scalars(run, "eval/return_mean")[0].tolist() == [200, 300]
    assert read_scalars(run, "rollout/env_steps_per_s")[0].tolist() == [50, 100, 150, 200,
                                                                         250, 300]
    # what a crashed run logged after its last checkpoint (300) is dropped on resume
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run / "tb")) as stray:
        for step in (301, 350):
            stray.add_scalar("eval/return_mean", -99.0, step)
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=400"]) == 0
    steps, values = read_scalars(run, "eval/return_mean")
    assert steps.tolist() == [200, 300, 400] and -99.0 not in values


def test_an_evaluation_due_when_the_run_was_interrupted_is_made_on_resume(tmp_path, monkeypatch):
    """A Ctrl-C between the step that makes an evaluation due and the housekeeping that makes
    it: the final checkpoint is written at that step without it, and the resumed run used to
    go on from the next boundary (at the budget's end: finished with no final evaluation)."""
    import distributed.inline as inline

    real = inline._housekeeping

    def interrupted_at(step):
        def housekeeping(cfg, driver, runner, server):
            if driver.counters.env_steps == step and driver.due_eval():
                raise KeyboardInterrupt
            real(cfg, driver, runner, server)
        return housekeeping

    run = tmp_path / "run"
    monkeypatch.setattr(inline, "_housekeeping", interrupted_at(200))  # the budget's end
    # not finished (exit 0) while its final evaluation is owed: `softq reproduce` would skip it
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "run.total_env_steps=200"]) == 130
    assert json.loads((run / "summary.json").read_text())["interrupted"] is True
    assert load_checkpoint(run)["counters"]["last_eval_step"] == -1  # none made
    monkeypatch.setattr(inline, "_housekeeping", real)
    assert main(["train", "--resume", str(run)]) == 0
    assert read_scalars(run, "eval/return_mean")[0].tolist() == [200]
    assert "eval/return_mean" in json.loads((run / "summary.json").read_text())
    assert load_checkpoint(run)["counters"]["last_eval_step"] == 200
    monkeypatch.setattr(inline, "_housekeeping", interrupted_at(400))  # mid-run: exit 130
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=600"]) == 130
    assert json.loads((run / "summary.json").read_text())["interrupted"] is True
    monkeypatch.setattr(inline, "_housekeeping", real)
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=600"]) == 0
    assert read_scalars(run, "eval/return_mean")[0].tolist() == [200, 400, 600]


def test_a_run_interrupted_before_its_first_evaluation_owes_none(tmp_path, monkeypatch):
    """Checkpointed at step 100, before the first eval_every boundary (200): no evaluation was
    due, yet the resumed run read step 0's boundary as one owed and evaluated at step 100, a
    point off the schedule that the uninterrupted run does not have."""
    import distributed.inline as inline

    real = inline._housekeeping

    def interrupted_at_100(cfg, driver, runner, server):
        real(cfg, driver, runner, server)
        if driver.counters.env_steps == 100:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    monkeypatch.setattr(inline, "_housekeeping", interrupted_at_100)
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "run.total_env_steps=300"]) == 130
    assert load_checkpoint(run)["counters"]["last_eval_step"] == -1
    monkeypatch.setattr(inline, "_housekeeping", real)
    assert main(["train", "--resume", str(run)]) == 0
    assert read_scalars(run, "eval/return_mean")[0].tolist() == [200, 300]


def test_an_evaluation_cut_short_by_a_signal_is_owed_not_counted_as_made(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM while an evaluation's episodes run: the checkpoint used to record the
    evaluation as made, so the resumed run skipped it; at the budget's end the run exited 0
    as finished, and `softq reproduce` never resumed it (no final evaluation, ever)."""
    import distributed.driver as driver
    import distributed.evaluation as evaluation
    from launch.reproduce_cmd import is_finished

    real = evaluation.evaluate_policy
    cut_at = {200, 400}  # mid-run, then the budget's end

    def signal_during_episodes(*args, seed, **kwargs):
        if driver_steps[-1] in cut_at:
            cut_at.discard(driver_steps[-1])
            raise KeyboardInterrupt
        return real(*args, seed=seed, **kwargs)

    driver_steps = [0]
    real_evaluate = driver.Driver.evaluate

    def evaluate(self, *args, **kwargs):
        driver_steps.append(self.counters.env_steps)
        return real_evaluate(self, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_policy", signal_during_episodes)
    monkeypatch.setattr(driver.Driver, "evaluate", evaluate)
    run = tmp_path / "run"
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "run.total_env_steps=400"]) == 130
    assert load_checkpoint(run)["counters"]["env_steps"] == 200
    assert load_checkpoint(run)["counters"]["last_eval_step"] == -1  # not 200: none was made
    assert main(["train", "--resume", str(run)]) == 130  # the evaluation at 200 first
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] == 400 and summary["interrupted"] is True
    assert load_checkpoint(run)["counters"]["last_eval_step"] == 200
    assert not is_finished(run)
    assert main(["train", "--resume", str(run)]) == 0
    assert is_finished(run) and "interrupted" not in json.loads((run / "summary.json").read_text())
    assert read_scalars(run, "eval/return_mean")[0].tolist() == [200, 400]
    assert driver_steps[1:] == [200, 200, 400, 400]  # each cut short once, then made


def test_resume_refuses_settings_its_checkpoint_was_not_trained_with(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "run.total_env_steps=60"]) == 0
    capsys.readouterr()
    config_before = (run / "config.yaml").read_bytes()
    checkpoint_before = (run / "checkpoint.pt").read_bytes()
    for extra, needle in (
            (["--set", "agent.alpha=3"], "agent.alpha is 10.0 there, 3.0 here"),
            # config.yaml would record a budget the run has already spent
            (["--set", "run.total_env_steps=40"], "below the 60 env steps the run has taken"),
            (["--set", "replay.batch_size=32"], "replay.batch_size is 64 there, 32 here"),
            (["--seed", "4"], "run.seed is 0 there, 4 here"),
            (["--set", "env.max_episode_steps=30"], "env.max_episode_steps is None there, 30"),
            (["--init-from", str(run)], "drop the --init-from"),
            (["--out", str(tmp_path / "elsewhere")], "drop the --out")):
        assert main(["train", "--resume", str(run), *extra]) == 2
        assert needle in _error_line(capsys)
    assert main(["train", "multigoal-quick", "--resume", str(run)]) == 2
    assert "drop the PRESET" in _error_line(capsys)
    # a checkpoint whose replay was saved by two shards (a Ray run's) does not resume inline;
    # refused before config.yaml is rewritten with the new runtime settings
    state = load_checkpoint(run)
    state["replay"] = state["replay"] * 2
    save_checkpoint(run, {k: v for k, v in state.items() if k != "format"})
    assert main(["train", "--resume", str(run), "--set", "runtime.num_threads=2"]) == 2
    assert "2 replay shard state(s)" in _error_line(capsys)
    (run / "checkpoint.pt").write_bytes(checkpoint_before)
    assert (run / "config.yaml").read_bytes() == config_before  # alpha 3 was once written here
    assert (run / "checkpoint.pt").read_bytes() == checkpoint_before
    assert not (tmp_path / "elsewhere").exists()
    # the budget, the bookkeeping and the runtime may change
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=80",
                 "--set", "run.log_every=20", "--set", "runtime.num_threads=2"]) == 0
    assert load_checkpoint(run)["counters"]["env_steps"] == 80


def test_a_resume_may_regroup_an_on_policy_runs_envs_but_not_change_their_number(tmp_path,
                                                                                capsys):
    """A2C's update learns from every env's rollout: 2 workers x 2 envs is a batch of 4 envs.
    A resume that made it 8 (or, inline, 2: one worker, before inline ran them all) changed the
    algorithm mid-run; regrouping the 4 envs (1 worker x 4) keeps it."""
    run = tmp_path / "run"
    assert main(["train", "cartpole-a2c", "--inline", "--out", str(run), "--set",
                 "runtime.workers=2", "--set", "runtime.envs_per_worker=2", "--set",
                 "run.eval_every=0", "--set", "run.total_env_steps=200"]) == 0
    assert load_checkpoint(run)["runner"]["updates"] == 200 // (4 * 5)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--envs-per-worker", "4"]) == 2
    assert ("would change the a2c batch from 4 envs (2 workers x 2) to 8 (2 x 4)"
            in _error_line(capsys))
    assert main(["train", "--resume", str(run), "--inline", "--set", "runtime.workers=1",
                 "--envs-per-worker", "4", "--set", "run.total_env_steps=400"]) == 0
    assert load_checkpoint(run)["runner"]["updates"] == 400 // (4 * 5)


def test_a_resume_may_start_saving_the_replay_contents(tmp_path):
    """A run whose checkpoints hold no replay restarts it empty at each resume (no update until
    it holds replay.min_size again): what a checkpoint holds is bookkeeping, so a resume may
    turn replay.save_contents on for the next interruption, and off again."""
    run = tmp_path / "run"
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "replay.save_contents=false", "--set", "run.total_env_steps=100"]) == 0
    assert "buffer" not in load_checkpoint(run)["replay"][0]
    assert main(["train", "--resume", str(run), "--set", "replay.save_contents=true",
                 "--set", "run.total_env_steps=200"]) == 0
    assert read_config(run / "config.yaml").replay.save_contents is True
    saved = load_checkpoint(run)["replay"][0]
    # refilled from empty: the 100 steps since the resume, 50 of them past min_size (50)
    assert saved["buffer"]["size"] == 100 and saved["limiter"] == {"inserts": 100,
                                                                   "samples": 50 * 64}
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=300"]) == 0
    assert load_checkpoint(run)["replay"][0]["limiter"] == {"inserts": 200, "samples": 150 * 64}
    assert main(["train", "--resume", str(run), "--set", "replay.save_contents=false",
                 "--set", "run.total_env_steps=400"]) == 0
    assert "buffer" not in load_checkpoint(run)["replay"][0]


def _assert_same_tensors(x, y):
    if isinstance(x, torch.Tensor):
        assert torch.equal(x, y)
    elif isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            _assert_same_tensors(x[k], y[k])
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            _assert_same_tensors(u, v)
    else:
        assert x == y


def test_eval_writes_json_with_goal_shares(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "multigoal-quick", "--out", str(run), *TINY,
                 "--set", "run.total_env_steps=100", "--set", "run.image_every=100"]) == 0
    trained = {p.name: p.read_bytes() for p in (run / "plots").iterdir()}
    assert set(trained) == {"trajectories.png", "q_values.png"}
    import launch.eval_cmd

    real, policy_seeds = launch.eval_cmd.evaluation_policy, []

    def evaluation_policy(*args, seed):
        policy_seeds.append(seed)
        return real(*args, seed=seed)

    monkeypatch.setattr(launch.eval_cmd, "evaluation_policy", evaluation_policy)
    assert main(["eval", str(run), "--episodes", "4", "--seed", "7"]) == 0
    # the policy's noise is no replay of env 0's reset draws (seeded 7: one PCG64 stream)
    assert len(policy_seeds) == 1 and policy_seeds[0] != 7
    report = json.loads((run / "eval.json").read_text())
    assert report["episodes"] == 4 and len(report["returns"]) == 4
    assert report["lengths"] == [20] * 4  # multi-goal episodes run to T = 20
    assert report["terminated_share"] == 0.0
    assert len(report["critic_q0"]) == 4  # the critic check (its math: test_sql_learner.py)
    out = capsys.readouterr().out
    assert report["critic_entropy_bound"] > 0 and "critic at the reset states" in out
    # all 4 were cut by the time limit at T = 20: the critic also counts gamma^20 of V there
    gamma = read_config(run / "config.yaml").agent.gamma
    assert report["critic_time_limit_share"] == 1.0
    assert report["critic_time_limit_weight"] == pytest.approx(gamma ** 20)
    assert f"gamma^T = {gamma ** 20:.2f} of the value there" in out
    shares = report["goal_shares"]
    assert set(shares) == {"0", "1", "2", "3", "none"}
    assert abs(sum(shares.values()) - 1.0) < 1e-9
    # eval's pictures beside the training's, which stay as they were
    assert (run / "plots" / "eval_trajectories.png").is_file()
    assert (run / "plots" / "eval_q_values.png").is_file()
    assert all((run / "plots" / name).read_bytes() == data for name, data in trained.items())
    assert (run / "config.yaml").is_file() and any((run / "tb").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_cuda_device_this_machine_lacks_is_refused_before_any_write(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "runtime.device=cuda"]) == 2
    assert "runtime.device 'cuda': this machine has 0 CUDA device(s)" in _error_line(capsys)
    assert not run.exists()
    # a run trained on a GPU (its config says cuda) resumes here only on the CPU, as told
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "run.total_env_steps=60", "--set", "runtime.device=cpu"]) == 0
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("device: cpu", "device: cuda"))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=80"]) == 2
    assert "resuming on this machine's CPU works" in _error_line(capsys)
    assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=80",
                 "--set", "runtime.device=cpu"]) == 0


def test_init_from_a_run_of_another_algorithm_or_shape_is_refused(tmp_path, capsys):
    run = tmp_path / "sql"
    assert main(["train", "multigoal-quick", "--out", str(run), *TINY,
                 "--set", "run.total_env_steps=60"]) == 0
    capsys.readouterr()
    assert main(["train", "multigoal-ddpg-quick", "--inline", "--init-from", str(run),
                 "--out", str(tmp_path / "ddpg")]) == 2
    line = _error_line(capsys)
    assert "'sql'" in line and "'ddpg'" in line
    assert not (tmp_path / "ddpg").exists()
    # the same algorithm with other network shapes (TINY's 16 x 16 against the preset's 64 x 64)
    assert main(["train", "multigoal-quick", "--inline", "--init-from", str(run),
                 "--out", str(tmp_path / "wide")]) == 2
    line = _error_line(capsys)
    assert "does not fit this config's sql learner: q." in line
    assert "[16, 2] there, [64, 2] here" in line  # a first layer, named with both shapes
    assert "hidden_sizes [16, 16] -> [64, 64]" in line  # and the setting behind it
    assert not (tmp_path / "wide").exists()
    # other observation dimensions (the swimmer's 10 against multi-goal's 2), the same sizes
    assert main(["train", "swimmer-finish-line-sql-quick", "--inline", "--init-from", str(run),
                 *TINY, "--out", str(tmp_path / "swim")]) == 2
    line = _error_line(capsys)
    assert ("env.id 'softq/MultiGoal-v0' (obs [2], action [2]) -> "
            "'softq/SwimmerFinishLine-v0' (obs [10], action [2])") in line
    assert not (tmp_path / "swim").exists()
    # a pretraining env that no longer builds here: still the shape refusal, not an env error
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("softq/MultiGoal-v0", "softq/Gone-v0"))
    assert main(["train", "swimmer-finish-line-sql-quick", "--inline", "--init-from", str(run),
                 *TINY, "--out", str(tmp_path / "swim")]) == 2
    line = _error_line(capsys)
    assert "does not fit" in line and "'softq/Gone-v0' (its env cannot be built here)" in line


def test_presets_are_listed_in_aligned_columns(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 50
    columns = {line.index("algo=") for line in lines}
    assert len(columns) == 1  # the longest preset name does not push its row out of line
    assert len({line.index("steps=") for line in lines}) == 1


def test_presets_list_the_resolved_budget_and_runtime_of_each_preset(capsys):
    """`softq presets` says which presets start Ray and how long they run, as each resolves."""
    from launch.config import preset_names

    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(preset_names())
    for line in lines:
        cfg = load_config(line.split()[0])
        steps = int(line.split("steps=")[1].split()[0].replace(",", ""))
        where = line.split("steps=")[1].split(maxsplit=1)[1]
        assert steps == cfg.run.total_env_steps, line
        assert where == ("inline" if cfg.runtime.inline
                         else f"ray, {cfg.runtime.workers} workers"), line


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly():
    """`softq presets | head -0`: exit 141 (SIGPIPE's code), no traceback on stderr."""
    # -u: every print is a write, so the first one meets the closed pipe inside the command
    proc = subprocess.Popen([sys.executable, "-u", "-m", "launch.cli", "presets"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the child (still importing) writes a line
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


@pytest.mark.parametrize("flag,value", [("--episodes", "0"), ("--seed", "-2")])
def test_eval_refuses_out_of_range_numbers_before_reading_the_run(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's own exit: one line, code 2
        main(["eval", "/nonexistent/run", flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: must be >= " in capsys.readouterr().err


@pytest.mark.parametrize("content,needle", [
    (b"garbage\n", "holds str, not a config mapping"),
    (b"", "holds NoneType, not a config mapping"),
    (b"algo: [\n", "is not readable YAML"),
    (b"\xff\xfe\x00", "is not readable YAML"),
])
def test_corrupt_config_yaml_is_named(content, needle, tmp_path, capsys):
    (tmp_path / "config.yaml").write_bytes(content)
    for argv in (["eval", str(tmp_path)], ["train", "--resume", str(tmp_path)]):
        assert main(argv) == 2
        line = _error_line(capsys)
        assert "config.yaml" in line and needle in line
    assert (tmp_path / "config.yaml").read_bytes() == content  # left as it was


def test_a_config_yaml_that_fails_the_config_checks_is_named(tmp_path, capsys, monkeypatch):
    # e.g. written by another softq version: the error was "unknown config key 'run.foo'", as
    # if the reader's own --set or preset had it (--init-from, compare of many runs)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    data = config_to_dict(load_config("cartpole-soft-dqn"))
    data["run"]["foo"] = 1
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    save_checkpoint(run, {"counters": {"env_steps": 0}, "runner": {}})
    for argv in (["eval", str(run)], ["train", "--resume", str(run)],
                 ["train", "cartpole-soft-dqn", "--init-from", str(run)],
                 ["compare", str(run), "--out", str(tmp_path / "cmp.png")]):
        assert main(argv) == 2
        line = _error_line(capsys)
        assert f"{run / 'config.yaml'}: unknown config key 'run.foo'" in line, (argv, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_checkpoint_without_counters_or_with_unknown_ones_is_named_and_left_alone(tmp_path,
                                                                                   capsys):
    run = tmp_path / "run"
    assert main(["train", "cartpole-soft-dqn", "--out", str(run), "--set", "replay.min_size=50",
                 "--set", "run.total_env_steps=100", "--set", "run.eval_every=0"]) == 0
    good = load_checkpoint(run)
    bad = {"no counters": {k: v for k, v in good.items() if k not in ("format", "counters")},
           # another softq version's: Counters(**...) raised a TypeError after config.yaml was
           # rewritten
           "an unknown counter": {**{k: v for k, v in good.items() if k != "format"},
                                  "counters": {**good["counters"], "new_count": 3}}}
    for name, state in bad.items():
        save_checkpoint(run, state)
        capsys.readouterr()
        before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
        argvs = [["train", "--resume", str(run), "--set", "run.total_env_steps=200"]]
        if name == "no counters":
            argvs.append(["eval", str(run), "--episodes", "1"])
        for argv in argvs:
            assert main(argv) == 2, (name, argv)
            line = _error_line(capsys)
            assert str(run) in line and ("counters" in line or "new_count" in line), line
            if name == "an unknown counter":
                assert "new_count" in line
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_run_killed_before_its_first_checkpoint_is_not_sent_to_resume(tmp_path, capsys):
    # what SIGKILL (out of memory, a preempted node) leaves before the first checkpoint: the
    # --out refusal said "use --resume", and --resume said only "no checkpoint at ..."
    run = tmp_path / "run"
    argv = ["train", "cartpole-soft-dqn", "--out", str(run), "--set", "replay.min_size=50",
            "--set", "run.total_env_steps=100", "--set", "run.eval_every=0"]
    assert main(argv) == 0
    (run / "checkpoint.pt").unlink()
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for again in (argv, ["train", "--resume", str(run)]):
        assert main(again) == 2
        line = _error_line(capsys)
        assert "stopped before its first checkpoint: there is nothing to resume" in line, line
        assert "use --resume" not in line
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_an_empty_run_directory_argument_of_eval_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:  # Path("") is ".": the working directory
        main(["eval", ""])
    assert exit_info.value.code == 2
    assert "argument run_dir: is empty (an unset shell variable?)" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--init-from", "--out", "--resume"])
def test_an_empty_run_directory_flag_is_refused(flag, tmp_path, capsys, monkeypatch):
    # `--init-from "$PRETRAINED"` with the variable unset trained from scratch without a word;
    # an empty --out was a traceback, an empty --resume started a new run
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:  # argparse: one line, exit code 2
        main(["train", "cartpole-soft-dqn", flag, "", "--set", "replay.min_size=50",
              "--set", "run.total_env_steps=100", "--set", "run.eval_every=0"])
    assert exit_info.value.code == 2
    assert f"argument {flag}: is empty (an unset shell variable?)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_run_directory_argument_that_is_a_file_is_named(tmp_path, capsys):
    # `softq eval RUN/checkpoint.pt` said "no config.yaml in RUN/checkpoint.pt"
    run = tmp_path / "run"
    assert main(["train", "cartpole-soft-dqn", "--out", str(run), "--set", "replay.min_size=50",
                 "--set", "run.total_env_steps=100", "--set", "run.eval_every=0"]) == 0
    capsys.readouterr()
    file = run / "checkpoint.pt"
    for argv in (["eval", str(file)], ["train", "--resume", str(file)],
                 ["train", "cartpole-soft-dqn", "--init-from", str(file),
                  "--out", str(tmp_path / "ft")]):
        assert main(argv) == 2
        assert f"{file} is a file, not a run directory" in _error_line(capsys)
    assert not (tmp_path / "ft").exists()


def test_check_reachable_tells_a_listening_head_from_a_closed_port():
    import socket

    from distributed.ray_address import check_reachable

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check_reachable(f"127.0.0.1:{port}")
        check_reachable(f"ray://127.0.0.1:{port}")
    with pytest.raises(ConnectionError, match=f"no Ray head answers at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    check_reachable("auto")  # left to Ray


def test_out_that_is_a_file_is_named_and_left_alone(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["train", "multigoal-quick", "--out", str(target)]) == 2
    assert f"--out {target} is a file, not a directory" in _error_line(capsys)
    assert target.read_text() == "mine"


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    from launch.run_dir import claim_run_dir, new_run_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("launch.run_dir.time.strftime", lambda fmt: "20261127-120000")
    first, second = new_run_dir("p", None), new_run_dir("p", None)  # chosen before either exists
    assert first == second
    assert claim_run_dir(first) == first and first.is_dir()
    claimed = claim_run_dir(second)  # the second run finds the name taken
    assert claimed.name == "p-20261127-120000-2" and claimed.is_dir()
    assert claim_run_dir(second).name == "p-20261127-120000-3"


def test_out_expands_home_and_variables(tmp_path, monkeypatch):
    """`ray job submit ... -- softq train ... --out '$HOME/runs/x'` reaches softq quoted: the
    head's shell never expands it, so softq does."""
    from launch.run_dir import new_run_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOFTQ_RUNS", str(tmp_path / "runs"))
    assert new_run_dir("p", "$HOME/runs/x") == tmp_path / "home" / "runs" / "x"
    assert new_run_dir("p", "~/y") == tmp_path / "home" / "y"
    assert new_run_dir("p", "${SOFTQ_RUNS}/z") == tmp_path / "runs" / "z"


def test_a_config_yaml_that_does_not_fit_its_checkpoint_is_named_and_left_alone(tmp_path,
                                                                                capsys):
    """A hand-edited or copied config.yaml is refused by resume and eval with one line, before
    resume rewrites config.yaml: the checkpoint records the config it was trained with and the
    line names what changed (an edited learning rate resumed silently, the optimizer keeping the
    old one); for a checkpoint without that record (older ones) the tensors that do not fit are
    named (it was a raw size-mismatch traceback)."""
    good = tmp_path / "good"
    assert main(["train", "cartpole-soft-dqn", "--out", str(good), "--set", "run.eval_every=0",
                 "--set", "run.total_env_steps=120", "--set", "replay.min_size=50"]) == 0
    capsys.readouterr()
    text = (good / "config.yaml").read_text()
    recorded = load_checkpoint(good)
    assert recorded["config"]["agent"]["hidden_sizes"] == [128, 128]
    without_record = {k: v for k, v in recorded.items() if k not in ("format", "config")}
    for old, new, named in (("- 128\n  - 128", "- 32\n  - 32", "agent.hidden_sizes is [128, 128] "
                                                             "there, [32, 32] here"),
                            ("id: CartPole-v1", "id: Acrobot-v1", "env.id is 'CartPole-v1' there"),
                            ("  lr: 0.0023", "  lr: 0.1", "agent.lr is 0.0023 there, 0.1 here")):
        assert old in text, old
        (good / "config.yaml").write_text(text.replace(old, new))
        edited = (good / "config.yaml").read_bytes()
        assert main(["train", "--resume", str(good), "--set", "run.total_env_steps=200"]) == 2
        line = _error_line(capsys)
        assert "is not what its checkpoint was trained with" in line and named in line, line
        assert (good / "config.yaml").read_bytes() == edited  # not rewritten with the budget
        assert main(["eval", str(good), "--episodes", "1"]) == 2
        assert named in _error_line(capsys)
        if "lr" in old:
            continue  # same shapes: only the record tells
        save_checkpoint(good, without_record)
        assert main(["train", "--resume", str(good), "--set", "run.total_env_steps=200"]) == 2
        line = _error_line(capsys)
        assert "does not fit its config.yaml" in line and "size mismatch" in line, line
        save_checkpoint(good, {k: v for k, v in recorded.items() if k != "format"})
    (good / "config.yaml").write_text(text)
    assert main(["eval", str(good), "--episodes", "1"]) == 0


def test_a_plugin_algorithm_in_a_run_directory_is_imported_only_when_allowed(tmp_path, capsys,
                                                                           monkeypatch):
    """algo: "module:ATTR" imports (runs) that module. From a preset or --set the user named it;
    from a run directory (shared, downloaded) only when $SOFTQ_PLUGIN_MODULES lists it."""
    from launch.config import ConfigError, read_config

    marker = tmp_path / "imported"
    (tmp_path / "strangers_module.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nSPEC = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("algo: strangers_module:SPEC\n")
    monkeypatch.delenv("SOFTQ_PLUGIN_MODULES", raising=False)
    for argv in (["eval", str(run)], ["compare", str(run)], ["train", "--resume", str(run)]):
        assert main(argv) == 2
        line = _error_line(capsys)
        assert "SOFTQ_PLUGIN_MODULES=strangers_module" in line, line
    assert not marker.exists()
    monkeypatch.setenv("SOFTQ_PLUGIN_MODULES", "other, strangers_module")
    with pytest.raises(ConfigError, match="not an AlgorithmSpec"):
        read_config(run / "config.yaml")
    assert marker.exists()  # allowed by name: imported


def test_a_diverged_learner_stops_the_run_and_keeps_the_last_finite_checkpoint(tmp_path, capsys):
    """A learning rate of 1e12 turns the Q network's weights into nan within a few updates
    (they start at replay.min_size = 64). The run warns once on stderr, TensorBoard shows loss/q
    as nan (non-finite values used to be dropped, leaving no sign of the divergence), and the
    run stops at the first look at its weights (step 100, the warning's log) with exit code 1:
    the checkpoint written before any update is not replaced by nan weights."""
    run = tmp_path / "run"
    assert main(["train", "cartpole-soft-dqn", "--out", str(run), "--set", "run.eval_every=0",
                 "--set", "run.total_env_steps=400", "--set", "replay.min_size=64",
                 "--set", "run.log_every=100", "--set", "run.checkpoint_every=50",
                 "--set", "agent.lr=1e12", "--set", "agent.grad_clip=0"]) == 1
    err = capsys.readouterr().err
    assert err.count("softq: warning:") == 1 and "loss/q" in err and "diverged" in err
    assert err.count("softq: error:") == 1
    steps, values = read_scalars(run, "loss/q")
    assert steps[-1] == 100 and not np.isfinite(values[-1])
    kept = load_checkpoint(run)
    before_updates = kept["counters"]["env_steps"]  # the first step >= 50 a chunk ends on
    assert 50 <= before_updates < 64 and kept["runner"]["updates"] == 0
    assert "not finite at step 100 (learner.q." in err
    assert f"checkpoint.pt keeps step {before_updates}" in err
    assert non_finite_tensors(kept["runner"]) == []
    assert json.loads((run / "summary.json").read_text())["diverged_at_step"] == 100


def test_non_finite_tensors_names_every_nan_or_inf_float_tensor_by_path():
    state = {"a": torch.tensor([1.0, float("nan")]), "b": [torch.ones(2), torch.tensor(-np.inf)],
             "c": {"d": torch.tensor([3], dtype=torch.int64), "e": torch.tensor(2.0)},
             "rng": torch.zeros(4, dtype=torch.uint8), "lr": float("nan")}
    assert non_finite_tensors(state) == ["a", "b.1"]


def test_out_with_an_unset_variable_or_under_a_file_is_refused(tmp_path, monkeypatch):
    """An unset $VAR stayed in the path (a directory literally named "$SOFTQ_NOPE" was made);
    a --out below a file gave a raw NotADirectoryError after the checks."""
    from launch.config import ConfigError
    from launch.run_dir import new_run_dir

    monkeypatch.delenv("SOFTQ_NOPE", raising=False)
    for out in ("$SOFTQ_NOPE/x", "${SOFTQ_NOPE}/x"):
        with pytest.raises(ConfigError, match=r"variable \$\{?SOFTQ_NOPE\}? is not set"):
            new_run_dir("p", out)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="file is a file, not a directory"):
        new_run_dir("p", str(tmp_path / "file" / "sub"))
    assert not list(tmp_path.glob("*NOPE*"))


def test_a_run_directory_in_use_is_not_resumed_or_moved_aside_by_a_second_process(tmp_path,
                                                                                capsys):
    """A run holds its directory's lock while it trains (here a second process's lock stands
    in for it): a second --resume of the same run, or `softq reproduce` setting the "unfinished"
    directory aside (it has no checkpoint yet), is refused; once it is released both proceed."""
    from launch.config import ConfigError
    from launch.reproduce_cmd import _set_aside_incomplete
    from launch.run_dir import run_dir_in_use
    from tests.run_dir_lock import lock_held_elsewhere

    run = tmp_path / "run"
    assert main(["train", "multigoal-quick", *TINY, "--out", str(run),
                 "--set", "run.total_env_steps=60"]) == 0
    capsys.readouterr()
    assert not run_dir_in_use(run)  # released when the run ended
    with lock_held_elsewhere(run):
        assert run_dir_in_use(run)
        checkpoint = (run / "checkpoint.pt").read_bytes()
        assert main(["train", "--resume", str(run), "--set", "run.total_env_steps=80"]) == 2
        assert "in use: another softq process is training there" in _error_line(capsys)
        assert (run / "checkpoint.pt").read_bytes() == checkpoint
        (run / "checkpoint.pt").rename(tmp_path / "kept.pt")  # as before its first checkpoint
        with pytest.raises(ConfigError, match="in use"):
            _set_aside_incomplete(run)
        assert run.is_dir()
    _set_aside_incomplete(run)  # released: set aside as before
    assert not run.exists() and len(list((tmp_path / ".incomplete").glob("run-*"))) == 1


def test_a_lock_link_in_a_run_directory_is_refused_not_followed(tmp_path):
    """A run directory from elsewhere may hold a planted .lock link: holding the lock must not
    create (or lock) the file it names."""
    from launch.config import ConfigError
    from launch.run_dir import LOCK_NAME, hold_run_dir, run_dir_in_use

    run, target = tmp_path / "run", tmp_path / "elsewhere" / "made-by-softq"
    run.mkdir()
    target.parent.mkdir()
    (run / LOCK_NAME).symlink_to(target)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        with hold_run_dir(run):
            pass
    assert not target.exists()
    target.write_text("")
    assert not run_dir_in_use(run)  # the link's target is not opened for writing either


def test_sigterm_ends_a_run_as_ctrl_c_does_with_a_final_checkpoint_and_summary(tmp_path):
    """`kill`, `ray job stop` or a scheduler's preemption send SIGTERM: the run writes a final
    checkpoint and its summary, as on Ctrl-C (an inline run used to die at once, losing every
    step since its last checkpoint; a Ray run wrote no summary and aborted)."""
    import os
    import signal

    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "launch.cli", "train", "multigoal-quick", "--inline", "--out",
         str(run), "--set", "algo=tests.counting_algo:SPEC", "--set", "agent={}",
         "--set", "replay.min_size=64", "--set", "run.eval_every=0",
         "--set", "run.checkpoint_every=1000", "--set", "run.total_env_steps=10000000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
            str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))})
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (run / "checkpoint.pt").exists():
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]  # not 0: "finished"
    assert "interrupted: writing a final checkpoint" in out
    assert f"continue with: softq train --resume {run}" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert load_checkpoint(run)["counters"]["env_steps"] == summary["env_steps"]


def test_a_budget_below_the_replay_warm_up_is_warned_of_before_the_run(tmp_path, capsys):
    """`softq train halfcheetah --set run.total_env_steps=3000` (min_size 10,000) ran its 3,000
    steps and evaluated the untrained policy, exit 0, without a word that it made no update."""
    run = tmp_path / "run"
    assert main(["train", "cartpole-soft-dqn", "--inline", "--out", str(run),
                 "--set", "run.total_env_steps=300", "--set", "replay.min_size=300",
                 "--set", "run.eval_every=0"]) == 0
    err = capsys.readouterr().err
    assert "replay.min_size 300 >= run.total_env_steps 300" in err and "no update" in err
    assert load_checkpoint(run)["runner"]["updates"] == 0
    assert main(["train", "cartpole-soft-dqn", "--inline", "--out", str(tmp_path / "ok"),
                 "--set", "run.total_env_steps=300", "--set", "replay.min_size=200",
                 "--set", "run.eval_every=0"]) == 0
    assert "min_size" not in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "ok")["runner"]["updates"] > 0
