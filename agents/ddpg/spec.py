"""Registry entry for DDPG (see agents/registry.py)."""

from __future__ import annotations

from agents.ddpg.config import DDPGConfig
from agents.ddpg.learner import DDPGLearner
from agents.ddpg.policy import DDPGPolicy
from agents.registry import AlgorithmSpec

SPEC = AlgorithmSpec(name="ddpg", config_cls=DDPGConfig, make_learner=DDPGLearner,
                     make_policy=DDPGPolicy)
