"""Atari factory: 4x84x84 uint8 observations, training vs evaluation wrappers (reward clipping,
episodic life) and the raw full-game return reported for evaluation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs.atari import DQNPreprocessing, area_resize, area_taps, make_atari
from envs.factory import make_env, make_vector_env


def test_factory_yields_stacked_uint8_frames() -> None:
    env = make_env("ALE/Breakout-v5", seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    nxt, *_ = env.step(1)
    assert nxt.shape == (4, 84, 84) and nxt.dtype == np.uint8
    np.testing.assert_array_equal(nxt[:3], obs[1:])  # the stack shifts by one frame per step
    assert nxt.max() > 0
    with pytest.raises(ValueError, match="ALE/"):
        make_atari("CartPole-v1")


def test_area_resize_matches_dense_area_average() -> None:
    """The gather-based resize equals the exact area-weighted average (OpenCV INTER_AREA)."""
    def dense(n_in: int, n_out: int) -> np.ndarray:
        s = n_in / n_out
        i, j = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
        return np.clip(np.minimum(j + 1, (i + 1) * s) - np.maximum(j, i * s), 0, None) / s

    frame = np.random.default_rng(0).integers(0, 256, (210, 160)).astype(np.uint8)
    ref = dense(210, 84) @ frame @ dense(160, 84).T
    out = area_resize(frame, area_taps(210, 84), area_taps(160, 84))
    assert np.abs(out - ref).max() <= 0.5 + 1e-6  # rounding only


def test_training_rewards_clipped_raw_return_unclipped() -> None:
    """Same seed and actions: the training env sees sign(r), the evaluation env raw r, and both
    report the raw game return in info['raw_episode_return'] when the game ends (time limit)."""
    kw = dict(max_episode_steps=120)
    train, evaluate = make_atari("ALE/SpaceInvaders-v5", training=True, **kw), \
        make_atari("ALE/SpaceInvaders-v5", training=False, **kw)
    o1, _ = train.reset(seed=3)
    o2, _ = evaluate.reset(seed=3)
    rng = np.random.default_rng(0)
    r_train, r_eval = [], []
    for _ in range(120):
        a = int(rng.integers(0, train.action_space.n))
        o1, r1, te1, tr1, i1 = train.step(a)
        o2, r2, te2, tr2, i2 = evaluate.step(a)
        np.testing.assert_array_equal(o1, o2)
        r_train.append(r1)
        r_eval.append(r2)
        if te1 or tr1 or te2 or tr2:
            break
    assert tr1 and tr2 and not te1  # the 120-step limit ended the game, no life was lost
    assert max(r_eval) > 1  # Space Invaders pays 5-30 per alien
    np.testing.assert_array_equal(r_train, np.sign(r_eval))
    assert i2["raw_episode_return"] == i1["raw_episode_return"] == sum(r_eval)
    assert sum(r_train) < sum(r_eval)


def test_episodic_life_terminates_per_life_and_reports_raw_return_at_game_over() -> None:
    env = make_atari("ALE/Breakout-v5", training=True)
    env.reset(seed=0)
    ale = env.unwrapped.ale
    rng = np.random.default_rng(1)
    life_ends, rewards, info = 0, 0.0, {}
    for _ in range(600):
        lives = ale.lives()
        _, r, terminated, truncated, info = env.step(int(rng.integers(0, 4)))
        rewards += r
        if "raw_episode_return" in info:
            break
        if terminated:
            assert ale.lives() == lives - 1  # a lost life, not the end of the game
            life_ends += 1
            env.reset()
            assert ale.lives() == lives - 1  # reset continued the same game
    assert "raw_episode_return" in info, "game did not end within 600 steps"
    assert life_ends == 4  # 5 lives: 4 life-loss terminals, then game over
    assert info["raw_episode_return"] >= rewards  # clipped per-step rewards <= raw


def test_fire_reset_launches_the_ball_after_every_reset() -> None:
    """Breakout waits for FIRE: a NOOP-only agent never loses a life without fire_reset, and
    loses one life per serve with it (the pseudo-reset after a lost life fires again)."""
    ends = {}
    for fire in (False, True):
        env = make_atari("ALE/Breakout-v5", training=True, fire_reset=fire)
        env.reset(seed=0)
        ends[fire] = 0
        for _ in range(120):
            _, _, terminated, _, _ = env.step(0)
            if terminated:
                ends[fire] += 1
                env.reset()
    assert ends[False] == 0
    assert ends[True] >= 4
    # evaluation plays whole games (no pseudo-reset): FIRE serves again after each lost life,
    # so a NOOP agent loses all five lives and the game ends (without: it idles at 4 lives)
    env = make_atari("ALE/Breakout-v5", training=False, fire_reset=True)
    env.reset(seed=0)
    for _ in range(600):
        _, _, terminated, truncated, info = env.step(0)
        if terminated or truncated:
            break
    assert terminated and env.unwrapped.ale.lives() == 0 and "raw_episode_return" in info
    with pytest.raises(ValueError, match="no FIRE"):
        make_atari("ALE/Skiing-v5", fire_reset=True)  # actions: NOOP, RIGHT, LEFT


def test_a_seeded_reset_after_a_lost_life_starts_a_new_game() -> None:
    env = make_atari("ALE/Breakout-v5", training=True)
    first, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(600):
        terminated = env.step(int(rng.integers(0, 4)))[2]
        if terminated:
            break
    assert terminated and env.unwrapped.ale.lives() == 4
    again, _ = env.reset(seed=0)  # not the no-op continuation of the old game
    assert env.unwrapped.ale.lives() == 5
    np.testing.assert_array_equal(again, first)


class _KnownFrames(gym.Env):
    """Emits frames[t] after its t-th step (frames[0] at reset), reward t; ends at ``end_at``."""

    def __init__(self, frames: np.ndarray, end_at: int | None = None):
        self.frames, self.end_at = frames, end_at
        self.observation_space = gym.spaces.Box(0, 255, frames.shape[1:], np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.frames[0], {}

    def step(self, action):
        self.t += 1
        return self.frames[self.t], float(self.t), self.t == self.end_at, False, {}


def test_frame_skip_max_pools_the_last_two_raw_frames() -> None:
    """DQNPreprocessing.step repeats the action frame_skip = 4 times and returns the elementwise
    max of the 3rd and 4th raw frames (Mnih et al. 2015), not the last frame, the min, the first
    two or all four; an episode that ends inside the skip pools its last two frames (one frame
    if it ends on the first). 8x8 frames resized to 8x8 are unchanged (area taps = identity)."""
    frames = np.random.default_rng(0).integers(0, 256, (12, 8, 8)).astype(np.uint8)
    env = DQNPreprocessing(_KnownFrames(frames), noop_max=0, frame_skip=4, screen_size=8)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, frames[0])
    for k in (1, 2):  # agent step k covers raw frames 4k-3 .. 4k
        obs, reward, terminated, truncated, _ = env.step(0)
        last, before = frames[4 * k], frames[4 * k - 1]
        np.testing.assert_array_equal(obs, np.maximum(before, last))
        assert reward == sum(range(4 * k - 3, 4 * k + 1)) and not (terminated or truncated)
        assert (obs > last).any() and (obs > np.minimum(before, last)).any()  # not trivial
        assert (obs < frames[4 * k - 3:4 * k + 1].max(0)).any()  # not a max over all four
        assert not np.array_equal(obs, np.maximum(frames[4 * k - 3], frames[4 * k - 2]))
    for end_at, pooled in ((3, [2, 3]), (1, [1])):
        env = DQNPreprocessing(_KnownFrames(frames, end_at=end_at), noop_max=0, frame_skip=4,
                               screen_size=8)
        env.reset(seed=0)
        obs, reward, terminated, _, _ = env.step(0)
        assert terminated and reward == sum(range(1, end_at + 1))  # stops at the end
        np.testing.assert_array_equal(obs, frames[pooled].max(0))


@pytest.mark.parametrize("fire_reset", [False, True])
def test_a_time_limit_right_after_a_lost_life_still_reports_the_game(fire_reset: bool) -> None:
    """The time limit falls on a lost life or one of the next two env steps, where the
    continuation of the game (a no-op, then FIRE with fire_reset) used to happen inside reset():
    the game must still be reported once, with its raw return, and the next game must start
    from zero (it was dropped and its return and length ran into the next game's)."""
    from distributed.rollout import EpisodeTracker

    rng = np.random.default_rng(0)
    env = make_vector_env("ALE/Breakout-v5", 1, 3, 10**6, fire_reset=fire_reset)
    env.reset(seed=3)
    limit = env.envs[0]
    while not isinstance(limit, gym.wrappers.TimeLimit):
        limit = limit.env
    actions, lost_at = [], None
    for _ in range(3000):  # the time-limit step on which the first life is lost
        actions.append(rng.integers(0, 4, size=1))
        elapsed = limit._elapsed_steps  # (read before: the autoreset may step the env)
        terminated = env.step(actions[-1])[2]
        if terminated[0]:
            lost_at = elapsed + 1
            break
    assert lost_at is not None and env.envs[0].unwrapped.ale.lives() == 4
    for extra in (0, 1, 2):  # the limit ends the game 0, 1 or 2 env steps after the lost life
        env = make_vector_env("ALE/Breakout-v5", 1, 3, lost_at + extra, fire_reset=fire_reset)
        env.reset(seed=3)
        tracker = EpisodeTracker(1)
        raw = None
        for a in actions + [np.zeros(1, np.int64)] * 5:
            _, reward, terminated, truncated, infos = env.step(a)
            if "final_info" in infos and "raw_episode_return" in infos["final_info"]:
                raw = infos["final_info"]["raw_episode_return"][0]
            tracker.step(reward, terminated | truncated, infos)
        games = tracker.drain()
        assert len(games) == 1 and games[0]["raw_return"] == raw, (extra, games)
        assert len(actions) <= games[0]["length"] <= len(actions) + extra
        assert tracker.lengths[0] <= 5  # the next game counts from its own start


@pytest.mark.parametrize("training", [False, True])
def test_time_limit_counts_agent_steps_with_fire_reset(training: bool) -> None:
    """max_episode_steps is in agent steps: FireReset's FIRE in reset() and the FIRE it adds to
    a life-loss step are not steps of the agent's (they used to count: 100 -> 96 steps here)."""
    env = make_atari("ALE/Breakout-v5", max_episode_steps=100, training=training,
                     fire_reset=True)
    env.reset(seed=0)
    ale = env.unwrapped.ale
    lives0, steps, info = ale.lives(), 0, {}
    truncated = False
    while not truncated:  # NOOP: FireReset serves, the ball is missed, a life is lost
        _, _, terminated, truncated, info = env.step(0)
        steps += 1
        assert not terminated or info.get("life_lost"), "the game ended before the limit"
        if terminated and not truncated:
            env.reset()  # training: continue the same game
    assert lives0 - ale.lives() >= 2  # the FIRE after a lost life happened inside the game
    assert steps == 100 and "raw_episode_return" in info
