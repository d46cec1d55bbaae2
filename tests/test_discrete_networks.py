"""The Nature-DQN torso's NHWC fast path computes exactly the textbook NCHW network."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from agents.discrete.networks import NatureTorso


def reference_forward(torso: NatureTorso, obs: torch.Tensor) -> torch.Tensor:
    """Mnih et al. 2015 in plain contiguous NCHW ops, with the torso's own parameters."""
    c1, c2, c3 = (torso.conv[i] for i in (0, 2, 4))
    x = obs.float() / 255.0
    x = F.relu(F.conv2d(x, c1.weight.contiguous(), c1.bias, stride=4))
    x = F.relu(F.conv2d(x, c2.weight.contiguous(), c2.bias, stride=2))
    x = F.relu(F.conv2d(x, c3.weight.contiguous(), c3.bias, stride=1))
    return F.relu(F.linear(x.reshape(x.shape[0], -1), torso.fc[0].weight, torso.fc[0].bias))


def test_nature_torso_matches_nchw_reference_values_and_gradients() -> None:
    torch.manual_seed(0)
    torso = NatureTorso(4, 512)
    obs = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    fast = torso(obs)
    ref = reference_forward(torso, obs)
    assert fast.shape == (5, 512)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)

    weight = torso.conv[0].weight
    (g_fast,) = torch.autograd.grad(fast.square().sum(), weight)
    (g_ref,) = torch.autograd.grad(reference_forward(torso, obs).square().sum(), weight)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-4)


def test_nature_torso_state_dict_is_layout_free() -> None:
    """Weights saved from the NHWC torso load into a plain NCHW copy and give the same outputs."""
    torch.manual_seed(1)
    torso = NatureTorso(4, 512)
    plain = NatureTorso(4, 512)
    plain.conv.to(memory_format=torch.contiguous_format)
    plain.load_state_dict(torso.state_dict())
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(plain(obs), torso(obs))
    assert all(p.is_contiguous() for p in plain.conv.parameters())
    assert torso.conv[0].weight.is_contiguous(memory_format=torch.channels_last)
