"""A researcher's own env (``env.id=package.module:Name-v0``) and the spaces it may have: each
trains with the right actions, or is one error line naming the problem before any write."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from launch.cli import main
from tests import space_envs

ENV = "tests.space_envs:softq-test/Space-v0"
QUICK = ["--inline", "--set", "run.total_env_steps=200", "--set", "run.eval_every=200",
         "--set", "run.eval_episodes=2", "--set", "run.log_every=100",
         "--set", "run.checkpoint_every=0", "--set", "replay.min_size=50",
         "--set", "agent.hidden_sizes=[16]"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _space(obs: str, act: str) -> list[str]:
    return ["--set", f"env.id={ENV}", "--set", f"env.kwargs={{obs: {obs}, act: {act}}}"]


def test_a_module_qualified_env_id_trains_and_evaluates(tmp_path, capsys, monkeypatch):
    """gymnasium.make("module:Name-v0") imports the module that registers Name-v0; make_env
    refused such ids as unregistered, leaving no way to train on one's own env. From a run
    directory the module is imported only when $SOFTQ_PLUGIN_MODULES allows it (as plug-in
    algorithms)."""
    run = tmp_path / "run"
    space_envs.ACTIONS.clear()
    argv = ["train", "cartpole-soft-dqn", "--out", str(run), *QUICK, *_space("box", "discrete")]
    assert main(argv) == 0
    assert len(space_envs.ACTIONS) >= 200  # the run stepped that env
    capsys.readouterr()
    monkeypatch.delenv("SOFTQ_PLUGIN_MODULES", raising=False)
    assert main(["eval", str(run), "--episodes", "2"]) == 2
    assert "SOFTQ_PLUGIN_MODULES=tests.space_envs" in _error_line(capsys)
    assert main(["compare", str(run), "--metric", "eval/return_mean",
                 "--out", str(tmp_path / "c.png")]) == 0  # reads config.yaml, makes no env
    monkeypatch.setenv("SOFTQ_PLUGIN_MODULES", "tests.space_envs")
    assert main(["eval", str(run), "--episodes", "2"]) == 0


def test_a_module_that_cannot_be_imported_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "cartpole-soft-dqn", "--set", "env.id=no_such_module:X-v0"]) == 2
    line = _error_line(capsys)
    assert "no_such_module" in line and "env.id" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("preset,obs,act", [
    ("cartpole-soft-dqn", "tuple", "discrete"),  # Blackjack-v1's kind of observation
    ("cartpole-a2c", "dict", "discrete"),
    ("multigoal-quick", "box", "dict"),
])
def test_tuple_and_dict_spaces_are_one_line_naming_the_space(preset, obs, act, tmp_path, capsys,
                                                             monkeypatch):
    """The refusal's message built "(obs [..], action [..])" from space.shape, None for Tuple
    and Dict spaces: a TypeError traceback instead of the line naming the space."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", preset, *_space(obs, act)]) == 2
    line = _error_line(capsys)
    assert line.startswith("softq: error:") and ("Tuple(" in line or "Dict(" in line), line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("preset", ["cartpole-soft-dqn", "cartpole-a2c"])
def test_a_discrete_space_not_starting_at_0_gets_its_own_actions(preset, tmp_path, capsys):
    """Discrete(3, start=-1): the policies act 0..2 and the random warm-up sampled -1..1, so the
    env got action 2 (outside its space: a traceback after the run directory was written) and
    the replay held -1 (indexing the last Q-value). Now actions i reach the env as i - 1 and the
    agent learns the rewarded one (+1, its index 2)."""
    space_envs.ACTIONS.clear()
    steps = "2000" if preset == "cartpole-soft-dqn" else "3000"
    assert main(["train", preset, "--out", str(tmp_path / "run"), *QUICK, "--set",
                 "run.random_steps=100", "--set", f"run.total_env_steps={steps}", "--set",
                 f"run.eval_every={steps}",
                 *_space("box", "discrete_from_minus_1")]) == 0
    seen = space_envs.ACTIONS
    assert set(seen) == {-1, 0, 1}
    # the evaluation's greedy actions (the last 2 x 10 steps) are all the rewarded one
    assert seen[-20:] == [1] * 20, seen[-20:]


def test_an_rgb_picture_observation_trains_dqn_from_the_nstep_replay(tmp_path):
    """A uint8 [3, 84, 84] picture went to the Atari frame replay, which takes the channels
    for a stack of frames: ValueError "next_obs must be obs shifted by one frame" at the first
    step, after the run directory was written. The pictures are stored whole now."""
    assert main(["train", "cartpole-soft-dqn", "--out", str(tmp_path / "run"), *QUICK,
                 "--set", "run.total_env_steps=100", "--set", "run.eval_every=100",
                 "--set", "run.eval_episodes=1", *_space("rgb", "discrete")]) == 0


def test_an_unbounded_action_box_is_named_as_such(tmp_path, capsys, monkeypatch):
    """Box(-inf, inf) actions: Gymnasium's RescaleAction said only "For unbounded components,
    the target bounds must match the original infinity bounds"."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "multigoal-ddpg-quick", *_space("box", "unbounded")]) == 2
    line = _error_line(capsys)
    assert "unbounded in dimension(s) [0, 1]" in line and "finite action bounds" in line, line
    assert not (tmp_path / "runs").exists()


def test_an_env_without_a_time_limit_needs_one_for_evaluations(tmp_path, capsys, monkeypatch):
    """An env registered without max_episode_steps (whose episodes never end): training ran, and
    its first evaluation looped forever in distributed/evaluation.py. It is named before any
    write; with env.max_episode_steps, or without evaluations, it trains."""
    monkeypatch.chdir(tmp_path)
    env = ["--set", "env.id=tests.space_envs:softq-test/SpaceNoLimit-v0"]
    assert main(["train", "cartpole-soft-dqn", *QUICK, *env]) == 2
    line = _error_line(capsys)
    assert "env.max_episode_steps" in line and "no time limit" in line, line
    assert not (tmp_path / "runs").exists()
    assert main(["train", "cartpole-soft-dqn", "--out", "a", *QUICK, *env,
                 "--set", "env.max_episode_steps=10"]) == 0
    assert main(["train", "cartpole-soft-dqn", "--out", "b", *QUICK, *env,
                 "--set", "run.eval_every=0"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SOFTQ_PLUGIN_MODULES", "tests.space_envs")
    assert main(["eval", "b", "--episodes", "1"]) == 2  # softq eval would loop forever too
    assert "no time limit" in _error_line(capsys)
    # CliffWalking-v1 (one-hot observations) is registered without one too
    assert main(["train", "cartpole-soft-dqn", "--set", "env.id=CliffWalking-v1"]) == 2
    assert "no time limit" in _error_line(capsys)


def test_discrete_observations_are_one_hot_and_soft_dqn_solves_frozen_lake(tmp_path, capsys):
    """Discrete(n) observations (FrozenLake, Taxi, CliffWalking) were refused ("discrete agents
    need a Box observation space"); they now reach the agents as float32 one-hot vectors. On the
    deterministic 4 x 4 FrozenLake (reward 1 at the goal, 6 moves away) soft DQN with a small
    temperature (tau = 0.001: with 0.1 the entropy bonus, 0.14 per step, outweighs the one-off
    goal reward and the soft-optimal policy wanders) walks the shortest path by 6,000 steps
    (seeds 0, 1 and 2 all do; at 4,000 seed 1 does not yet)."""
    from envs import make_env

    env = make_env("FrozenLake-v1", seed=0, is_slippery=False)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (16,), np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == np.eye(16)[0].tolist()
    for action, state in ((2, 1), (1, 5)):  # right to state 1, then down into the hole at 5
        obs = env.step(action)[0]
        assert obs.tolist() == np.eye(16)[state].tolist() == np.eye(16)[env.unwrapped.s].tolist()
    run = tmp_path / "fl"
    assert main(["train", "cartpole-soft-dqn", "--inline", "--out", str(run),
                 "--set", "env.id=FrozenLake-v1", "--set", "env.kwargs={is_slippery: false}",
                 "--set", "agent.tau=0.001", "--set", "agent.eps_decay_steps=5000",
                 "--set", "replay.min_size=500", "--set", "run.total_env_steps=6000",
                 "--set", "run.eval_every=6000", "--set", "run.eval_episodes=4",
                 "--set", "run.checkpoint_every=0"]) == 0
    capsys.readouterr()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["eval/return_mean"] == 1.0 and summary["eval/length_mean"] == 6.0, summary


def test_a_channel_last_picture_is_named_for_the_convolutions(tmp_path, capsys, monkeypatch):
    """[84, 84, 3] was read as 84 channels of 84 x 3 pixels: torch's "Kernel size can't be
    greater than actual input size" was all the refusal said."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "cartpole-a2c", *_space("rgb_last", "discrete")]) == 2
    line = _error_line(capsys)
    assert "channel-first [C, H, W] with H, W >= 36" in line and "channel-last" in line, line


def test_the_unit_box_maps_onto_the_envs_bounds_exactly():
    """[-1, 1]^d -> [low, high] affinely, a = -1 / +1 exactly onto low / high (Gymnasium's
    float32 RescaleAction gave 3.9632113 for high 3.963211), and never outside them."""
    import numpy as np

    from envs import make_env

    env = make_env(ENV, seed=0, act="asym")
    low, high = env.unwrapped.action_space.low, env.unwrapped.action_space.high
    space_envs.ACTIONS.clear()
    for a in ([-1.0, -1.0], [1.0, 1.0], [0.0, 0.5], [1.5, -2.0]):
        env.step(np.array(a, np.float32))
    got = space_envs.ACTIONS
    assert np.array_equal(got[0], low) and np.array_equal(got[1], high)
    np.testing.assert_allclose(got[2], [(low[0] + high[0]) / 2, low[1] + 0.75 * (high[1] - low[1])],
                               rtol=1e-6)
    assert np.array_equal(got[3], [high[0], low[1]])  # outside [-1, 1]: clipped to the bounds


def test_ddpg_trains_on_an_env_that_checks_its_asymmetric_bounds(tmp_path):
    """The exploring actor's clipped actions (+-1) reached the env one ulp past its bounds: the
    env refused them mid-run, after the run directory was written."""
    assert main(["train", "multigoal-ddpg-quick", "--out", str(tmp_path / "run"), *QUICK,
                 "--set", "run.total_env_steps=600", "--set", "run.random_steps=0",
                 "--set", "replay.min_size=300", *_space("box", "asym")]) == 0


def test_an_integer_box_is_a_float_box_for_the_agents_rounded_for_the_env():
    """Box(0, 4, int64): the agents' box was Box(-1, 1, int64), so the random warm-up drew only
    -1, 0, 1 (the env got 0, 2, 4), and a policy's 0.9 was truncated to 3 (4 only at exactly 1)."""
    import numpy as np

    from envs import make_env

    env = make_env(ENV, seed=0, act="int")
    assert env.action_space.dtype == np.float32
    draws = {tuple(np.round(env.action_space.sample(), 3)) for _ in range(20)}
    assert len(draws) == 20  # continuous draws, not three integers
    space_envs.ACTIONS.clear()
    for a in ([-1.0, -0.76], [0.9, 0.74]):
        env.step(np.array(a, np.float32))
    assert [list(x) for x in space_envs.ACTIONS] == [[0, 0], [4, 3]]  # nearest: 0.48, 3.8, 3.48
    env = make_env(ENV, seed=0, act="int_unit")  # already [-1, 1], but integer: still a float box
    assert env.action_space.dtype == np.float32
    env.step(np.array([0.4, 0.6], np.float32))
    assert list(space_envs.ACTIONS[-1]) == [0, 1]


def test_an_older_ale_id_names_the_v5_id_softq_trains(tmp_path, capsys, monkeypatch):
    """PongNoFrameskip-v4 was "not registered with Gymnasium" (ale_py registers it), with no
    word of the ALE/<Game>-v5 ids that get softq's preprocessing."""
    pytest.importorskip("ale_py")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "pong-dqn", "--set", "env.id=SpaceInvadersNoFrameskip-v4"]) == 2
    assert "ALE/SpaceInvaders-v5" in _error_line(capsys)


def test_a_module_qualified_ale_id_is_atari_everywhere(monkeypatch):
    """``ale_py:ALE/Pong-v5`` (the form ALE's docs show): make_env preprocessed it, but the
    frame replay, the raw full-game evaluation and the time-limit exemption tested the id's
    "ALE/" prefix: the run was refused for lacking a time limit, and would have evaluated with
    clipped rewards and episodic lives."""
    import gymnasium as gym
    import numpy as np

    from distributed import evaluation
    from distributed.rollout import uses_frame_replay
    from launch.config import load_config
    from launch.train_cmd import check_episode_ends

    env_id = "ale_py:ALE/Pong-v5"
    check_episode_ends(load_config("pong-dqn", [f"env.id={env_id}"]))  # no refusal
    assert uses_frame_replay(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), env_id)
    made = []

    def fake_make_env(env_id, seed=None, max_episode_steps=None, **kwargs):
        made.append(kwargs)
        raise RuntimeError("stop")

    monkeypatch.setattr(evaluation, "make_env", fake_make_env)
    with pytest.raises(RuntimeError, match="stop"):
        evaluation.evaluate_policy(None, env_id, 1, seed=0)
    assert made == [{"training": False}]
