"""Registry entry for soft Q-learning (looked up as ``algo: sql``)."""

from __future__ import annotations

import gymnasium as gym

from agents.registry import AlgorithmSpec
from agents.sql.config import SQLConfig
from agents.sql.learner import SQLLearner
from agents.sql.policy import SQLPolicy


def make_learner(cfg: SQLConfig, observation_space: gym.Space, action_space: gym.Space,
                 device: str = "cpu", seed: int = 0) -> SQLLearner:
    return SQLLearner(cfg, observation_space, action_space, device=device, seed=seed)


def make_policy(cfg: SQLConfig, observation_space: gym.Space, action_space: gym.Space,
                seed: int = 0, num_workers: int = 1, run_seed: int | None = None) -> SQLPolicy:
    """``run_seed``: the run's seed, which draws the one fixed xi set of fine-tuning."""
    xi_set_seed = None if run_seed is None else 1_000_003 * int(run_seed) + 17
    return SQLPolicy(cfg, observation_space, action_space, seed=seed, num_workers=num_workers,
                     xi_set_seed=xi_set_seed)


SPEC = AlgorithmSpec(name="sql", config_cls=SQLConfig, make_learner=make_learner,
                     make_policy=make_policy, on_policy=False)
