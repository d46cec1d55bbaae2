"""Ctrl-C / SIGTERM never cut a training step in half (distributed/interrupts.py)."""

from __future__ import annotations

import os
import signal

import pytest

from distributed.checkpoint import load_checkpoint
from distributed.interrupts import signals_as_interrupt, uninterrupted
from launch.cli import main


def test_a_signal_inside_an_uninterrupted_block_is_raised_once_the_block_has_run():
    steps = []
    with signals_as_interrupt() as received:
        with pytest.raises(KeyboardInterrupt, match=f"signal {signal.SIGTERM}"):
            with uninterrupted():
                steps.append("critic")
                os.kill(os.getpid(), signal.SIGTERM)
                with uninterrupted():  # nested: held until the outermost block ends
                    steps.append("nested")
                steps.append("actor")  # the rest of the step still runs
        assert steps == ["critic", "nested", "actor"]
        with pytest.raises(KeyboardInterrupt):  # outside a block: at once
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("never")
        with uninterrupted():  # nothing left pending from the first signal
            steps.append("quiet")
    assert steps == ["critic", "nested", "actor", "quiet"]
    assert received == [signal.SIGTERM, signal.SIGINT]  # the exit code reads the last
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_signal_in_the_middle_of_a_ddpg_update_checkpoints_the_whole_update(tmp_path,
                                                                               monkeypatch):
    """SIGTERM after the critic's optimizer step: the final checkpoint used to hold the critic
    one step ahead of the actor (and the update uncounted); now the update finishes first."""
    from agents.ddpg.learner import DDPGLearner

    real_init = DDPGLearner.__init__
    critic_steps = []

    def signal_after_the_30th_critic_step(optimizer, args, kwargs):
        critic_steps.append(1)
        if len(critic_steps) == 30:
            os.kill(os.getpid(), signal.SIGTERM)

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.critic_opt.register_step_post_hook(signal_after_the_30th_critic_step)

    monkeypatch.setattr(DDPGLearner, "__init__", init)
    run = tmp_path / "run"
    assert main(["train", "multigoal-ddpg-quick", "--inline", "--out", str(run),
                 "--set", "agent.hidden_sizes=[16, 16]", "--set", "replay.min_size=50",
                 "--set", "run.eval_every=0", "--set", "run.image_every=0",
                 "--set", "run.checkpoint_every=10000",
                 "--set", "run.total_env_steps=2000"]) == 128 + signal.SIGTERM
    state = load_checkpoint(run)["runner"]
    learner = state["learner"]

    def adam_steps(opt_state):
        return {int(s["step"]) for s in opt_state["state"].values()}

    assert adam_steps(learner["critic_opt"]) == adam_steps(learner["actor_opt"]) == {30}
    assert learner["num_updates"] == state["updates"] == 30


def test_an_update_that_raises_half_done_is_not_checkpointed(tmp_path, monkeypatch, capsys):
    """An error between DDPG's critic step and its actor step (here the 1,000th critic step's
    hook, at about step 1,050): the final checkpoint used to hold that half update over the
    last good checkpoint; now the error is raised and checkpoint.pt keeps step 1,000."""
    from agents.ddpg.learner import DDPGLearner

    real_init = DDPGLearner.__init__
    critic_steps = []

    def fail_after_the_1000th_critic_step(optimizer, args, kwargs):
        critic_steps.append(1)
        if len(critic_steps) == 1000:
            raise RuntimeError("CUDA out of memory (injected)")

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.critic_opt.register_step_post_hook(fail_after_the_1000th_critic_step)

    monkeypatch.setattr(DDPGLearner, "__init__", init)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected"):
        main(["train", "multigoal-ddpg-quick", "--inline", "--out", str(run),
              "--set", "agent.hidden_sizes=[16, 16]", "--set", "replay.min_size=50",
              "--set", "run.eval_every=0", "--set", "run.image_every=0",
              "--set", "run.checkpoint_every=1000", "--set", "run.total_env_steps=2000"])
    state = load_checkpoint(run)
    learner = state["runner"]["learner"]
    assert state["counters"]["env_steps"] == 1000
    assert learner["num_updates"] == state["runner"]["updates"] == 950
    assert ("no final checkpoint: the learner stopped part way through an update (RuntimeError "
            "in update 1000); checkpoint.pt keeps step 1000") in capsys.readouterr().err


def test_a_signal_while_the_inline_run_is_set_up_ends_it_with_a_resumable_checkpoint(
        tmp_path, monkeypatch, capsys):
    """SIGTERM while train_inline builds its learner (about a second of a new run, and the
    checkpoint's loading on a resume): the KeyboardInterrupt escaped before the loop's handler,
    a traceback left a run directory with config.yaml and no checkpoint, which neither --out nor
    --resume could go on with. Now the run ends at its first step with a checkpoint."""
    from distributed.learner import LearnerRunner

    real_init = LearnerRunner.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:  # the run's, not a check's
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(LearnerRunner, "__init__", init)
    run = tmp_path / "run"
    argv = ["train", "cartpole-soft-dqn", "--out", str(run), "--set", "replay.min_size=50",
            "--set", "run.eval_every=0", "--set", "run.total_env_steps=100"]
    assert main(argv) == 128 + signal.SIGTERM
    assert load_checkpoint(run)["counters"]["env_steps"] == 0
    monkeypatch.setattr(LearnerRunner, "__init__", real_init)
    assert main(["train", "--resume", str(run)]) == 0
    assert load_checkpoint(run)["counters"]["env_steps"] >= 100
