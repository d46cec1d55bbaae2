"""Learner runner: wraps an algorithm's learner with weight versions and metric averaging.

Plain class used inline and inside the Ray learner actor (``distributed.ray_actors``). Weights
are published as (version, CPU tensor dict); a worker re-loads them only when the version moved.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import torch

from agents.registry import get_algorithm
from distributed.metrics import MetricAverager
from envs import make_env


def probe_spaces(cfg: Any) -> tuple[gym.Space, gym.Space]:
    """Observation and action spaces of the configured env (one throwaway instance)."""
    env = make_env(cfg.env.id, seed=0, max_episode_steps=cfg.env.max_episode_steps,
                   **cfg.env.kwargs)
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces


class TornLearnerState(RuntimeError):
    """The learner's update raised part way: its state (DDPG's critic stepped, its actor not; an
    optimizer half through its parameters) is no state a run ever had, so it is not saved."""


class LearnerRunner:
    def __init__(self, cfg: Any, observation_space: gym.Space, action_space: gym.Space,
                 device: str | None = None):
        torch.set_num_threads(max(1, cfg.runtime.num_threads))
        self.cfg = cfg
        self.spec = get_algorithm(cfg.algo)
        self.learner = self.spec.make_learner(cfg.agent, observation_space, action_space,
                                              device=device or cfg.runtime.device,
                                              seed=cfg.run.seed)
        self.version = 0
        self.updates = 0
        self.metrics = MetricAverager()
        self._rate_t = time.perf_counter()
        self._rate_updates = 0
        self.torn: str | None = None  # what cut an update short, if one was

    def update(self, batch: dict) -> dict[str, float]:
        try:
            metrics = self.learner.update(batch)
        except BaseException as exc:  # a KeyboardInterrupt no handler held back too
            self.torn = f"{type(exc).__name__} in update {self.updates + 1}"
            raise
        self.updates += 1
        self.metrics.add(metrics)
        return metrics

    def publish(self) -> tuple[dict[str, torch.Tensor], int]:
        """New weights and their version number (bumped on every call)."""
        self.version += 1
        return self.learner.get_weights(), self.version

    def current(self) -> tuple[dict[str, torch.Tensor], int]:
        """Weights under the current version, without bumping it (initial sync, resume)."""
        return self.learner.get_weights(), self.version

    def should_publish(self) -> bool:
        return self.updates % max(1, self.cfg.runtime.weight_publish_interval) == 0

    def pop_metrics(self) -> dict[str, float]:
        now = time.perf_counter()
        out = self.metrics.pop()
        out["train/updates_per_s"] = (self.updates - self._rate_updates) / max(now - self._rate_t,
                                                                               1e-9)
        out["train/updates"] = float(self.updates)
        out["weights/version"] = float(self.version)
        self._rate_t, self._rate_updates = now, self.updates
        return out

    def state_dict(self) -> dict[str, Any]:
        if self.torn is not None:
            raise TornLearnerState(f"the learner stopped part way through an update "
                                   f"({self.torn})")
        return {"learner": self.learner.state_dict(), "version": self.version,
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.version, self.updates = int(state["version"]), int(state["updates"])
        self._rate_updates = self.updates
        self.torn = None


@contextlib.contextmanager
def cpu_copy_quietly() -> Iterator[None]:
    """Around building a throwaway CPU copy of a learner trained elsewhere (the --init-from fit
    check, the Ray driver's pictures, softq eval): its warnings that CUDA graphs run eagerly and
    that the RNG state came from another device type describe the copy, not the run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="SQLConfig.cuda_graphs needs a CUDA device")
        warnings.filterwarnings("ignore", message="SQL learner: the checkpoint's RNG state")
        yield
