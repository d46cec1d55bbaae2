"""The Ray actor body of a replay shard: a ReplayServer whose callers wait *inside* the actor.

With ``replay.rate_tolerance`` 0 the rate limiter holds rollout workers back most of the time
(env steps are much cheaper than updates). Workers that polled ``insert`` every 5 ms re-sent
their chunk on each try: on a 2-core machine the two workers, the shard and Ray's own processes
spent about a core on those refused calls, and the learner ran at ~70% of one. Here a refused
insert (or a sample the limiter holds back) waits on an asyncio event that every accepted insert
and every drawn batch sets, so each chunk crosses to the shard once and the learner is woken as
soon as its next batch may be drawn.

Ray runs an actor with ``async`` methods as an asyncio actor: every method, the plain ones
included, runs on its one event-loop thread, so the limiter and buffer are never touched by two
calls at once; a waiting call only yields at its ``await``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from distributed.replay_server import ReplayServer

# a missed wake-up (there should be none) costs at most this much
_RECHECK_S = 0.1


class ReplayShard(ReplayServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._moved = asyncio.Event()  # set, then replaced, on each change of counts or stop
        self._learner_epoch = 0  # bumped when a replacement learner takes over (rewind_samples)

    def _wake(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()  # the next change sets a fresh one: none is ever cleared

    async def _wait_for_a_change(self, timeout_s: float) -> None:
        # the event of this moment, taken with no await after the caller's refused check: a
        # change sets it even before wait_for's task first runs (a shared event that every
        # refused caller cleared dropped that wake-up for the callers not yet waiting on it)
        moved = self._moved.wait()
        try:
            await asyncio.wait_for(moved, timeout=max(timeout_s, 0.0))
        except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11
            pass

    def insert(self, chunk: dict[str, np.ndarray] | None, force: bool = False) -> bool:
        stored = super().insert(chunk, force)
        if stored:
            self._wake()
        return stored

    def sample(self, batch_size: int | None = None, exact: bool = False
               ) -> dict[str, np.ndarray] | None:
        batch = super().sample(batch_size, exact)
        if batch is not None:
            self._wake()
        return batch

    def stop_inserts(self) -> None:
        super().stop_inserts()
        self._wake()  # held-back inserts return (their chunks dropped)

    def rewind_samples(self, samples: int) -> None:
        """Also ends the dead learner's requests still waiting here, undrawn: batches drawn for
        it after the rewind would be counted and never trained on."""
        super().rewind_samples(samples)
        self._learner_epoch += 1
        self._wake()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._wake()

    async def insert_when_allowed(self, chunk: dict[str, np.ndarray]) -> float:
        """Store ``chunk`` once the rate limiter lets it in; returns the seconds it waited."""
        t0 = time.perf_counter()
        while not self.insert(chunk):
            await self._wait_for_a_change(_RECHECK_S)
        return time.perf_counter() - t0

    async def sample_when_allowed(self, count: int, max_wait_s: float
                                  ) -> list[dict[str, np.ndarray]]:
        """Up to ``count`` batches, as ``sample_many``; when the limiter allows none yet, wait
        up to ``max_wait_s`` for the first (then [] if still none)."""
        deadline = time.perf_counter() + max_wait_s
        epoch = self._learner_epoch
        while True:
            if epoch != self._learner_epoch:  # its learner died and was replaced meanwhile
                return []
            batches = self.sample_many(count)
            left = deadline - time.perf_counter()
            if batches or left <= 0:
                return batches
            await self._wait_for_a_change(min(left, _RECHECK_S))
