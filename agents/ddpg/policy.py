"""DDPG acting policy: a = clip(mu(s) + OU noise, -1, 1) while exploring, mu(s) otherwise."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from agents.base import Weights
from agents.ddpg.config import DDPGConfig
from agents.ddpg.networks import Actor, box_dims
from agents.noise import OrnsteinUhlenbeckNoise


class DDPGPolicy:
    """Inference-only actor for N environments; one OU process per environment (App. D.1)."""

    def __init__(self, cfg: DDPGConfig, observation_space: gym.Space, action_space: gym.Space,
                 seed: int = 0) -> None:
        self.obs_dim, self.act_dim = box_dims(observation_space, action_space)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = Actor(self.obs_dim, self.act_dim, cfg.hidden_sizes, cfg.final_layer_init)
        self.actor.requires_grad_(False).eval()
        self.noise = OrnsteinUhlenbeckNoise(self.act_dim, theta=cfg.ou_theta, sigma=cfg.ou_sigma,
                                            seed=seed)

    def set_weights(self, weights: Weights) -> None:
        """Load actor weights as returned by ``DDPGLearner.get_weights``."""
        self.actor.load_state_dict(weights)

    def reset_noise(self, mask: np.ndarray | None = None) -> None:
        """Restart the OU processes of the environments whose episode ended (mask [N])."""
        self.noise.reset(mask)

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """obs [N, obs_dim] -> actions [N, act_dim] (float32, in [-1, 1])."""
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"DDPGPolicy.act expects obs of shape [N, {self.obs_dim}], got "
                             f"{obs.shape}")
        with torch.inference_mode():
            action = self.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        if explore:
            action = np.clip(action + self.noise.sample(obs.shape[0]), -1.0, 1.0)
        return action.astype(np.float32, copy=False)
