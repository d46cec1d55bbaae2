"""DDPG losses as plain tensor functions (Lillicrap et al. 2015, Algorithm 1).

The critic regresses on the *hard* Bellman target of the deterministic target policy, which is
the zero-temperature limit of the soft Bellman backup (Haarnoja et al. 2017, §4, eq. 10 with
alpha -> 0: the soft value's log-sum-exp becomes a max, approximated by Q(s', mu(s'))).
"""

from __future__ import annotations

import torch


def bellman_target(reward: torch.Tensor, discount: torch.Tensor,
                   next_q: torch.Tensor) -> torch.Tensor:
    """y = r + discount * Q'(s', mu'(s')), all [B]; discount is gamma^n, or 0 at a terminal."""
    if not reward.shape == discount.shape == next_q.shape:
        raise ValueError(f"bellman_target: reward {tuple(reward.shape)}, discount "
                         f"{tuple(discount.shape)} and next_q {tuple(next_q.shape)} must match")
    return reward + discount * next_q  # [B]


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared Bellman error, mean_B (Q(s, a) - y)^2; y carries no gradient."""
    return (q - target.detach()).pow(2).mean()


def actor_loss(q_of_policy: torch.Tensor) -> torch.Tensor:
    """-mean_B Q(s, mu(s)): the deterministic policy gradient ascends the critic."""
    return -q_of_policy.mean()
