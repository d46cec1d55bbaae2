"""Inference-only soft Q-learning policy for rollout workers: a = tanh(f(xi; s)) on the CPU.

``explore=True`` adds per-env Ornstein-Uhlenbeck noise when ``exploration_noise == 'ou'`` (App. D.1:
theta 0.15, sigma 0.3); the sampler itself is always stochastic (xi ~ N(0, I)), also for
``explore=False`` - that is the maximum-entropy policy. For fine-tuning, ``set_fixed_xi(k)`` draws
xi from a fixed set of k samples (App. D.1); shrinking k keeps a prefix of the same set.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from agents.base import Weights
from agents.schedules import LinearSchedule
from agents.sql.config import SQLConfig
from agents.sql.learner import box_dims
from agents.sql.networks import SamplingNetwork

_PREFIX = "sampler."


class SQLPolicy:
    def __init__(self, cfg: SQLConfig, observation_space: gym.Space, action_space: gym.Space,
                 seed: int = 0, num_workers: int = 1, xi_set_seed: int | None = None) -> None:
        """``seed``: this policy's own noise (fresh xi, OU); ``xi_set_seed``: the fixed xi set's
        (the run's: every worker and the evaluation act on one set, App. D.1; None: ``seed``)."""
        self.cfg = cfg
        if num_workers < 1:
            raise ValueError(f"SQLPolicy: num_workers must be >= 1, got {num_workers}")
        self.num_workers = int(num_workers)
        # App. D.1 fine-tuning: K_xi shrinks linearly from fixed_xi_start to 1 (None: off).
        self._xi_schedule = (None if cfg.fixed_xi_start is None else
                             LinearSchedule(cfg.fixed_xi_start, 1, cfg.fixed_xi_anneal_steps))
        self.obs_dim, self.act_dim = box_dims(observation_space, action_space)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.sampler = SamplingNetwork(self.obs_dim, self.act_dim, list(cfg.hidden_sizes))
        self.sampler.requires_grad_(False).eval()
        self.gen = torch.Generator().manual_seed(seed)
        self._ou: torch.Tensor | None = None  # [N, act_dim] per-env OU state
        self._xi_pool: torch.Tensor | None = None  # [K_max, act_dim] fixed xi set
        self._xi_set_seed = int(seed if xi_set_seed is None else xi_set_seed)
        self._k_xi: int | None = None

    def set_weights(self, weights: Weights) -> None:
        """Load the 'sampler.*' entries of a learner's ``get_weights()``."""
        state = {k[len(_PREFIX):]: v for k, v in weights.items() if k.startswith(_PREFIX)}
        if not state:
            raise KeyError(f"no '{_PREFIX}*' entries in weights (keys: {sorted(weights)[:5]}...)")
        self.sampler.load_state_dict(state)

    def set_fixed_xi(self, k: int | None) -> None:
        """None: fresh xi each step. k >= 1: xi uniformly from a fixed set {xi_i}_{i<k}, the
        first k of one set of max(k, fixed_xi_start) draws from the xi-set seed: a smaller k
        keeps a prefix, and a worker that starts mid-schedule acts on the same set."""
        if k is None:
            self._k_xi = None
            return
        if int(k) < 1:
            raise ValueError(f"set_fixed_xi: k must be >= 1 or None, got {k}")
        k = int(k)
        if self._xi_pool is None or self._xi_pool.shape[0] < k:
            gen = torch.Generator().manual_seed(self._xi_set_seed)
            self._xi_pool = torch.randn(max(k, self.cfg.fixed_xi_start or 0), self.act_dim,
                                        generator=gen)
        self._k_xi = k

    def fixed_xi_size(self, env_steps: int) -> int | None:
        """K_xi after ``env_steps`` steps of all workers together: ceil of the linear schedule
        fixed_xi_start -> 1, so it reaches 1 exactly at fixed_xi_anneal_steps. None: off."""
        if self._xi_schedule is None:
            return None
        return max(1, math.ceil(self._xi_schedule(env_steps) - 1e-9))

    def set_env_steps(self, env_steps: int) -> None:
        """Called by the rollout worker before each step with *its own* env-step count; the
        run-wide count is about ``num_workers`` times that (workers step at the same rate)."""
        k = self.fixed_xi_size(int(env_steps) * self.num_workers)
        if k is not None and k != self._k_xi:
            self.set_fixed_xi(k)

    def reset_noise(self, env_mask: np.ndarray | None = None) -> None:
        """Zero the OU state of the envs where ``env_mask`` [N] is True (episode starts); None:
        a new set of envs (of any number) starts, every process restarts."""
        if env_mask is None:
            self._ou = None
        if self._ou is None:
            return
        mask = torch.as_tensor(np.asarray(env_mask, dtype=bool))
        if mask.shape != (self._ou.shape[0],):
            raise ValueError(f"env_mask must be [{self._ou.shape[0]}] bools, "
                             f"got {tuple(mask.shape)}")
        self._ou[mask] = 0.0

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """obs [N, obs_dim] -> actions [N, act_dim] float32 in [-1, 1]."""
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if o.dim() != 2 or o.shape[1] != self.obs_dim:
            raise ValueError(f"obs must be [N, {self.obs_dim}], got {tuple(o.shape)}")
        n = o.shape[0]
        if self._k_xi is None:
            xi = torch.randn(n, self.act_dim, generator=self.gen)  # [N, d]
        else:
            idx = torch.randint(self._k_xi, (n,), generator=self.gen)
            xi = self._xi_pool[idx]  # [N, d]
        a = self.sampler(o, xi)  # [N, d] in (-1, 1)
        if explore and self.cfg.exploration_noise == "ou":
            if self._ou is None or self._ou.shape[0] != n:
                self._ou = torch.zeros(n, self.act_dim)
            # x <- x + theta (0 - x) + sigma N(0, I)  (dt = 1)
            self._ou += -self.cfg.ou_theta * self._ou + self.cfg.ou_sigma * torch.randn(
                n, self.act_dim, generator=self.gen)
            a = (a + self._ou).clamp_(-1.0, 1.0)
        return a.numpy().astype(np.float32, copy=False)
