"""Soft Q-learning loss terms as plain tensor functions (paper Sec. 3.2, eqs. 10-11, 14)."""

from __future__ import annotations

import math

import torch


def soft_value_uniform(q_next: torch.Tensor, alpha: float | torch.Tensor, act_dim: int
                       ) -> torch.Tensor:
    """Importance-sampled soft value (eq. 10) with a uniform proposal q_a' = 2^-d on [-1, 1]^d.

    V(s') = alpha log mean_k [exp(Q(s', a_k)/alpha) / 2^-d]
          = alpha (logsumexp_k Q(s', a_k)/alpha - log K_V + d log 2);   q_next [B, K_V] -> [B].
    """
    k_v = q_next.shape[-1]
    return alpha * (torch.logsumexp(q_next / alpha, dim=-1) - math.log(k_v)
                    + act_dim * math.log(2.0))


def td_target(reward: torch.Tensor, discount: torch.Tensor, v_next: torch.Tensor
              ) -> torch.Tensor:
    """Q_hat = r + discount * V_target(s') [B]; ``discount`` holds gamma^n, 0 at termination."""
    return reward + discount * v_next


def q_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """J_Q (eq. 11): mean of 0.5 (Q_hat - Q)^2; the target carries no gradient."""
    return 0.5 * (q - target.detach()).pow(2).mean()


def svgd_surrogate_loss(direction: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Amortized SVGD (eq. 14): -sum(stopgrad(phi) * f(xi; s)) / (B K); u, direction [B, K, d].

    Its gradient in the sampler weights is -1/(BK) sum phi (df/dphi), the App. C.1 estimate
    averaged over the mini-batch, so descending it moves each sample along phi.
    """
    return -(direction.detach() * u).sum() / (u.shape[0] * u.shape[1])
