"""DDPG (Lillicrap et al. 2015): the deterministic baseline of Haarnoja et al. 2017."""

from agents.ddpg.config import DDPGConfig
from agents.ddpg.learner import DDPGLearner
from agents.ddpg.policy import DDPGPolicy

__all__ = ["DDPGConfig", "DDPGLearner", "DDPGPolicy"]
