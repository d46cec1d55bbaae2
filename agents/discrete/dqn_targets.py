"""The three DQN backups of §6.2 (eqs. 81-83) as plain tensor functions.

All values are "state values" of the next state; the target is y = R + discount * V(s'), where
the batch's ``discount`` is gamma^m, or 0 when the episode terminated inside the n-step window.

    hard    (eq. 81):  V(s') = max_a' Q(s', a')
    kl      (eq. 82):  V(s') = tau * log( (1/|A|) sum_a' exp(Q(s', a')/tau) )      (eq. 29)
    entropy (eq. 83):  V(s') = tau * log( sum_a' exp(Q(s', a')/tau) )

The paper prints eqs. 82/83 without the tau factor (i.e. for tau = 1 units); we keep tau so that
V has the units of Q and tau -> 0 recovers the hard max. The KL form is the soft value against a
uniform reference (eq. 29 with pi_bar = 1/|A|); the entropy form adds the constant tau*log|A|.
For n-step returns the intermediate KL terms of eq. 46 are not in the replay batch (only the
discounted reward sum is); as in the paper's "one-line change" to n-step DQN the soft value is
applied at the bootstrap state only.
"""

from __future__ import annotations

import math

import torch


def hard_value(q_next: torch.Tensor) -> torch.Tensor:
    """max_a' Q(s', a'); q_next [B, A] -> [B] (eq. 81)."""
    return q_next.max(dim=-1).values


def soft_value(q_next: torch.Tensor, tau: float, kl: bool) -> torch.Tensor:
    """tau * logsumexp(Q/tau) (eq. 83), minus tau*log|A| when ``kl`` (eq. 82); [B, A] -> [B]."""
    if tau <= 0:
        raise ValueError(f"soft value needs tau > 0, got {tau}")
    v = tau * torch.logsumexp(q_next / tau, dim=-1)  # [B]
    if kl:
        v = v - tau * math.log(q_next.shape[-1])
    return v


def double_q_value(q_next_target: torch.Tensor, q_next_online: torch.Tensor) -> torch.Tensor:
    """Q_target(s', argmax_a' Q_online(s', a')); [B, A] x2 -> [B] (van Hasselt et al. 2016)."""
    a_star = q_next_online.argmax(dim=-1, keepdim=True)  # [B, 1]
    return q_next_target.gather(-1, a_star).squeeze(-1)


def next_state_value(q_next_target: torch.Tensor, kind: str, tau: float,
                     q_next_online: torch.Tensor | None = None) -> torch.Tensor:
    """V(s') for ``kind`` in {'hard', 'kl', 'entropy'}; ``q_next_online`` enables double Q."""
    if kind == "hard":
        if q_next_online is not None:
            return double_q_value(q_next_target, q_next_online)
        return hard_value(q_next_target)
    if q_next_online is not None:
        raise ValueError(f"double Q is defined for the 'hard' target only, got {kind!r}")
    if kind == "kl":
        return soft_value(q_next_target, tau, kl=True)
    if kind == "entropy":
        return soft_value(q_next_target, tau, kl=False)
    raise ValueError(f"unknown DQN target {kind!r}; expected 'hard', 'kl' or 'entropy'")


def dqn_target(reward: torch.Tensor, discount: torch.Tensor, q_next_target: torch.Tensor,
               kind: str, tau: float, q_next_online: torch.Tensor | None = None) -> torch.Tensor:
    """y = reward + discount * V(s'); reward/discount [B], q_next_* [B, A] -> [B] (no grad)."""
    with torch.no_grad():
        v_next = next_state_value(q_next_target, kind, tau, q_next_online)  # [B]
        return reward + discount * v_next


def boltzmann_entropy(q: torch.Tensor, tau: float) -> torch.Tensor:
    """Entropy of pi ∝ exp(Q/tau) per row; [B, A] -> [B]."""
    logp = torch.log_softmax(q / tau, dim=-1)
    return -(logp.exp() * logp).sum(-1)
