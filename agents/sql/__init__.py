"""Soft Q-learning with amortized SVGD (Haarnoja et al. 2017)."""

from agents.sql.config import SQLConfig
from agents.sql.learner import SQLLearner
from agents.sql.policy import SQLPolicy

__all__ = ["SQLConfig", "SQLLearner", "SQLPolicy"]
