"""Tiny envs with the spaces a researcher's own task may have, registered on import (so that
``env.id=tests.space_envs:softq-test/<Name>-v0`` reaches them, as ``gymnasium.make`` does).

Every env records the actions it received in ``ACTIONS`` (one process: inline runs, eval).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ACTIONS: list[Any] = []

_OBS = {
    "box": spaces.Box(-1.0, 1.0, (2,), np.float32),
    "tuple": spaces.Tuple((spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(3))),
    "dict": spaces.Dict({"x": spaces.Box(-1.0, 1.0, (2,), np.float32)}),
    "rgb": spaces.Box(0, 255, (3, 84, 84), np.uint8),  # one RGB picture, not a frame stack
    "rgb_last": spaces.Box(0, 255, (84, 84, 3), np.uint8),  # channel-last
}
_ACT = {
    "discrete": spaces.Discrete(3),
    "discrete_from_minus_1": spaces.Discrete(3, start=-1),
    "unbounded": spaces.Box(-np.inf, np.inf, (2,), np.float32),
    "int": spaces.Box(0, 4, (2,), np.int64),
    "int_unit": spaces.Box(-1, 1, (2,), np.int64),
    # bounds that are no power of 2 apart: float32 rescaling rounds past them
    "asym": spaces.Box(np.array([-1.634369, -3.064212], np.float32),
                       np.array([3.963211, 1.2761512], np.float32)),
    "dict": spaces.Dict({"a": spaces.Discrete(2)}),
}


class SpaceEnv(gym.Env):
    """Observations drawn at random from ``obs``; reward 1 for the action ``best`` (discrete),
    else 0; the registered time limit ends every episode."""

    def __init__(self, obs: str = "box", act: str = "discrete", best: int = 1):
        self.observation_space = _OBS[obs]
        self.action_space = _ACT[act]
        self.best = best

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        ACTIONS.append(action)
        reward = float(isinstance(self.action_space, spaces.Discrete) and action == self.best)
        return self.observation_space.sample(), reward, False, False, {}


if "softq-test/Space-v0" not in gym.registry:
    gym.register("softq-test/Space-v0", entry_point=SpaceEnv, max_episode_steps=10)
if "softq-test/SpaceNoLimit-v0" not in gym.registry:  # registered without a time limit
    gym.register("softq-test/SpaceNoLimit-v0", entry_point=SpaceEnv)
