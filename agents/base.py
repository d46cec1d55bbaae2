"""Role interfaces shared by every algorithm (see DESIGN.md, "Contracts").

A *learner* owns networks, optimizers and targets and turns batches into updates.
A *policy* is the inference-only half a rollout worker holds: it acts and accepts weights.
Weights travel as a flat ``dict[str, torch.Tensor]`` of CPU tensors so that one ``ray.put``
serves every worker (the Ray runtime puts them as numpy views: distributed/ray_actors.py,
``weights_to_store``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

Weights = dict[str, torch.Tensor]
Batch = dict[str, np.ndarray]  # numpy arrays, leading dim B; see BATCH_KEYS below

# Off-policy transition batch (replay, n-step already folded in by the collector):
#   obs        [B, *obs_shape]   observation at t
#   action     [B, *act_shape]   action taken at t (float32 continuous, int64 discrete)
#   reward     [B]               sum_{k<n} gamma^k r_{t+k}  (n = 1 for plain transitions)
#   next_obs   [B, *obs_shape]   observation at t+n (bootstrap state)
#   discount   [B]               gamma^n if the episode did not terminate inside the window, else 0
BATCH_KEYS = ("obs", "action", "reward", "next_obs", "discount")


@runtime_checkable
class Learner(Protocol):
    def update(self, batch: Batch) -> dict[str, float]: ...

    def get_weights(self) -> Weights: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Policy(Protocol):
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray: ...

    def set_weights(self, weights: Weights) -> None: ...


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_tensor_batch(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    """numpy batch -> tensors on ``device`` (non-blocking when pinned)."""
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}


def obs_action_sets(obs: Any, actions: Any, obs_dim: int, act_dim: int, device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """obs [N, obs_dim] and P actions per state [N, P, act_dim] as float32 tensors on ``device``
    (the input of a critic's ``q_values``); other shapes are a ValueError naming both."""
    o = torch.as_tensor(np.asarray(obs, np.float32), device=device)
    a = torch.as_tensor(np.asarray(actions, np.float32), device=device)
    if o.dim() != 2 or a.dim() != 3 or a.shape[0] != o.shape[0] or a.shape[2] != act_dim \
            or o.shape[1] != obs_dim:
        raise ValueError(f"need obs [N, {obs_dim}] and actions [N, P, {act_dim}], "
                         f"got {tuple(o.shape)} and {tuple(a.shape)}")
    return o, a


def cpu_weights(module: torch.nn.Module, prefix: str = "") -> Weights:
    """Detached CPU copies of a module's parameters and buffers, keys prefixed."""
    return {prefix + k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
