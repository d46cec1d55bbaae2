"""n-step return estimators of §6.1 and the A2C loss (eqs. 79, 80, 84-86), as tensor functions.

Time-major rollouts of T steps over N envs. For each step t the return runs to the end of the
rollout (A3C's variable-length n-step): with d over the steps left in the rollout,

    naive  (eq. 79):  R_t = sum_d gamma^d r_{t+d}                 + gamma^(T-t) V(s_T)
    proper (eq. 80):  R_t = sum_d gamma^d (r_{t+d} - tau KL_{t+d}) + gamma^(T-t) V(s_T)

where KL_t = D_KL[pi(.|s_t) || uniform] (detached: it acts as a reward). With ``bonus='entropy'``
KL_t is replaced by -H(pi(.|s_t)), the KL against pi_bar = 1 for every action (not normalised):
the entropy-augmented return sum_t gamma^t (r_t + tau H_t) that Fig. 1's "EntRL" optimises. The
two returns differ by the constant tau log|A| per step, which changes the objective wherever the
episode's length depends on the actions (§6.2: such a constant "made a big difference").
An episode that *terminates* at step t stops the sum (no bootstrap); one *truncated* by a time
limit bootstraps from V(final_obs_t) instead of V(s_{t+1}) (s_{t+1} is already the next
episode's first obs).
The advantage is Delta_t = R_t - V(s_t) (eq. 52 for 'proper'), and the gradient estimators are
    grad log pi(a_t|s_t) Delta_t - tau grad KL(s_t)                            (eqs. 79/80, 84)
plus c * grad 1/2 (V(s_t) - R_t)^2 for the value function (eqs. 85/86).
"""

from __future__ import annotations

import math

import torch

from agents.discrete.config import BONUSES


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """D_KL[softmax(logits) || uniform] = sum_a pi log pi + log|A|; [..., A] -> [...]."""
    return kl_to_reference(logits, "kl")


def log_reference(num_actions: int, bonus: str) -> float:
    """log pi_bar(a): -log|A| for the uniform reference ('kl'), 0 for pi_bar = 1 ('entropy')."""
    if bonus == "kl":
        return -math.log(num_actions)
    if bonus == "entropy":
        return 0.0
    raise ValueError(f"unknown bonus {bonus!r}; expected one of {BONUSES}")


def kl_to_reference(logits: torch.Tensor, bonus: str) -> torch.Tensor:
    """sum_a pi log(pi / pi_bar): KL[pi || uniform] ('kl') or -H(pi) ('entropy'); [..., A] -> [...].

    tau times this is the per-step penalty in the returns (eq. 80 with r_t - tau KL_t); its
    gradient is the same for both bonuses (they differ by the constant log|A|).
    """
    logp = torch.log_softmax(logits, dim=-1)
    return (logp.exp() * logp).sum(-1) - log_reference(logits.shape[-1], bonus)


def nstep_returns(reward: torch.Tensor, bootstrap_value: torch.Tensor, terminated: torch.Tensor,
                  truncated: torch.Tensor, final_value: torch.Tensor, gamma: float,
                  penalty: torch.Tensor | None = None) -> torch.Tensor:
    """Discounted returns to the rollout end; [T, N] inputs, bootstrap_value [N] -> [T, N].

    ``penalty`` [T, N] is subtracted from each reward (tau * KL_t for the proper estimator,
    eq. 80). ``final_value`` [T, N] is V(final_obs) and is read only where ``truncated`` and not
    ``terminated``. All inputs are treated as constants (call under no_grad or pass detached).
    """
    if reward.dim() != 2:
        raise ValueError(f"reward must be time-major [T, N], got shape {tuple(reward.shape)}")
    T = reward.shape[0]
    r = reward if penalty is None else reward - penalty  # [T, N]
    term, trunc = terminated.bool(), truncated.bool()
    out = torch.empty_like(r)
    running = bootstrap_value  # [N]: R_{t+1}
    for t in range(T - 1, -1, -1):  # T = n_steps (5): a loop over time, vectorized over envs
        nxt = torch.where(trunc[t], final_value[t], running)  # time limit: bootstrap V(final)
        nxt = torch.where(term[t], torch.zeros_like(nxt), nxt)  # true end: nothing after
        running = r[t] + gamma * nxt
        out[t] = running
    return out


def a2c_loss(logits: torch.Tensor, value: torch.Tensor, action: torch.Tensor,
             returns: torch.Tensor, tau: float, value_coef: float,
             weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """A2C loss (eq. 86) on flat batches: logits [B, A], value/action/returns [B].

    policy = -log pi(a|s) (R - V) + tau KL(s)   (eq. 84; advantage detached)
    value  = 1/2 (V - R)^2                      (eq. 85)
    ``weight`` [B] (default 1) weighs samples; the mean is a weighted sum / B.
    """
    logp_all = torch.log_softmax(logits, dim=-1)  # [B, A]
    logp = logp_all.gather(-1, action.long()[:, None]).squeeze(-1)  # [B]
    adv = (returns - value).detach()  # [B]
    kl = kl_to_uniform(logits)  # [B]
    w = torch.ones_like(value) if weight is None else weight
    policy = (w * (-logp * adv + tau * kl)).mean()
    value_loss = (w * 0.5 * (value - returns) ** 2).mean()
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return {
        "total": policy + value_coef * value_loss,
        "policy": policy,
        "value": value_loss,
        "entropy": entropy.mean().detach(),
        "kl": kl.mean().detach(),
    }
