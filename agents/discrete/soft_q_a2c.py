"""A2C-style soft Q-learning (§6.3).

The Q-function is a dueling form of the actor-critic network (shared torso):
    Q_theta(s, a) = V_theta(s) + tau * log( pi_theta(a|s) / pi_bar(a) )                    (eq. 57)
and is regressed on the n-step soft target of eq. 46, computed from the same (detached) network:
    y_t = tau KL_t + sum_d gamma^d (r_{t+d} - tau KL_{t+d}) + gamma^(T-t) V(s_T).
``bonus='kl'``: pi_bar uniform, KL_t = D_KL[pi || uniform]; ``bonus='entropy'``: pi_bar = 1, so
Q = V + tau log pi as §6.3 writes it and KL_t = -H_t (the entropy-augmented return).
No target network, no epsilon schedule; pi_theta is the behaviour policy (ActorCriticPolicy).
Per §6.3 the gradient into the advantage stream is scaled by 1/tau and the one into the value
stream by c = 0.5, which makes the expected update that of proper entropy-regularized A2C
(eq. 65 scaled); with both scales 1 it is eq. 65 itself.
"""

from __future__ import annotations

import gymnasium as gym
import torch

from agents.discrete.a2c import OnPolicyLearner
from agents.discrete.a2c_returns import (
    kl_to_reference,
    kl_to_uniform,
    log_reference,
    nstep_returns,
)
from agents.discrete.config import SoftQA2CConfig


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient flowing back through x by ``scale``."""
    if scale == 1.0:
        return x
    return x * scale + x.detach() * (1.0 - scale)


def soft_q_values(logits: torch.Tensor, value: torch.Tensor, action: torch.Tensor, tau: float,
                  adv_scale: float = 1.0, value_scale: float = 1.0,
                  bonus: str = "kl") -> torch.Tensor:
    """Q(s, a) = V(s) + tau log(pi(a|s) / pi_bar(a)) with per-stream gradient scales (§6.3).

    pi_bar = 1/|A| for ``bonus='kl'``, 1 for 'entropy'. logits [B, A], value [B], action [B] -> [B].
    """
    logp = torch.log_softmax(logits, dim=-1).gather(-1, action.long()[:, None]).squeeze(-1)
    advantage = tau * (logp - log_reference(logits.shape[-1], bonus))  # tau log(pi/pi_bar), [B]
    return scale_grad(value, value_scale) + scale_grad(advantage, adv_scale)


def soft_q_target(logits: torch.Tensor, returns_proper: torch.Tensor, tau: float,
                  bonus: str = "kl") -> torch.Tensor:
    """y_t = tau KL_t + R_t^proper (eq. 46); logits [..., A], returns [...] -> [...] (no grad).

    ``returns_proper`` must subtract the same bonus's tau KL_{t+d} (a2c_returns.kl_to_reference).
    """
    with torch.no_grad():
        return tau * kl_to_reference(logits, bonus) + returns_proper


def soft_q_loss(q_taken: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """1/2 (Q(s_t, a_t) - y_t)^2 averaged over the batch (eq. 58); [B] inputs."""
    sq = 0.5 * (q_taken - target.detach()) ** 2
    return (sq if weight is None else weight * sq).mean()


class SoftQA2CLearner(OnPolicyLearner):
    def __init__(self, cfg: SoftQA2CConfig, observation_space: gym.Space,
                 action_space: gym.Space, device: str = "cpu", seed: int = 0):
        super().__init__(cfg, observation_space, action_space, device, seed)

    def loss(self, f: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        logits, value = f["logits"], f["value"]  # [T, N, A], [T, N]
        with torch.no_grad():
            penalty = cfg.tau * kl_to_reference(logits, cfg.bonus)  # [T, N]: tau KL_t
            returns = nstep_returns(f["reward"], f["bootstrap"], f["terminated"], f["truncated"],
                                    f["final_value"], cfg.gamma, penalty)  # eq. 46 sum
            y = penalty + returns  # [T, N]
            kl = kl_to_uniform(logits)  # [T, N], for the log
        A = logits.shape[-1]
        q = soft_q_values(logits.reshape(-1, A), value.reshape(-1), f["action"].reshape(-1),
                          cfg.tau, cfg.adv_scale, cfg.value_grad_scale, cfg.bonus)  # [T*N]
        loss = soft_q_loss(q, y.reshape(-1))
        logp = torch.log_softmax(logits.detach(), dim=-1)
        metrics = {
            "loss/q": float(loss.detach()),
            "q/mean": float(q.detach().mean()),
            "v/mean": float(value.detach().mean()),
            "entropy": float(-(logp.exp() * logp).sum(-1).mean()),
            "kl": float(kl.mean()),
        }
        return loss, metrics
