"""Replay server: a replay buffer behind a rate limiter, with throughput stats.

A plain class: inline mode calls it directly. ``insert``/``sample`` never block: they return
False/None when the rate limiter says wait. The Ray runtime's actor is its subclass ReplayShard
(distributed/replay_shard.py), whose callers wait inside the actor's event loop instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from distributed.rate_limiter import RateLimiter
from distributed.replay_buffer import ReplayBuffer
from distributed.seeding import derived_seeds


@dataclass(frozen=True)
class ReplaySettings:
    """The run's settings a replay server uses, as plain numbers: a Ray shard actor is sent
    these, not the Config, whose classes would have its process import torch (most of an
    actor's start-up time). ``gamma``: the agent's, for the frame replay's n-step returns."""

    capacity: int
    shards: int
    batch_size: int
    updates_per_step: float
    min_size: int
    rate_tolerance: float
    n_step: int
    gamma: float | None
    seed: int

    @classmethod
    def of(cls, cfg: Any) -> ReplaySettings:
        agent_n = getattr(cfg.agent, "n_step", cfg.replay.n_step)
        if agent_n != cfg.replay.n_step:  # the collector/replay fold n steps; the agent must agree
            raise ValueError(f"agent.n_step={agent_n} but replay.n_step={cfg.replay.n_step}: set "
                             "both to the same n")
        r = cfg.replay
        return cls(capacity=r.capacity, shards=r.shards, batch_size=r.batch_size,
                   updates_per_step=r.updates_per_step, min_size=r.min_size,
                   rate_tolerance=r.rate_tolerance, n_step=r.n_step,
                   gamma=getattr(cfg.agent, "gamma", None), seed=cfg.run.seed)


def make_buffer(settings: ReplaySettings, frame_replay: bool, seed: int, num_shards: int = 1,
                frame_stack: int = 4) -> Any:
    """One shard's buffer: 1/num_shards of the capacity; a frame buffer rebuilds stacks of
    ``frame_stack`` frames (the env's observation has that many)."""
    capacity = settings.capacity // max(1, num_shards)
    if frame_replay:
        from distributed.frame_replay import FrameReplayBuffer

        if settings.gamma is None:
            raise ValueError("the frame replay folds n-step returns: the agent needs a gamma")
        return FrameReplayBuffer(capacity, n_step=settings.n_step, gamma=settings.gamma,
                                 stack=frame_stack, seed=seed)
    return ReplayBuffer(capacity, seed=seed)


def transitions_in(chunk: dict[str, np.ndarray]) -> int:
    """Transitions a chunk adds: its step rows for a frame chunk (episode-start rows hold only
    frames), else its rows. The rate limiter counts these, so the update-to-data ratio is per
    env step in both buffers."""
    if "is_step" in chunk:
        return int(np.count_nonzero(chunk["is_step"]))
    return len(chunk["action"]) if "action" in chunk else len(next(iter(chunk.values())))


def shard_of_worker(worker_index: int, num_shards: int) -> int:
    """The replay shard a rollout worker writes to (Ray mode): workers take the shards in turn."""
    return worker_index % num_shards


def writers_per_shard(num_workers: int, num_shards: int) -> list[int]:
    """How many rollout workers write to each shard."""
    counts = [0] * num_shards
    for i in range(num_workers):
        counts[shard_of_worker(i, num_shards)] += 1
    return counts


def replay_seed(run_seed: int, shard_index: int) -> int:
    """Seed of a replay shard's sampling, a stream of its own: ``run_seed * 7919 + shard`` made
    shard 0 of a run with seed 0 draw from env 0's reset stream (its seed is 0 too)."""
    return derived_seeds(run_seed, shard_index, 0x4E91)[0]


class ReplayServer:
    """One replay shard. ``cfg``: the run's Config, or its ReplaySettings (what the Ray runtime
    sends a shard actor); ``num_shards``: how many share the capacity and min_size (None: the
    run's replay.shards; inline mode runs one server, 1); ``frame_stack``: frames per
    observation, for the frame replay."""

    def __init__(self, cfg: Any, frame_replay: bool = False, shard_index: int = 0,
                 chunk_size: int = 1, num_shards: int | None = None, frame_stack: int = 4):
        rs = cfg if isinstance(cfg, ReplaySettings) else ReplaySettings.of(cfg)
        shards = max(1, rs.shards if num_shards is None else num_shards)
        self.buffer = make_buffer(rs, frame_replay, seed=replay_seed(rs.seed, shard_index),
                                  num_shards=shards, frame_stack=frame_stack)
        self.batch_size = rs.batch_size
        self.limiter = RateLimiter.for_updates(
            rs.updates_per_step, rs.batch_size, min_size=max(1, rs.min_size // shards),
            tolerance=rs.rate_tolerance, chunk_size=chunk_size)
        self._t0 = time.perf_counter()
        self._last = (self._t0, 0, 0)  # time, inserts, samples at the last stats() call
        self._stopped = False  # the run has its env steps: chunks are dropped

    def insert(self, chunk: dict[str, np.ndarray] | None, force: bool = False) -> bool:
        """Add a chunk; False (nothing stored) when the limiter wants the inserter to wait."""
        if chunk is None or self._stopped:
            return True
        n = transitions_in(chunk)
        if not force and not self.limiter.can_insert(n):
            return False
        self.buffer.add(chunk)
        self.limiter.record_insert(n)
        return True

    def stop_inserts(self) -> None:
        """The run has taken its env steps and the learner trains no more: accept and drop
        every chunk from now on, so that workers the rate limiter holds back return instead of
        waiting for a learner that will not sample again (their steps are past the budget)."""
        self._stopped = True

    def sample(self, batch_size: int | None = None, exact: bool = False
               ) -> dict[str, np.ndarray] | None:
        """One batch, or None when the limiter wants the learner to wait. ``exact``: only up to
        the target ratio, not its tolerance band (inline mode)."""
        b = batch_size or self.batch_size
        allowed = self.limiter.on_target(b) if exact else self.limiter.can_sample(b)
        if not allowed:
            return None
        self.limiter.record_sample(b)
        return self.buffer.sample(b)

    def sample_many(self, count: int, batch_size: int | None = None) -> list[dict[str, np.ndarray]]:
        """Up to ``count`` batches in one call (saves round trips for a remote learner)."""
        out = []
        for _ in range(count):
            batch = self.sample(batch_size)
            if batch is None:
                break
            out.append(batch)
        return out

    def rewind_samples(self, samples: int) -> None:
        """Count only ``samples`` drawn so far: a replacement learner resumed from a checkpoint
        taken at that count redoes the updates the dead one made since (the limiter holds the
        workers until it has), so the run keeps its update-to-data ratio."""
        self.limiter.samples = min(self.limiter.samples, int(samples))
        t, inserts, drawn = self._last
        self._last = (t, inserts, min(drawn, self.limiter.samples))  # no negative rate

    def size(self) -> int:
        return len(self.buffer)

    def stats(self) -> dict[str, float]:
        now = time.perf_counter()
        t, ins, smp = self._last
        dt = max(now - t, 1e-9)
        self._last = (now, self.limiter.inserts, self.limiter.samples)
        return {
            "replay/size": float(len(self.buffer)),
            "replay/inserts_per_s": (self.limiter.inserts - ins) / dt,
            "replay/samples_per_s": (self.limiter.samples - smp) / dt,
            "replay/samples_per_insert": self.limiter.ratio(),
            "replay/total_inserts": float(self.limiter.inserts),
            "replay/total_samples": float(self.limiter.samples),
            "replay/counted_inserts": float(self.limiter.counted_inserts()),
        }

    def state_dict(self, with_contents: bool) -> dict[str, Any]:
        state: dict[str, Any] = {"limiter": self.limiter.state_dict()}
        if with_contents:
            state["buffer"] = self.buffer.state_dict()
        return state

    @staticmethod
    def lost_state() -> dict[str, Any]:
        """The state saved for a shard that died (its contents are gone): it resumes empty,
        refilling to its share of min_size, as a shard saved without contents does."""
        return {"limiter": {"inserts": 0, "samples": 0}, "lost": True}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
            self.limiter.load_state_dict(state["limiter"])
        else:  # contents not saved: start the ratio afresh, refilling to min_size first
            self.limiter.load_state_dict({"inserts": 0, "samples": 0})
