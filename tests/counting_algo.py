"""A counting algorithm for runtime tests (TorchRL's habit): the learner's weights are its update
count, and the policy's action reveals the weights it acts with, so a transition in replay
shows which published weights produced it. Loaded by config as
``algo: tests.counting_algo:SPEC`` (importable in Ray workers too)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from agents.registry import AlgorithmSpec


@dataclass
class CountingConfig:
    gamma: float = 0.99
    fail_at_update: int = 0  # > 0: that update raises half done (counted, not finished)


class CountingLearner:
    def __init__(self, cfg, observation_space, action_space, device="cpu", seed=0):
        self.num_updates = 0
        self.fail_at_update = cfg.fail_at_update

    def update(self, batch):
        self.num_updates += 1
        if self.num_updates == self.fail_at_update:
            raise RuntimeError(f"update {self.num_updates} failed half done")
        return {"loss/q": float(len(batch["obs"]))}

    def get_weights(self):
        return {"stamp": torch.tensor(float(self.num_updates))}

    def state_dict(self):
        return {"num_updates": self.num_updates}

    def load_state_dict(self, state):
        self.num_updates = int(state["num_updates"])


class CountingPolicy:
    """Action = [weight stamp, worker index]."""

    def __init__(self, cfg, observation_space, action_space, seed=0, worker_index=0,
                 num_workers=1):
        self.stamp, self.worker_index = -1.0, worker_index

    def act(self, obs, explore):
        out = np.empty((len(obs), 2), dtype=np.float32)
        out[:, 0], out[:, 1] = self.stamp, self.worker_index
        return out

    def set_weights(self, weights):
        self.stamp = float(weights["stamp"])


SPEC = AlgorithmSpec(name="counting", config_cls=CountingConfig, make_learner=CountingLearner,
                     make_policy=CountingPolicy, on_policy=False)
