"""Ornstein-Uhlenbeck exploration noise, one independent process per environment and action
dimension (Uhlenbeck & Ornstein 1930; as used by DDPG, Lillicrap et al. 2015, and by both
algorithms of Haarnoja et al. 2017, App. D.1 with theta = 0.15, sigma = 0.3).

Euler-Maruyama discretisation with step ``dt`` (dt = 1: one step per environment step):

    x_{t+1} = x_t + theta (mu - x_t) dt + sigma sqrt(dt) eps_t,    eps_t ~ N(0, I)

This is an AR(1) process with coefficient rho = 1 - theta dt. For 0 < theta dt < 2 it has a
stationary law N(mu, V) with V = rho^2 V + sigma^2 dt, i.e.

    V = sigma^2 dt / (1 - rho^2) = sigma^2 / (theta (2 - theta dt)),

which tends to the continuous-time sigma^2 / (2 theta) as dt -> 0 (dt = 1, theta = 0.15,
sigma = 0.3: V = 0.09 / 0.2775 = 0.3243 against 0.3). The lag-k autocorrelation is rho^k.
Processes start at mu and restart there when their environment's episode ends.
"""

from __future__ import annotations

import numpy as np


def ou_stationary_variance(theta: float, sigma: float, dt: float = 1.0) -> float:
    """Exact stationary variance of the discretised process above."""
    return sigma * sigma / (theta * (2.0 - theta * dt))


class OrnsteinUhlenbeckNoise:
    """Vectorized OU noise: state ``[num_envs, action_dim]``, one process per entry."""

    def __init__(self, action_dim: int, theta: float = 0.15, sigma: float = 0.3,
                 mu: float = 0.0, dt: float = 1.0, seed: int | None = None):
        if action_dim < 1:
            raise ValueError(f"OU noise: action_dim must be >= 1, got {action_dim}")
        if sigma < 0:
            raise ValueError(f"OU noise: sigma must be >= 0, got {sigma}")
        if dt <= 0 or not 0.0 < theta * dt < 2.0:
            raise ValueError(f"OU noise: need dt > 0 and 0 < theta*dt < 2 for a stationary "
                             f"process, got theta={theta}, dt={dt}")
        self.action_dim, self.theta, self.sigma, self.mu, self.dt = (
            action_dim, float(theta), float(sigma), float(mu), float(dt))
        self._decay = 1.0 - self.theta * self.dt  # rho
        self._scale = self.sigma * np.sqrt(self.dt)
        self._rng = np.random.default_rng(seed)
        self.state = np.full((0, action_dim), self.mu)  # [N, action_dim]

    def sample(self, num_envs: int) -> np.ndarray:
        """Advance every process one step and return the new state, ``[num_envs, action_dim]``.

        A change of ``num_envs`` restarts all processes at mu."""
        if self.state.shape[0] != num_envs:
            self.state = np.full((num_envs, self.action_dim), self.mu)
        eps = self._rng.standard_normal(self.state.shape)
        # x <- x + theta (mu - x) dt + sigma sqrt(dt) eps, written as mu + rho (x - mu) + ...
        self.state = self.mu + self._decay * (self.state - self.mu) + self._scale * eps
        return self.state.copy()

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Restart the processes of the environments where ``mask`` [N] is true (all if None)."""
        if mask is None:
            self.state[:] = self.mu
            return
        mask = np.asarray(mask, dtype=bool)
        if self.state.shape[0] == 0:  # nothing sampled yet: every process is still at mu
            return
        if mask.shape != (self.state.shape[0],):
            raise ValueError(f"OU noise reset: mask must have shape ({self.state.shape[0]},) "
                             f"(one flag per env), got {mask.shape}")
        self.state[mask] = self.mu
