"""The multi-goal task: registration, check_env, hand-computed rewards."""

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401
from envs import make_env
from envs.multigoal import GOALS, MultiGoalEnv


def test_registered_and_passes_check_env():
    env = gym.make("softq/MultiGoal-v0")
    assert env.spec.max_episode_steps == 20
    check_env(env.unwrapped)


def test_reward_hand_computed():
    env = MultiGoalEnv(goal_reward=10.0, goal_sigma=1.0, action_cost=2.0)
    # at goal (5, 0): own bump 1; (-5, 0) at distance^2 100, (0, +-5) at distance^2 50
    expected = 10.0 * np.log(1 + np.exp(-50.0) + 2 * np.exp(-25.0)) - 2.0 * 0.25
    got = env.reward_at(np.array([5.0, 0.0]), np.array([0.5, 0.0]))
    assert np.isclose(got, expected, rtol=1e-12)
    # at the origin every goal is at distance 5: log(4 exp(-12.5))
    assert np.isclose(env.reward_at(np.zeros(2), np.zeros(2)), 10 * (np.log(4) - 12.5))
    # far from ties the default reward is minus the squared distance to the nearest goal
    default = MultiGoalEnv()
    assert np.isclose(default.reward_at(np.array([4.0, 1.0]), np.zeros(2)), -2.0, atol=1e-6)
    # stable far away (no underflow to -inf)
    assert np.isfinite(env.reward_at(np.array([1e3, 1e3]), np.zeros(2)))


def test_step_moves_by_the_action_and_clips_at_the_wall():
    env = MultiGoalEnv(init_sigma=0.0)
    env.reset(seed=0)
    for _ in range(4):
        obs, r, term, trunc, info = env.step(np.array([1.0, 0.0], np.float32))
    assert np.allclose(obs, [4.0, 0.0]) and info["goal_index"] == 0  # within 1.5
    obs, r, *_ = env.step(np.array([2.0, 0.0], np.float32))  # clipped to 1
    assert np.allclose(obs, [5.0, 0.0])
    assert np.isclose(r, env.reward_at(GOALS[0], np.array([1.0, 0.0])))
    for _ in range(10):
        obs, *_ = env.step(np.array([1.0, 0.0], np.float32))
    assert np.allclose(obs, [7.0, 0.0]) and env.goal_index(obs) == -1


def test_factory_time_limit_and_seeding():
    a, b = make_env("softq/MultiGoal-v0", seed=3), make_env("softq/MultiGoal-v0", seed=3)
    oa, _ = a.reset(seed=3)
    ob, _ = b.reset(seed=3)
    assert np.array_equal(oa, ob)
    steps = 0
    while True:
        _, _, term, trunc, _ = a.step(a.action_space.sample())
        steps += 1
        if term or trunc:
            break
    assert steps == 20 and trunc
