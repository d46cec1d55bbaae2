"""The multi-goal task of Haarnoja et al. 2017, §5.1 (Figure 1).

A 2-D point mass starts near the origin; its action is a velocity in [-1, 1]^2 and the state
moves by it, s' = clip(s + a, -bound, bound). Four goals sit at (+-5, 0) and (0, +-5). The paper
describes the reward as a mixture of Gaussians centred on the goals with an action cost; it
leaves the form and constants open. Here the reward is the log-density (up to a constant) of an
equal-weight Gaussian mixture on the goals, so its level curves are the mixture's, and it
still slopes towards the nearest goal far from every goal (a plain mixture is flat there):

    r(s, a) = goal_reward * log sum_g exp(-||s' - g||^2 / (2 goal_sigma^2)) - action_cost ||a||^2

with s' the next position. Near a goal this is ~ -goal_reward ||s' - g||^2 / (2 goal_sigma^2),
the squared-distance cost of the original code. Defaults (all constructor arguments):
goal_reward = 1 and goal_sigma = 1/sqrt(2) (so the cost is -min_g ||s' - g||^2 away from ties),
action_cost = 1, init_sigma = 0.1 (start ~ N(0, 0.1^2 I)), bound = 7, goal_threshold = 1.5 (a goal
is "reached" within this distance; goals are 7.07 apart). With the paper's alpha = 10 this scale
keeps all four goals in the policy (measured: a reward scale of 0.1 wandered between goals).
The episode never terminates early (termination would forfeit the entropy bonus that the soft
value pays every step): a goal is the best place to stay, so the optimal behaviour is to go to
*any* goal and stay; the horizon is T = 20 (App. D.2), applied by the registered TimeLimit.
``info["goal_index"]`` is the index of the goal within ``goal_threshold``, or -1.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

GOALS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]], dtype=np.float64)  # [4, 2]


class MultiGoalEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, goal_reward: float = 1.0, goal_sigma: float = 0.5**0.5,
                 action_cost: float = 1.0, init_sigma: float = 0.1, bound: float = 7.0,
                 goal_threshold: float = 1.5, render_mode: str | None = None):
        for name, value in (("goal_sigma", goal_sigma), ("bound", bound),
                            ("goal_threshold", goal_threshold)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (np.isfinite(init_sigma) and init_sigma >= 0):
            raise ValueError(f"init_sigma must be a finite number >= 0, got {init_sigma!r}")
        for name, value in (("goal_reward", goal_reward), ("action_cost", action_cost)):
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        self.goal_reward, self.goal_sigma = goal_reward, goal_sigma
        self.action_cost, self.init_sigma = action_cost, init_sigma
        self.bound, self.goal_threshold = bound, goal_threshold
        self.goals = GOALS.copy()
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-bound, bound, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2)

    # ------------------------------------------------------------------ math (vectorized)
    def reward_at(self, next_pos: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Reward for arrays of positions [..., 2] reached with actions [..., 2]."""
        sq = np.sum((next_pos[..., None, :] - self.goals) ** 2, axis=-1)  # [..., 4]
        logits = -sq / (2.0 * self.goal_sigma**2)  # [..., 4]
        top = logits.max(axis=-1)
        log_mix = top + np.log(np.exp(logits - top[..., None]).sum(axis=-1))  # stable logsumexp
        return self.goal_reward * log_mix - self.action_cost * np.sum(action**2, axis=-1)

    def goal_index(self, pos: np.ndarray) -> int:
        dist = np.linalg.norm(self.goals - pos, axis=-1)  # [4]
        j = int(np.argmin(dist))
        return j if dist[j] <= self.goal_threshold else -1

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._pos = np.clip(self.np_random.normal(0.0, self.init_sigma, size=2),
                            -self.bound, self.bound)
        return self._pos.astype(np.float32), {"goal_index": -1}

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self._pos = np.clip(self._pos + action, -self.bound, self.bound)
        reward = float(self.reward_at(self._pos, action))
        info: dict[str, Any] = {"goal_index": self.goal_index(self._pos)}
        return self._pos.astype(np.float32), reward, False, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        size = 128
        img = np.full((size, size, 3), 255, dtype=np.uint8)

        def to_px(p: np.ndarray) -> tuple[int, int]:
            u = (p + self.bound) / (2 * self.bound) * (size - 1)
            return int(round(u[0])), int(round(size - 1 - u[1]))

        for g in self.goals:
            x, y = to_px(g)
            img[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = (220, 30, 30)
        x, y = to_px(self._pos)
        img[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = (30, 30, 220)
        return img
