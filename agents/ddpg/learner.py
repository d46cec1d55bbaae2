"""DDPG learner (Lillicrap et al. 2015), the baseline of Haarnoja et al. 2017 (§5, App. D.1).

One update on a replay batch:
  1. critic: minimise mean_B (Q(s, a) - y)^2, y = r + discount * Q'(s', mu'(s')) (hard target);
  2. actor: minimise -mean_B Q(s, mu(s)) with the just-updated critic (deterministic policy
     gradient), the critic's parameters untouched;
  3. every ``target_update_interval`` updates, targets <- tau * online + (1 - tau) * targets
     (tau = 1: the paper's hard copy every 1000 updates).
Gradients are taken with ``torch.autograd.grad`` w.r.t. exactly one network's parameters, so the
actor step never forms critic parameter gradients and nothing needs zeroing.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import Batch, Weights, cpu_weights, obs_action_sets, resolve_device
from agents.ddpg.config import DDPGConfig
from agents.ddpg.losses import actor_loss, bellman_target, critic_loss
from agents.ddpg.networks import Actor, Critic, box_dims

_FLOAT_KEYS = ("obs", "action", "reward", "next_obs", "discount")


def _adam(params: list[torch.nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    # The fused kernel does one pass over all parameters (fewer small-tensor launches on CPU).
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


try:  # torch internals the fast path below relies on; without them it is plain opt.step()
    from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks
    _FUSED_ADAM = torch._fused_adam_
except (ImportError, AttributeError):  # pragma: no cover - a torch that moved them
    _FUSED_ADAM = None


def _adam_step(opt: torch.optim.Adam) -> None:
    """``opt.step()`` of a fused Adam, bit for bit, without torch.optim's per-call Python layers.

    Adam.step wraps its kernel in a profiler record, a grad-mode switch, ``_init_group`` and a
    regrouping by device and dtype: ~40 us a call on one CPU thread, two calls an update; skipping
    them gives the inline HalfCheetah DDPG benchmark ~9% more env steps/s. Here the two kernels
    of torch.optim's fused path (step counts + 1, ``_fused_adam_``) run on the optimizer's own
    tensors, so its state_dict is the same. Anything else goes through ``opt.step()``: the first
    step (no state yet), a parameter without a gradient, non-fused, amsgrad, AdamW decay, a tensor
    lr, grad scaling, registered step hooks, parameters off the CPU (the CUDA path is untested),
    a torch without these internals. Assumes each group's parameters share a device and dtype (a
    DDPG network's do).
    """
    if (_FUSED_ADAM is None or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
            or _global_optimizer_pre_hooks or _global_optimizer_post_hooks):
        opt.step()
        return
    groups = []
    for group in opt.param_groups:
        params = group["params"]
        states = [opt.state.get(p) for p in params]
        if (not group["fused"] or group["amsgrad"] or group["differentiable"]
                or group.get("decoupled_weight_decay") or torch.is_tensor(group["lr"])
                or any(not st or p.grad is None or p.device.type != "cpu"
                       for p, st in zip(params, states, strict=True))):
            opt.step()
            return
        groups.append((group, params, states))
    if getattr(opt, "grad_scale", None) is not None or getattr(opt, "found_inf", None) is not None:
        opt.step()
        return
    with torch.no_grad():
        for group, params, states in groups:
            steps = [st["step"] for st in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            _FUSED_ADAM(params, [p.grad for p in params], [st["exp_avg"] for st in states],
                        [st["exp_avg_sq"] for st in states], [], steps, amsgrad=False,
                        lr=group["lr"], beta1=beta1, beta2=beta2,
                        weight_decay=group["weight_decay"], eps=group["eps"],
                        maximize=group["maximize"])


class DDPGLearner:
    def __init__(self, cfg: DDPGConfig, observation_space: gym.Space, action_space: gym.Space,
                 device: str = "cpu", seed: int = 0) -> None:
        self.cfg = cfg
        self.device = resolve_device(device)
        self.obs_dim, self.act_dim = box_dims(observation_space, action_space)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = Actor(self.obs_dim, self.act_dim, cfg.hidden_sizes, cfg.final_layer_init)
            self.critic = Critic(self.obs_dim, self.act_dim, cfg.hidden_sizes,
                                 cfg.final_layer_init)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._actor_params = list(self.actor.parameters())
        self._critic_params = list(self.critic.parameters())
        self._online = self._actor_params + self._critic_params
        self._targets = list(self.actor_target.parameters()) + list(self.critic_target.parameters())
        self.actor_opt = _adam(self._actor_params, cfg.actor_lr, self.device)
        self.critic_opt = _adam(self._critic_params, cfg.critic_lr, self.device)
        self.num_updates = 0

    # ------------------------------------------------------------------ batch handling
    def _tensors(self, batch: Batch) -> list[torch.Tensor]:
        missing = [k for k in _FLOAT_KEYS if k not in batch]
        if missing:
            raise KeyError(f"DDPG batch lacks key(s) {missing}; needs {list(_FLOAT_KEYS)}")
        obs, action, reward, next_obs, discount = (
            torch.as_tensor(batch[k], dtype=torch.float32, device=self.device)
            for k in _FLOAT_KEYS)
        b = obs.shape[0]
        if (obs.shape != (b, self.obs_dim) or next_obs.shape != (b, self.obs_dim)
                or action.shape != (b, self.act_dim) or reward.shape != (b,)
                or discount.shape != (b,)):
            raise ValueError(
                f"DDPG batch shapes: expected obs/next_obs [B, {self.obs_dim}], action "
                f"[B, {self.act_dim}], reward/discount [B]; got obs {tuple(obs.shape)}, "
                f"next_obs {tuple(next_obs.shape)}, action {tuple(action.shape)}, reward "
                f"{tuple(reward.shape)}, discount {tuple(discount.shape)}")
        return [obs, action, reward, next_obs, discount]

    # ------------------------------------------------------------------ the update
    def critic_targets(self, reward: torch.Tensor, discount: torch.Tensor,
                       next_obs: torch.Tensor) -> torch.Tensor:
        """y [B] = r + discount * Q'(s', mu'(s')) from the target networks."""
        with torch.no_grad():
            next_q = self.critic_target(next_obs, self.actor_target(next_obs))  # [B]
            return bellman_target(reward, discount, next_q)

    def update(self, batch: Batch) -> dict[str, float]:
        obs, action, reward, next_obs, discount = self._tensors(batch)
        y = self.critic_targets(reward, discount, next_obs)  # [B]

        q = self.critic(obs, action)  # [B]
        loss_q = critic_loss(q, y)
        grads = torch.autograd.grad(loss_q, self._critic_params)
        for p, g in zip(self._critic_params, grads, strict=True):
            p.grad = g
        _adam_step(self.critic_opt)

        q_pi = self.critic(obs, self.actor(obs))  # [B], updated critic
        loss_pi = actor_loss(q_pi)
        grads = torch.autograd.grad(loss_pi, self._actor_params)
        for p, g in zip(self._actor_params, grads, strict=True):
            p.grad = g
        _adam_step(self.actor_opt)

        self.num_updates += 1
        if self.num_updates % self.cfg.target_update_interval == 0:
            self.update_targets()
        loss_q_v, loss_pi_v, q_mean = torch.stack(
            [loss_q.detach(), loss_pi.detach(), q.detach().mean()]).tolist()
        return {"loss/q": loss_q_v, "loss/policy": loss_pi_v, "q/mean": q_mean}

    @torch.no_grad()
    def update_targets(self) -> None:
        """targets <- tau * online + (1 - tau) * targets; tau = 1 copies."""
        if self.cfg.tau == 1.0:
            self.sync_target()
        else:
            torch._foreach_lerp_(self._targets, self._online, self.cfg.tau)

    @torch.no_grad()
    def sync_target(self) -> None:
        """Hard copy of the online actor and critic into the targets, whatever tau."""
        torch._foreach_copy_(self._targets, self._online)

    @torch.no_grad()
    def q_values(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Critic Q(s, a) for obs [N, obs_dim] and actions [N, P, act_dim] -> [N, P]."""
        o, a = obs_action_sets(obs, actions, self.obs_dim, self.act_dim, self.device)
        o = o[:, None, :].expand(-1, a.shape[1], -1)  # [N, P, obs_dim]
        return self.critic(o, a).cpu().numpy()

    @torch.no_grad()
    def policy_actions(self, obs: np.ndarray) -> np.ndarray:
        """The actor's action mu(s), no exploration noise: obs [N, obs_dim] -> [N, act_dim]."""
        o = torch.as_tensor(np.asarray(obs, np.float32), device=self.device)
        if o.dim() != 2 or o.shape[1] != self.obs_dim:
            raise ValueError(f"obs must be [N, {self.obs_dim}], got {tuple(o.shape)}")
        return self.actor(o).cpu().numpy()

    # ------------------------------------------------------------------ weights and state
    def get_weights(self) -> Weights:
        """The actor's parameters as CPU tensors (what a DDPGPolicy needs to act)."""
        return cpu_weights(self.actor)

    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimizers and the update count (tensors and plain types only)."""
        return copy.deepcopy({
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "num_updates": self.num_updates,
        })

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"actor", "critic", "actor_target", "critic_target", "actor_opt",
                   "critic_opt", "num_updates"} - set(state)
        if missing:
            raise KeyError(f"DDPG state dict lacks {sorted(missing)}")
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.num_updates = int(state["num_updates"])
