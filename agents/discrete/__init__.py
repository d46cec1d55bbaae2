"""Discrete-action algorithms of Schulman et al. 2017 ("Equivalence between policy gradients and
soft Q-learning"): soft DQN (§6.2), A2C with naive/proper entropy (§6.1) and A2C-style soft
Q-learning (§6.3). Pure PyTorch/NumPy; the runtime reaches them through ``agents.registry``.
"""

from agents.discrete.config import A2CConfig, DQNConfig, SoftQA2CConfig

__all__ = ["A2CConfig", "DQNConfig", "SoftQA2CConfig"]
