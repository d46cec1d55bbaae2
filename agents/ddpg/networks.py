"""DDPG actor mu(s) = tanh(MLP(s)) in [-1, 1]^d and critic Q(s, a) = MLP([s, a]) (ReLU MLPs,
App. D.1 sizes)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def box_dims(observation_space: gym.Space, action_space: gym.Space) -> tuple[int, int]:
    """(obs_dim, act_dim) of flat Box spaces; the action box must be [-1, 1]^d (tanh actor)."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"DDPG needs a flat Box observation space, got {observation_space}")
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"DDPG needs a flat Box action space, got {action_space}")
    if not (np.all(action_space.low == -1.0) and np.all(action_space.high == 1.0)):
        raise ValueError(f"DDPG needs actions scaled to [-1, 1] (envs.make_env rescales), got "
                         f"low={action_space.low}, high={action_space.high}")
    return int(observation_space.shape[0]), int(action_space.shape[0])


class MLP(nn.Module):
    """ReLU MLP; the output layer starts uniform in [-final_init, final_init]."""

    def __init__(self, in_dim: int, hidden_sizes: list[int], out_dim: int,
                 final_init: float) -> None:
        super().__init__()
        sizes = [in_dim, *[int(h) for h in hidden_sizes]]
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(sizes[-1], out_dim)
        nn.init.uniform_(self.out.weight, -final_init, final_init)
        nn.init.uniform_(self.out.bias, -final_init, final_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = F.relu(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, self.out.weight, self.out.bias)


class Actor(MLP):
    """mu(s) [B, act_dim] in [-1, 1] for s [B, obs_dim]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int],
                 final_init: float = 3e-3) -> None:
        super().__init__(obs_dim, hidden_sizes, act_dim, final_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(super().forward(obs))


class Critic(MLP):
    """Q(s, a) [B] for s [B, obs_dim], a [B, act_dim]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int],
                 final_init: float = 3e-3) -> None:
        super().__init__(obs_dim + act_dim, hidden_sizes, 1, final_init)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.cat([obs, action], dim=-1)).squeeze(-1)
