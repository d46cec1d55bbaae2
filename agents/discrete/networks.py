"""Torsos and heads for discrete actions.

Image observations ``[C, 84, 84]`` uint8 go through the Nature-DQN conv torso (scaled by 1/255,
Mnih et al. 2015); vector observations (CartPole) through an MLP. ``make_torso`` picks one from
the observation space.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn


class NatureTorso(nn.Module):
    """conv 8x8/4 (32) -> 4x4/2 (64) -> 3x3/1 (64) -> fc 512, ReLU; input uint8 [B, C, 84, 84]."""

    def __init__(self, in_channels: int = 4, out_dim: int = 512,
                 input_hw: tuple[int, int] = (84, 84)):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.conv(torch.zeros(1, in_channels, *input_hw)).shape[1]  # 3136 at 84x84
        self.fc = nn.Sequential(nn.Linear(n_flat, out_dim), nn.ReLU())
        self.out_dim = out_dim
        # NHWC ("channels_last") conv weights and inputs: oneDNN's fastest layout on CPU (an update
        # at batch 32 on one thread: 37 -> 34 ms) and the tensor-core layout on CUDA. Only the
        # strides change; values, shapes and state_dict keys are the usual ones.
        self.conv.to(memory_format=torch.channels_last)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.contiguous(memory_format=torch.channels_last)  # [B, C, H, W] uint8, NHWC strides
        x = x.to(torch.float32).mul_(1.0 / 255.0)  # same strides, [0, 1]
        return self.fc(self.conv(x))  # [B, 512]


class MLPTorso(nn.Module):
    """Flatten -> (Linear, ReLU) per hidden size; input float [B, *obs_shape]."""

    def __init__(self, in_dim: int, hidden_sizes: Sequence[int]):
        super().__init__()
        if len(hidden_sizes) == 0:
            raise ValueError("hidden_sizes must name at least one layer")
        layers: list[nn.Module] = [nn.Flatten()]
        last = in_dim
        for h in hidden_sizes:
            layers += [nn.Linear(last, int(h)), nn.ReLU()]
            last = int(h)
        self.net = nn.Sequential(*layers)
        self.out_dim = last

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.to(self.net[1].weight.dtype))  # float64 obs -> the net's dtype


def is_image_space(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


def make_torso(observation_space: gym.Space, hidden_sizes: Sequence[int]) -> nn.Module:
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f"discrete agents need a Box observation space, got {observation_space}")
    if is_image_space(observation_space):
        c, h, w = observation_space.shape
        if h < 36 or w < 36:  # the smallest picture the three convolutions take
            last = " (channel-last [H, W, C]? put the channels first)" if w <= 4 < c else ""
            raise ValueError(f"uint8 picture observations go through the Nature-DQN convolutions, "
                             f"which need channel-first [C, H, W] with H, W >= 36; got "
                             f"{list(observation_space.shape)}{last}")
        return NatureTorso(c, 512, (h, w))
    return MLPTorso(int(np.prod(observation_space.shape)), hidden_sizes)


def num_actions(action_space: gym.Space) -> int:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"discrete agents need a Discrete action space, got {action_space}")
    return int(action_space.n)


class QNetwork(nn.Module):
    """Q(s, .) = head(torso(s)); output [B, A]."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 hidden_sizes: Sequence[int]):
        super().__init__()
        self.torso = make_torso(observation_space, hidden_sizes)
        self.head = nn.Linear(self.torso.out_dim, num_actions(action_space))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs))


class ActorCritic(nn.Module):
    """Shared torso (conv + first fc for images, §6.3) with a policy-logit and a value head.

    Returns ``(logits [B, A], value [B])``.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 hidden_sizes: Sequence[int]):
        super().__init__()
        self.torso = make_torso(observation_space, hidden_sizes)
        self.pi = nn.Linear(self.torso.out_dim, num_actions(action_space))
        self.v = nn.Linear(self.torso.out_dim, 1)
        # Small policy init: near-uniform pi at the start (common A2C practice).
        nn.init.orthogonal_(self.pi.weight, gain=0.01)
        nn.init.zeros_(self.pi.bias)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.torso(obs)
        return self.pi(h), self.v(h).squeeze(-1)


def build_seeded(factory, seed: int) -> nn.Module:
    """Run ``factory()`` under a forked RNG seeded with ``seed`` (no global side effect)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()
