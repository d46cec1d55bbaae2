"""ReplayShard, the Ray actor body of a replay shard: callers the rate limiter holds back wait in
the shard's event loop (one call each) and are woken by the insert or sample that lets them on.
Driven here with asyncio directly; the Ray runtime tests run it as the actor."""

import asyncio

import numpy as np
import pytest

from distributed import replay_shard
from distributed.replay_shard import ReplayShard
from launch.config import load_config

CHUNK = 4


def _shard(cls: type[ReplayShard] = ReplayShard) -> ReplayShard:
    cfg = load_config("multigoal-quick", ["replay.min_size=10", "replay.batch_size=8",
                                          "replay.rate_tolerance=0"])
    return cls(cfg, chunk_size=CHUNK, num_shards=1)


def _chunk(value: float) -> dict[str, np.ndarray]:
    return {k: np.full((CHUNK, 2) if k in ("obs", "next_obs", "action") else CHUNK, value,
                       np.float32)
            for k in ("obs", "action", "reward", "next_obs", "discount")}


class _CountingShard(ReplayShard):
    """Counts the insert attempts a waiting call makes (a 5 ms poll made ~60 in 0.3 s)."""
    attempts = 0

    def insert(self, chunk, force=False):  # noqa: ANN001, ANN202
        self.attempts += 1
        return super().insert(chunk, force)


def _fill_until_refused(shard: ReplayShard) -> int:
    while shard.insert(_chunk(0.0)):
        pass
    return shard.limiter.inserts


def test_a_held_back_insert_waits_in_the_shard_until_a_batch_is_drawn():
    shard = _shard(_CountingShard)
    inserts = _fill_until_refused(shard)

    async def scenario() -> tuple[float, int]:
        waiting = asyncio.create_task(shard.insert_when_allowed(_chunk(7.0)))
        await asyncio.sleep(0.3)
        assert not waiting.done() and shard.limiter.inserts == inserts  # held, nothing stored
        attempts_while_held = shard.attempts
        while not waiting.done():  # the learner draws until the limiter lets the chunk in
            assert shard.sample() is not None
            await asyncio.sleep(0)
        return await waiting, attempts_while_held

    waited, attempts = asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert shard.limiter.inserts == inserts + CHUNK
    assert np.count_nonzero(shard.buffer.state_dict()["data"]["reward"] == 7.0) == CHUNK
    assert waited >= 0.3
    # one try, then one per change (none came) or per 0.1 s re-check; not a busy poll
    assert attempts - (inserts // CHUNK + 1) <= 1 + 4


def test_a_waiting_sample_request_is_woken_by_the_insert_that_allows_it():
    shard = _shard()

    async def scenario() -> list:
        request = asyncio.create_task(shard.sample_when_allowed(4, max_wait_s=60.0))
        await asyncio.sleep(0.05)
        assert not request.done()  # below min_size: nothing may be drawn
        while not request.done():
            shard.insert(_chunk(1.0))
            await asyncio.sleep(0)
        return await request

    batches = asyncio.run(asyncio.wait_for(scenario(), timeout=10))  # not after 60 s
    assert 1 <= len(batches) <= 4
    assert all(b["reward"].shape == (8,) for b in batches)
    assert shard.limiter.samples == 8 * len(batches)


def test_a_sample_request_returns_empty_after_its_wait_when_no_data_comes():
    shard = _shard()
    assert asyncio.run(shard.sample_when_allowed(4, max_wait_s=0.05)) == []
    assert shard.limiter.samples == 0


def test_stopping_inserts_releases_a_held_back_insert_and_drops_its_chunk():
    shard = _shard()
    inserts = _fill_until_refused(shard)
    size = shard.size()

    async def scenario() -> float:
        waiting = asyncio.create_task(shard.insert_when_allowed(_chunk(3.0)))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        shard.stop_inserts()
        return await waiting

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert shard.size() == size and shard.limiter.inserts == inserts


@pytest.mark.parametrize("max_wait_s", [0.0, -1.0])
def test_a_sample_request_without_wait_is_sample_many(max_wait_s):
    shard = _shard()
    for _ in range(4):
        shard.insert(_chunk(2.0))
    batches = asyncio.run(shard.sample_when_allowed(3, max_wait_s))
    assert len(batches) == 3 and shard.limiter.samples == 24


def test_a_dead_learners_waiting_request_draws_nothing_after_the_rewind():
    """A replacement learner rewinds the shard's sample count to the checkpoint it resumed from;
    a request of the dead one still waiting here must not then draw (and count) batches that
    no learner trains on."""
    shard = _shard()

    async def scenario() -> list:
        orphan = asyncio.create_task(shard.sample_when_allowed(4, max_wait_s=60.0))
        await asyncio.sleep(0.05)
        shard.rewind_samples(0)
        for _ in range(4):  # data arrives: a live request would draw now
            shard.insert(_chunk(1.0))
        return await orphan

    assert asyncio.run(asyncio.wait_for(scenario(), timeout=10)) == []
    assert shard.limiter.samples == 0
    assert len(asyncio.run(shard.sample_when_allowed(4, max_wait_s=0.0))) == 4  # a new request


def test_a_change_wakes_a_request_that_had_not_yet_started_waiting(monkeypatch):
    """A sample request is refused (nothing yet), a worker's chunks then allow it, and a held-back
    insert is refused, all before the request's wait has begun: the request still draws at
    once. (When every refused call cleared one shared event, the insert's clear dropped the
    request's wake-up and it slept until the re-check, 0.1 s a time.)"""
    monkeypatch.setattr(replay_shard, "_RECHECK_S", 60.0)  # a lost wake-up is a hang here
    shard = _shard()

    async def fill() -> None:
        while shard.insert(_chunk(1.0)):
            pass

    async def scenario() -> list:
        request = asyncio.create_task(shard.sample_when_allowed(4, max_wait_s=60.0))
        asyncio.create_task(fill())
        held = asyncio.create_task(shard.insert_when_allowed(_chunk(2.0)))
        batches = await request
        await held  # the request's draw lets it in
        return batches

    assert len(asyncio.run(asyncio.wait_for(scenario(), timeout=10))) == 4
