"""Soft Q network Q(s, a) and sampling network a = tanh(f(xi; s)) (paper Sec. 3.3, App. D.1).

Both are ReLU MLPs on concat(state, x). The first Linear is stored split into a state part and an
x part, which is the same function as one Linear on the concatenation (and is initialised like
one: fan_in = state_dim + x_dim), but lets a batch of P particles per state reuse the state's share
of the first layer: [B, obs] @ W_s is computed once and broadcast over [B, P, x_dim] @ W_x.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _relu_grad(grad: torch.Tensor, relu_out: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.threshold_backward(grad, relu_out, 0.0)


class SplitInputMLP(nn.Module):
    """y = MLP(concat(s, x)); s [..., state_dim], x [..., x_dim] or [..., P, x_dim] (broadcast).

    Layer 1 is W = [w_state | w_x^T] on concat(s, x): ``w_state`` [H, state_dim] and ``w_x``
    [x_dim, H] (transposed), ``b_in`` [H].
    """

    def __init__(self, state_dim: int, x_dim: int, hidden_sizes: list[int], out_dim: int) -> None:
        super().__init__()
        if state_dim < 1 or x_dim < 1 or out_dim < 1:
            raise ValueError(f"bad network dims: state {state_dim}, x {x_dim}, out {out_dim}")
        sizes = [int(h) for h in hidden_sizes]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"hidden_sizes must be a non-empty list of positive ints, got {sizes}")
        self.state_dim, self.x_dim, self.out_dim = state_dim, x_dim, out_dim
        self.w_state = nn.Parameter(torch.empty(sizes[0], state_dim))
        # Stored transposed, [x_dim, H]: autograd's weight gradient is then x^T G ([d, N] @ [N, H]),
        # ~6x faster on CPU than the [H, N] @ [N, d] product a Linear weight gets.
        self.w_x = nn.Parameter(torch.empty(x_dim, sizes[0]))
        self.b_in = nn.Parameter(torch.empty(sizes[0]))
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(sizes[-1], out_dim)
        # nn.Linear's default init for the unsplit first layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        bound = 1.0 / math.sqrt(state_dim + x_dim)
        for p in (self.w_state, self.w_x, self.b_in):
            nn.init.uniform_(p, -bound, bound)

    def first_layer(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation of layer 1: s W_s^T + b (once per state) + x W_x^T (per particle)."""
        if s.shape[-1] != self.state_dim or x.shape[-1] != self.x_dim:
            raise ValueError(f"expected state [..., {self.state_dim}] and x [..., {self.x_dim}], "
                             f"got {tuple(s.shape)} and {tuple(x.shape)}")
        hs = F.linear(s, self.w_state, self.b_in)  # [B, H]
        if x.dim() == s.dim() + 1:
            hs = hs.unsqueeze(-2)  # [B, 1, H], broadcast over particles
        elif x.dim() != s.dim():
            raise ValueError(f"x must have the state's rank or one more (particles); got state "
                             f"{tuple(s.shape)}, x {tuple(x.shape)}")
        return torch.matmul(x, self.w_x).add_(hs)  # [B, (P,) H]; add_ needs no saved input

    def hidden_features(self, s: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU activations of every hidden layer (in-place ReLU: no extra buffers)."""
        hs = [self.first_layer(s, x).relu_()]
        for layer in self.hidden:
            hs.append(layer(hs[-1]).relu_())
        return hs

    def forward(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden_features(s, x)[-1])  # [B, (P,) out_dim]


class SoftQNetwork(SplitInputMLP):
    """Q(s, a) -> [B] for a [B, act_dim], or [B, P] for a [B, P, act_dim]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int]) -> None:
        super().__init__(obs_dim, act_dim, hidden_sizes, 1)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return super().forward(s, a).squeeze(-1)

    @torch.no_grad()
    def value_and_action_grad(self, s: torch.Tensor, a: torch.Tensor, need_value: bool = True
                              ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Q(s, a) [B, P] (None if not ``need_value``) and dQ/da [B, P, act_dim] by an explicit
        backward pass (no autograd).

        For a ReLU MLP, dQ/da = W_a^T D_1 W_2^T D_2 ... w_out with D_l = diag(pre_l > 0); no
        parameter gradients are formed, only the input-gradient chain.
        """
        hs = self.hidden_features(s, a)  # [B, P, H_l] each
        q = self.out(hs[-1]).squeeze(-1) if need_value else None  # [B, P]
        # threshold_backward(g, h, 0) = g * (h > 0): ReLU's own backward kernel, no bool mask.
        g = _relu_grad(self.out.weight[0].expand_as(hs[-1]), hs[-1])  # dQ/dpre_L [B, P, H_L]
        for layer, h in zip(reversed(self.hidden), reversed(hs[:-1]), strict=True):
            g = _relu_grad(g @ layer.weight, h)  # dQ/dpre_{l-1} [B, P, H_{l-1}]
        # g W_a^T with W_a^T stored as [act_dim, H]: a Linear, the fast layout for narrow outputs.
        return q, F.linear(g, self.w_x)  # [B, P], [B, P, act_dim]


class SamplingNetwork(SplitInputMLP):
    """a = tanh(u), u = f(xi; s) with xi ~ N(0, I) of the action's dimension (Sec. 3.3)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int]) -> None:
        super().__init__(obs_dim, act_dim, hidden_sizes, act_dim)

    def pre_squash(self, s: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """u = f(xi; s) [B, (P,) act_dim], the unsquashed output SVGD moves."""
        return super().forward(s, xi)

    def forward(self, s: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pre_squash(s, xi))
