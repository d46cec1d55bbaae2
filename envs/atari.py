"""Atari with the standard DQN preprocessing (Mnih et al. 2015; Machado et al. 2018 for sticky
actions).

Wrapper stack, inside out:
    ALE/<Game>-v5 (frameskip=1, grayscale screens, repeat_action_probability 0.25 if sticky)
    DQNPreprocessing     no-op reset (<= noop_max), frame skip with max-pool of the last two
                         frames, area-resize to 84x84 (same semantics as Gymnasium's
                         ``AtariPreprocessing``, which needs OpenCV; this one needs only NumPy)
    FireReset            optional (fire_reset=True): FIRE after a reset and, within the same
                         agent step, after each lost life
    TimeLimit            ``max_episode_steps`` agent steps (optional; FireReset's FIREs are
                         inside them)
    RawEpisodeReturn     info["raw_episode_return"] = unclipped return of the whole game, set on
                         the step where the real game ends (game over or time limit)
    EpisodicLife         training only: a lost life ends the agent's episode; reset() continues
                         the same game from the life-loss step's frame (no env step) unless the
                         game is really over
    ClipReward           training only: sign(r)
    FrameStackObservation  4 frames -> Box(0, 255, (4, 84, 84), uint8)
Evaluation (training=False) sees whole games and unclipped rewards.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation, TimeLimit


def area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV INTER_AREA as sparse taps: source indices and weights, each [n_out, K].

    Output pixel i averages the source interval [i*s, (i+1)*s), s = n_in/n_out, each source
    pixel weighted by its overlap (weights of a row sum to 1). Gathers instead of a BLAS matmul
    keep it fast and single-threaded inside many env processes.
    """
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale  # [n_out, 1] interval start
    j = np.arange(n_in)[None, :]  # [1, n_in]
    overlap = np.clip(np.minimum(j + 1, lo + scale) - np.maximum(j, lo), 0.0, None) / scale
    k = int((overlap > 0).sum(1).max())
    first = np.floor(lo[:, 0]).astype(np.int64)  # [n_out]
    idx = np.minimum(first[:, None] + np.arange(k)[None, :], n_in - 1)  # [n_out, K]
    w = np.take_along_axis(overlap, idx, axis=1)  # [n_out, K]
    w[first[:, None] + np.arange(k)[None, :] > n_in - 1] = 0.0  # clamped duplicates
    return idx, w.astype(np.float32)


def area_resize(frame: np.ndarray, taps_y: tuple[np.ndarray, np.ndarray],
                taps_x: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """[H, W] uint8 -> [h, w] uint8 with the area taps of ``area_taps`` (rounded)."""
    (iy, wy), (ix, wx) = taps_y, taps_x
    rows = (frame[iy].astype(np.float32) * wy[:, :, None]).sum(1)  # [h, W]
    out = (rows[:, ix] * wx[None, :, :]).sum(2)  # [h, w]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class DQNPreprocessing(gym.Wrapper):
    """No-op reset, frame skip with a max over the last two frames, area-resize to a square.

    Expects a grayscale ALE env with frameskip=1 (obs [210, 160] uint8).
    """

    def __init__(self, env: gym.Env, noop_max: int = 30, frame_skip: int = 4,
                 screen_size: int = 84):
        super().__init__(env)
        if noop_max < 0:
            raise ValueError(f"noop_max must be >= 0, got {noop_max}")
        h, w = env.observation_space.shape[:2]
        self.noop_max, self.frame_skip = noop_max, frame_skip
        self._taps_y = area_taps(h, screen_size)  # [84, K] each
        self._taps_x = area_taps(w, screen_size)
        self.observation_space = gym.spaces.Box(0, 255, (screen_size, screen_size), np.uint8)

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        return area_resize(frame, self._taps_y, self._taps_x)  # [84, 84]

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        noops = int(self.env.unwrapped.np_random.integers(1, self.noop_max + 1)) \
            if self.noop_max > 0 else 0
        for _ in range(noops):
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return self._resize(obs), info

    def step(self, action: Any):
        total, prev, obs = 0.0, None, None
        terminated = truncated = False
        info: dict = {}
        for _ in range(self.frame_skip):
            prev = obs
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        frame = obs if prev is None else np.maximum(prev, obs)  # max-pool last two frames
        return self._resize(frame), total, terminated, truncated, info


class RawEpisodeReturn(gym.Wrapper):
    """Sums the unclipped reward over a whole game; reports it when the game ends."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._ret = 0.0

    def reset(self, **kwargs: Any):
        self._ret = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(reward)
        if terminated or truncated:
            info = dict(info)
            info["raw_episode_return"] = self._ret
        return obs, reward, terminated, truncated, info


def ale_lives(env: gym.Env) -> int:
    """Lives left in the ALE game under ``env``'s wrappers."""
    return int(env.unwrapped.ale.lives())


class EpisodicLife(gym.Wrapper):
    """A life loss is a terminal for the learner; the game itself goes on (Mnih et al. 2015).
    Such a step's info says ``life_lost`` (training statistics count whole games).

    The reset after a lost life steps nothing: it returns that step's observation and the game
    goes on with the agent's next action. (A no-op step taken inside reset() could end the game
    -- a time limit, ALE's frame cap -- where no step reports it: the game's return was lost and
    the training statistics ran it into the next game.) Any other reset (after the game ended,
    a seeded one, one in the middle of a life) starts a new game."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._lives = 0
        self._last: tuple[Any, dict] | None = None  # obs, info of a life-loss step

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        game_over = bool(terminated or truncated)
        lives = ale_lives(self.env)
        self._last = None
        if 0 < lives < self._lives:
            terminated = True
            if not game_over:  # (a time limit on this step ends the game itself)
                self._last = (obs, dict(info))
                info = {**info, "life_lost": True}
        self._lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any):
        if self._last is None or kwargs.get("seed") is not None:
            obs, info = self.env.reset(**kwargs)  # a new game (a seeded reset is one too)
        else:  # continue the game after a lost life from where it stands
            obs, info = self._last
        self._last = None
        self._lives = ale_lives(self.env)
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE after a reset, for games that wait for it (OpenAI baselines' FireResetEnv),
    and after each lost life on the same agent step (its reward and any end of the game it
    brings are that step's). It sits below RawEpisodeReturn and EpisodicLife, so training and
    evaluation serve alike and no FIRE step happens inside a pseudo-reset (where a time limit
    could end the game unreported). The reward of the FIRE in reset() is dropped, as the no-op
    starts' rewards are. Without it a greedy policy that never fires can idle until the frame
    cap."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        if "FIRE" not in meanings:
            raise ValueError(f"fire_reset: this game has no FIRE action ({meanings})")
        self._fire = meanings.index("FIRE")
        self._lives = 0

    def reset(self, **kwargs: Any):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self._fire)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        self._lives = ale_lives(self.env)
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = ale_lives(self.env)
        if lives < self._lives and not (terminated or truncated):  # serve again, same step
            obs, more, terminated, truncated, info = self.env.step(self._fire)
            reward += more
            lives = ale_lives(self.env)
        self._lives = lives
        return obs, reward, terminated, truncated, info


class ClipReward(gym.RewardWrapper):
    """sign(r): rewards in {-1, 0, 1} for training."""

    def reward(self, reward: float) -> float:
        return float(np.sign(reward))


def make_atari(env_id: str, max_episode_steps: int | None = None, *,
               sticky_actions: bool = False, training: bool = True, noop_max: int = 30,
               frame_skip: int = 4, frame_stack: int = 4, screen_size: int = 84,
               full_action_space: bool = False, fire_reset: bool = False) -> gym.Env:
    """One preprocessed Atari env; observations uint8 [frame_stack, screen_size, screen_size].

    Args:
        env_id: an ALE id such as ``ALE/Pong-v5``.
        max_episode_steps: time limit in agent steps (after frame skip); None keeps ALE's own
            108,000-frame cap of the v5 ids.
        sticky_actions: repeat the previous action with probability 0.25 (Machado et al. 2018).
        training: episodic life + reward clipping when True; whole games, raw rewards when False.
        noop_max: at most this many no-ops after a reset (0 disables).
        frame_skip: agent steps span this many frames (max-pool over the last two).
        fire_reset: press FIRE after each reset and each lost life (games such as Breakout
            wait for it; not part of Nature DQN's preprocessing, hence off by default).
    """
    import ale_py

    gym.register_envs(ale_py)
    if not env_id.startswith("ALE/"):
        raise ValueError(f"make_atari expects an 'ALE/<Game>-v5' id, got {env_id!r}")
    if frame_skip < 1 or frame_stack < 1:
        raise ValueError(f"frame_skip and frame_stack must be >= 1, got {frame_skip}, "
                         f"{frame_stack}")
    env = gym.make(env_id, frameskip=1, obs_type="grayscale",
                   repeat_action_probability=0.25 if sticky_actions else 0.0,
                   full_action_space=full_action_space)
    env = DQNPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size)
    if fire_reset:  # below RawEpisodeReturn: a game that ends on a FIRE step is reported there
        env = FireReset(env)
    if max_episode_steps is not None:  # above FireReset: its FIREs are no agent steps
        env = TimeLimit(env, max_episode_steps=max_episode_steps)
    env = RawEpisodeReturn(env)
    if training:
        env = EpisodicLife(env)
        env = ClipReward(env)
    return FrameStackObservation(env, frame_stack)
