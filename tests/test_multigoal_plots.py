"""Figure 1 (Haarnoja et al. 2017) pictures for both algorithms on the multi-goal task: Q contours
with SQL's sampler draws or DDPG's one action per state, written while training."""

import numpy as np
import pytest
import torch

from agents.ddpg import DDPGConfig, DDPGLearner
from agents.sql.config import SQLConfig
from agents.sql.learner import SQLLearner
from envs import make_env
from launch.cli import main
from launch.plots import FIXED_STATES, multigoal_q_panels, policy_samples, save_figure


def _spaces():
    env = make_env("softq/MultiGoal-v0")
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def test_ddpg_panels_scatter_the_actors_action_at_each_state():
    learner = DDPGLearner(DDPGConfig(hidden_sizes=[8, 8]), *_spaces(), seed=0)
    beta = np.array([0.5, -1.0])  # zero weights, output bias beta: mu(s) = tanh(beta) everywhere
    with torch.no_grad():
        for p in learner.actor.parameters():
            p.zero_()
        learner.actor.out.bias.copy_(torch.as_tensor(beta, dtype=torch.float32))
    np.testing.assert_allclose(learner.policy_actions(FIXED_STATES),
                               np.tile(np.tanh(beta), (3, 1)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"obs must be \[N, 2\]"):
        learner.policy_actions(FIXED_STATES[0])
    fig = multigoal_q_panels(learner.q_values, policy_samples(learner))
    for ax in fig.axes:
        points = ax.collections[-1]  # the scatter is drawn after the contours
        np.testing.assert_allclose(points.get_offsets(), [np.tanh(beta)], rtol=1e-6)


def test_sql_panels_use_the_sampler_and_a_learner_without_a_critic_gets_none():
    learner = SQLLearner(SQLConfig(hidden_sizes=[8, 8], kernel_particles=4, value_particles=4),
                         *_spaces(), seed=0)
    assert policy_samples(learner) == learner.sample_actions
    assert policy_samples(object()) is None and policy_samples(None) is None


@pytest.mark.parametrize("preset", ["multigoal-quick", "multigoal-ddpg-quick"])
def test_training_draws_figure_1_for_both_algorithms(preset, tmp_path):
    run = tmp_path / "run"
    assert main(["train", preset, "--inline", "--out", str(run), "--set", "run.image_every=100",
                 "--set", "run.total_env_steps=200", "--set", "replay.min_size=50",
                 "--set", "run.eval_every=200", "--set", "run.eval_episodes=2",
                 "--set", "agent.hidden_sizes=[8, 8]"]) == 0
    for name in ("trajectories.png", "q_values.png"):
        assert (run / "plots" / name).stat().st_size > 0


def test_save_figure_writes_the_format_its_suffix_names_and_a_failure_keeps_the_old_file(
        tmp_path):
    import io

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
    ax.plot([0, 1], [1, 0])
    for name, magic in (("f.png", b"\x89PNG"), ("f.pdf", b"%PDF")):
        save_figure(fig, tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(magic)
    direct = io.BytesIO()
    fig.savefig(direct, format="png")
    assert (tmp_path / "f.png").read_bytes() == direct.getvalue()
    before = (tmp_path / "f.png").read_bytes()

    def fails_mid_write(fh, **kwargs):
        fh.write(b"\x89PNG half")
        raise OSError("No space left on device")

    fig.savefig = fails_mid_write
    with pytest.raises(OSError, match="No space"):
        save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes() == before  # a plain savefig had truncated it
    assert sorted(q.name for q in tmp_path.iterdir()) == ["f.pdf", "f.png"]
    plt.close(fig)
