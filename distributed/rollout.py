"""Rollout worker: a vector env and an inference-only policy producing transition chunks.

The same class runs in-process (inline mode) and as a Ray actor (``ray.remote(RolloutWorker)``);
it never imports Ray. Off-policy workers return replay chunks (n-step folded by an encoder);
on-policy workers return time-major rollouts of exactly ``T`` lockstep steps.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from agents.nstep import NStepAccumulator
from agents.registry import get_algorithm
from envs import make_vector_env


def uses_frame_replay(observation_space: Any) -> bool:
    """Image stacks (uint8, [stack, H, W]) go to the frame replay (each frame stored once)."""
    shape = getattr(observation_space, "shape", ())
    return getattr(observation_space, "dtype", None) == np.uint8 and len(shape) == 3


class EpisodeTracker:
    """Per-env running returns/lengths; finished episodes are kept until drained."""

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.finished: list[dict[str, float]] = []

    def step(self, reward: np.ndarray, done: np.ndarray, infos: dict[str, Any]) -> None:
        self.returns += reward
        self.lengths += 1
        raw = infos.get("raw_episode_return")
        raw_mask = infos.get("_raw_episode_return")
        for e in np.flatnonzero(done):
            episode = {"return": float(self.returns[e]), "length": float(self.lengths[e])}
            if raw is not None and raw_mask is not None and raw_mask[e]:
                episode["raw_return"] = float(raw[e])
            goal = infos.get("goal_index")
            if goal is not None:
                episode["goal_index"] = float(goal[e])
            self.finished.append(episode)
            self.returns[e], self.lengths[e] = 0.0, 0

    def drain(self) -> list[dict[str, float]]:
        out, self.finished = self.finished, []
        return out


class RolloutWorker:
    """Steps ``envs_per_worker`` envs with the current policy.

    Args:
        cfg: the run's Config (launch.config.Config; only read here).
        worker_index: 0..workers-1, seeds the envs and per-worker exploration.
    """

    def __init__(self, cfg: Any, worker_index: int = 0, num_workers: int = 1):
        torch.set_num_threads(1)
        self.cfg, self.worker_index = cfg, worker_index
        seed = cfg.run.seed * 10_007 + worker_index * 1_000
        self.num_envs = cfg.runtime.envs_per_worker
        self.env = make_vector_env(cfg.env.id, self.num_envs, seed,
                                   cfg.env.max_episode_steps, **cfg.env.kwargs)
        spec = get_algorithm(cfg.algo)
        self.on_policy = spec.on_policy
        policy_kwargs = {"worker_index": worker_index, "num_workers": num_workers}
        self.policy = spec.build_policy(cfg.agent, self.env.single_observation_space,
                                        self.env.single_action_space, seed=seed, **policy_kwargs)
        self.encoder = self._make_encoder()
        self.random_steps = cfg.run.random_steps // max(1, num_workers)
        self.env.action_space.seed(seed)
        self.weights_version = -1
        self.env_steps = 0
        self.episodes = EpisodeTracker(self.num_envs)
        self.obs, _ = self.env.reset(seed=seed)
        self._busy_s = 0.0

    def _make_encoder(self) -> Any:
        if self.on_policy:
            return None
        gamma, n = self.cfg.agent.gamma, self.cfg.replay.n_step
        if uses_frame_replay(self.env.single_observation_space):
            from distributed.frame_replay import FrameChunkEncoder

            return FrameChunkEncoder(self.num_envs)
        return NStepAccumulator(self.num_envs, n, gamma)

    # ------------------------------------------------------------------ weights
    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self.policy.set_weights(weights)
        self.weights_version = version

    def get_version(self) -> int:
        return self.weights_version

    # ------------------------------------------------------------------ stepping
    def _step(self, explore: bool = True) -> tuple[np.ndarray, ...]:
        if hasattr(self.policy, "set_env_steps"):
            self.policy.set_env_steps(self.env_steps)
        if self.env_steps < self.random_steps:
            action = self.env.action_space.sample()
        else:
            action = self.policy.act(self.obs, explore)
        next_obs, reward, terminated, truncated, infos = self.env.step(action)
        done = np.logical_or(terminated, truncated)
        true_next = next_obs
        if done.any():  # same-step autoreset: the final obs of finished episodes is in infos
            true_next = next_obs.copy()
            final = infos["final_obs"]
            for e in np.flatnonzero(done):
                true_next[e] = final[e]
            if hasattr(self.policy, "reset_noise"):
                self.policy.reset_noise(done)
            self.episodes.step(reward, done, infos.get("final_info", infos))
        else:
            self.episodes.step(reward, done, infos)
        obs = self.obs
        self.obs = next_obs
        self.env_steps += self.num_envs
        return obs, action, reward, true_next, terminated, truncated

    def collect(self, num_steps: int) -> dict[str, Any]:
        """Off-policy: ``num_steps`` vector steps -> {'chunk', 'episodes', 'env_steps', ...}."""
        start = time.perf_counter()
        chunks = []
        for _ in range(num_steps):
            out = self.encoder.push(*self._step())
            if out is not None:
                chunks.append(out)
        chunk = None
        if chunks:
            chunk = chunks[0] if len(chunks) == 1 else {
                k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        return self._report(chunk, num_steps, start)

    def collect_rollout(self, horizon: int) -> dict[str, Any]:
        """On-policy: ``horizon`` lockstep steps, time-major arrays (see agents.discrete)."""
        start = time.perf_counter()
        obs, act, rew, term, trunc, final = [], [], [], [], [], []
        for _ in range(horizon):
            o, a, r, nxt, te, tr = self._step()
            obs.append(o), act.append(a), rew.append(r), term.append(te), trunc.append(tr)
            done = np.logical_or(te, tr)[(...,) + (None,) * (nxt.ndim - 1)]
            final.append(np.where(done, nxt, 0).astype(nxt.dtype))
        obs.append(self.obs)
        rollout = {
            "obs": np.stack(obs), "action": np.stack(act), "reward": np.stack(rew),
            "terminated": np.stack(term), "truncated": np.stack(trunc),
            "final_obs": np.stack(final),
        }
        return self._report(rollout, horizon, start)

    def _report(self, data: Any, num_steps: int, start: float) -> dict[str, Any]:
        elapsed = time.perf_counter() - start
        return {
            "data": data,
            "episodes": self.episodes.drain(),
            "env_steps": num_steps * self.num_envs,
            "seconds": elapsed,
            "version": self.weights_version,
            "worker_index": self.worker_index,
        }

    def close(self) -> None:
        self.env.close()
