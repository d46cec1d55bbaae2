"""Synchronous A2C (§6.1) learner and the stochastic actor-critic policy.

The runtime steps N envs in lockstep for T = n_steps steps and calls ``update(rollout)`` with a
time-major dict of numpy arrays:
    obs        [T+1, N, *obs_shape]  (obs[T] is the bootstrap observation)
    action     [T, N]   reward [T, N]   terminated [T, N]   truncated [T, N]
    final_obs  [T, N, *obs_shape]    true last obs where an episode ended at step t, else zeros
``OnPolicyLearner`` holds what A2C and A2C-style soft Q-learning share (network, RMSProp,
rollout checks, bootstrap values, persistence); subclasses define ``loss``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import Weights, cpu_weights, resolve_device
from agents.discrete.a2c_returns import a2c_loss, kl_to_reference, nstep_returns
from agents.discrete.config import A2CConfig
from agents.discrete.networks import ActorCritic, build_seeded

ROLLOUT_KEYS = ("obs", "action", "reward", "terminated", "truncated", "final_obs")


def check_rollout(rollout: dict[str, np.ndarray], obs_shape: tuple[int, ...]) -> tuple[int, int]:
    """Validate a rollout dict; returns (T, N). Raises ValueError naming the bad key."""
    missing = [k for k in ROLLOUT_KEYS if k not in rollout]
    if missing:
        raise ValueError(f"rollout is missing keys {missing}; expected {list(ROLLOUT_KEYS)}")
    T, N = np.shape(rollout["action"])[:2]
    expect = {
        "obs": (T + 1, N, *obs_shape), "final_obs": (T, N, *obs_shape),
        "action": (T, N), "reward": (T, N), "terminated": (T, N), "truncated": (T, N),
    }
    for key, shape in expect.items():
        if tuple(np.shape(rollout[key])) != shape:
            raise ValueError(f"rollout[{key!r}] has shape {tuple(np.shape(rollout[key]))}, "
                             f"expected {shape} (time-major, T={T}, N={N})")
    return T, N


class OnPolicyLearner:
    """Shared machinery of the on-policy learners; subclasses implement ``loss``."""

    def __init__(self, cfg: Any, observation_space: gym.Space, action_space: gym.Space,
                 device: str = "cpu", seed: int = 0):
        self.cfg = cfg
        self.device = resolve_device(device)
        self.obs_shape = tuple(observation_space.shape)
        self.net = build_seeded(
            lambda: ActorCritic(observation_space, action_space, cfg.hidden_sizes), seed
        ).to(self.device)
        self.optim = torch.optim.RMSprop(self.net.parameters(), lr=cfg.lr, alpha=cfg.rms_alpha,
                                         eps=cfg.rms_eps)
        self.num_updates = 0

    def _forward_rollout(self, rollout: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Logits/values for obs[:T] (with grad), bootstrap values (no grad), flattened data."""
        T, N = check_rollout(rollout, self.obs_shape)
        dev = self.device
        obs = torch.as_tensor(rollout["obs"], device=dev)  # [T+1, N, *obs]
        logits, value = self.net(obs.reshape(-1, *self.obs_shape))  # [(T+1)N, A], [(T+1)N]
        logits = logits.reshape(T + 1, N, -1)[:T]  # [T, N, A]
        value_all = value.reshape(T + 1, N)  # [T+1, N]
        term = torch.as_tensor(rollout["terminated"], device=dev).bool()  # [T, N]
        trunc = torch.as_tensor(rollout["truncated"], device=dev).bool()  # [T, N]
        final_value = torch.zeros(T, N, device=dev)  # [T, N]
        need = trunc & ~term  # time-limit ends bootstrap from V(final_obs)
        if need.any():
            final_obs = torch.as_tensor(rollout["final_obs"], device=dev)[need]  # [K, *obs]
            with torch.no_grad():
                final_value[need] = self.net(final_obs)[1]
        return {
            "logits": logits, "value": value_all[:T], "bootstrap": value_all[T].detach(),
            "final_value": final_value,
            "action": torch.as_tensor(rollout["action"], device=dev).long(),  # [T, N]
            "reward": torch.as_tensor(rollout["reward"], device=dev).float(),  # [T, N]
            "terminated": term, "truncated": trunc,
        }

    def loss(self, f: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def update(self, rollout: dict[str, np.ndarray]) -> dict[str, float]:
        f = self._forward_rollout(rollout)
        total, metrics = self.loss(f)
        self.optim.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg.grad_clip > 0:
            gn = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
            metrics["train/grad_norm"] = float(gn)
        self.optim.step()
        self.num_updates += 1
        return metrics

    def get_weights(self) -> Weights:
        return cpu_weights(self.net)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optim": self.optim.state_dict(),
                "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optim.load_state_dict(state["optim"])
        self.num_updates = int(state["num_updates"])


class A2CLearner(OnPolicyLearner):
    """A2C with the naive (eq. 79) or proper (eq. 80) entropy-regularized estimator."""

    def __init__(self, cfg: A2CConfig, observation_space: gym.Space, action_space: gym.Space,
                 device: str = "cpu", seed: int = 0):
        super().__init__(cfg, observation_space, action_space, device, seed)

    def loss(self, f: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        with torch.no_grad():
            penalty = (cfg.tau * kl_to_reference(f["logits"], cfg.bonus)  # [T, N]: eq. 80's
                       if cfg.entropy_mode == "proper" else None)  # -tau KL_{t+d} (or +tau H)
            returns = nstep_returns(f["reward"], f["bootstrap"], f["terminated"],
                                    f["truncated"], f["final_value"], cfg.gamma, penalty)
        A = f["logits"].shape[-1]
        parts = a2c_loss(f["logits"].reshape(-1, A), f["value"].reshape(-1),
                         f["action"].reshape(-1), returns.reshape(-1), cfg.tau, cfg.value_coef)
        metrics = {
            "loss/policy": float(parts["policy"].detach()),
            "loss/value": float(parts["value"].detach()),
            "entropy": float(parts["entropy"]),
            "kl": float(parts["kl"]),
            "v/mean": float(f["value"].detach().mean()),
            "return/mean": float(returns.mean()),
        }
        return parts["total"], metrics


class ActorCriticPolicy:
    """Acting half of A2C / soft-Q A2C: samples a ~ pi(.|s) when exploring, else argmax."""

    def __init__(self, cfg: Any, observation_space: gym.Space, action_space: gym.Space,
                 seed: int = 0, **_: Any):
        self.net = build_seeded(
            lambda: ActorCritic(observation_space, action_space, cfg.hidden_sizes), seed
        ).requires_grad_(False)
        self.gen = torch.Generator().manual_seed(seed)

    def set_weights(self, weights: Weights) -> None:
        self.net.load_state_dict(weights)

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        logits, _ = self.net(torch.as_tensor(obs))  # [N, A]
        if explore:
            probs = torch.softmax(logits, dim=-1)
            return torch.multinomial(probs, 1, generator=self.gen).squeeze(1).numpy()
        return logits.argmax(dim=-1).numpy().astype(np.int64)
