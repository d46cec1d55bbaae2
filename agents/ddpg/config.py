"""Hyperparameters of the DDPG baseline; defaults are Haarnoja et al. 2017, App. D.1 (shared with
soft Q-learning there), with the DDPG-specific parts from Lillicrap et al. 2015.

Each field's docstring is its ``--help`` text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DDPGConfig:
    gamma: float = 0.99
    """Discount; the collector folds it into n-step returns (the learner uses batch['discount'])."""
    hidden_sizes: list[int] = field(default_factory=lambda: [200, 200])
    """Hidden layer widths of the actor mu(s) and of the critic Q(s, a) (ReLU; App. D.1)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic (App. D.1)."""
    actor_lr: float = 1e-4
    """Adam learning rate of the deterministic actor (App. D.1)."""
    target_update_interval: int = 1000
    """Learner updates between target-network updates (App. D.1: frozen for 1000 steps)."""
    tau: float = 1.0
    """Fraction moved towards the online networks at each target update: 1 = hard copy (App.
    D.1); Lillicrap et al.'s soft updates are tau = 0.001 with target_update_interval = 1."""
    ou_theta: float = 0.15
    """Ornstein-Uhlenbeck mean-reversion rate theta of the exploration noise (App. D.1)."""
    ou_sigma: float = 0.3
    """Ornstein-Uhlenbeck noise scale sigma of the exploration noise (App. D.1)."""
    final_layer_init: float = 3e-3
    """Output layers start uniform in [-x, x] so initial actions and Q-values are near zero
    (Lillicrap et al. 2015, §7)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"DDPGConfig.gamma must be in [0, 1], got {self.gamma}")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(f"DDPGConfig.hidden_sizes must be positive widths, got "
                             f"{self.hidden_sizes}")
        for name in ("critic_lr", "actor_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DDPGConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.target_update_interval < 1:
            raise ValueError("DDPGConfig.target_update_interval must be >= 1, got "
                             f"{self.target_update_interval}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"DDPGConfig.tau must be in (0, 1], got {self.tau}")
        if not 0.0 < self.ou_theta < 2.0:
            raise ValueError(f"DDPGConfig.ou_theta must be in (0, 2) (stationary noise with "
                             f"dt = 1), got {self.ou_theta}")
        if self.ou_sigma < 0:
            raise ValueError(f"DDPGConfig.ou_sigma must be >= 0, got {self.ou_sigma}")
        if self.final_layer_init <= 0:
            raise ValueError(f"DDPGConfig.final_layer_init must be > 0, got "
                             f"{self.final_layer_init}")
