"""Registry entries of the discrete algorithms (see agents/registry.py)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents.discrete.a2c import A2CLearner, ActorCriticPolicy
from agents.discrete.config import A2CConfig, DQNConfig, SoftQA2CConfig
from agents.discrete.dqn import DQNLearner, DQNPolicy
from agents.discrete.soft_q_a2c import SoftQA2CLearner
from agents.registry import AlgorithmSpec


def _dqn_policy(cfg: DQNConfig, observation_space: gym.Space, action_space: gym.Space,
                seed: int = 0, **kwargs: Any) -> DQNPolicy:
    """kwargs may carry ``worker_index`` / ``num_workers`` (Ape-X per-worker epsilon)."""
    return DQNPolicy(cfg, observation_space, action_space, seed=seed,
                     worker_index=int(kwargs.get("worker_index", 0)),
                     num_workers=int(kwargs.get("num_workers", 1)))


DQN_SPEC = AlgorithmSpec(name="dqn", config_cls=DQNConfig, make_learner=DQNLearner,
                         make_policy=_dqn_policy, on_policy=False)
A2C_SPEC = AlgorithmSpec(name="a2c", config_cls=A2CConfig, make_learner=A2CLearner,
                         make_policy=ActorCriticPolicy, on_policy=True)
SOFT_Q_A2C_SPEC = AlgorithmSpec(name="soft_q_a2c", config_cls=SoftQA2CConfig,
                                make_learner=SoftQA2CLearner, make_policy=ActorCriticPolicy,
                                on_policy=True)
