"""Ring buffer and rate limiter against brute-force references."""

from pathlib import Path

import numpy as np
import pytest
import torch

from distributed.checkpoint import arrays_as_tensors
from distributed.rate_limiter import RateLimiter
from distributed.replay_buffer import ReplayBuffer


def _chunk(start, n):
    ids = np.arange(start, start + n)
    return {"obs": np.stack([ids, -ids], axis=1).astype(np.float32), "action": ids.astype(np.int64)}


def test_ring_buffer_keeps_exactly_the_newest_capacity_rows():
    buf = ReplayBuffer(capacity=10, seed=0)
    kept = []
    for start, n in [(0, 3), (3, 4), (7, 6), (13, 25), (38, 1)]:
        buf.add(_chunk(start, n))
        kept = (kept + list(range(start, start + n)))[-10:]
    assert len(buf) == 10 and buf.total_inserted == 39
    batch = buf.sample(2000)
    assert set(batch["action"].tolist()) == set(kept)
    # rows stay consistent across keys
    np.testing.assert_array_equal(batch["obs"][:, 0], batch["action"])
    np.testing.assert_array_equal(batch["obs"][:, 1], -batch["action"])


def test_sampling_is_uniform():
    buf = ReplayBuffer(capacity=8, seed=1)
    buf.add(_chunk(0, 8))
    counts = np.bincount(buf.sample(80_000)["action"], minlength=8)
    # each of 8 rows: mean 10000, std ~ 94; 6 sigma bound
    assert np.all(np.abs(counts - 10_000) < 600)


def test_state_dict_round_trip_is_exact_and_weights_only_loadable(tmp_path):
    buf = ReplayBuffer(capacity=7, seed=3)
    buf.add(_chunk(0, 5))
    buf.add(_chunk(5, 6))
    torch.save(arrays_as_tensors(buf.state_dict()), tmp_path / "r.pt")  # as a checkpoint
    other = ReplayBuffer(capacity=7, seed=99)
    other.load_state_dict(torch.load(tmp_path / "r.pt", weights_only=True))
    assert len(other) == 7 and other.total_inserted == 11
    for a, b in zip([buf.sample(5) for _ in range(3)], [other.sample(5) for _ in range(3)]):
        np.testing.assert_array_equal(a["action"], b["action"])


def test_shape_mismatch_is_an_error():
    buf = ReplayBuffer(capacity=4)
    buf.add(_chunk(0, 2))
    with pytest.raises(ValueError, match="obs"):
        buf.add({"obs": np.zeros((2, 3), np.float32), "action": np.zeros(2, np.int64)})


@pytest.mark.parametrize("utd,tol", [(1.0, 0.1), (0.25, 0.05), (4.0, 0.2)])
def test_rate_limiter_holds_samples_per_insert_within_tolerance(utd, tol):
    """Random interleaving of an eager inserter and an eager sampler: whatever order they try,
    the realised ratio stays inside the band the limiter promises."""
    rng = np.random.default_rng(0)
    batch, chunk, min_size = 32, 4, 100
    lim = RateLimiter.for_updates(utd, batch, min_size, tol, chunk_size=chunk)
    spi = utd * batch
    for _ in range(20_000):
        if rng.random() < 0.5:
            if lim.can_insert(chunk):
                lim.record_insert(chunk)
        elif lim.can_sample(batch):
            lim.record_sample(batch)
        counted = max(0, lim.inserts - min_size)
        assert lim.samples <= spi * (1 + tol) * counted + lim.slack
        assert lim.samples >= spi * (1 - tol) * counted - lim.slack - spi * chunk
    assert lim.inserts > 1000  # neither side starved
    assert abs(lim.ratio() / spi - 1) < tol + 0.02


def test_rate_limiter_never_samples_before_min_size():
    lim = RateLimiter.for_updates(1.0, 8, min_size=50, tolerance=0.1)
    lim.record_insert(49)
    assert not lim.can_sample(8)
    lim.record_insert(1)
    assert lim.can_sample(8)


def test_shards_split_the_capacity_and_sample_their_own_indices():
    """replay.capacity is the run's total: k shards hold capacity // k each (not k times the
    memory), and shards seeded apart draw different batches from the same contents."""
    from distributed.replay_server import ReplayServer
    from launch.config import load_config

    cfg = load_config("multigoal-quick", ["replay.capacity=1000", "replay.min_size=10",
                                          "replay.batch_size=8"])
    shards = [ReplayServer(cfg, shard_index=i, num_shards=4) for i in range(2)]
    assert [s.buffer.capacity for s in shards] == [250, 250]
    assert ReplayServer(cfg, num_shards=1).buffer.capacity == 1000
    rng = np.random.default_rng(0)
    chunk = {"obs": rng.normal(size=(100, 2)).astype(np.float32),
             "action": rng.normal(size=(100, 2)).astype(np.float32),
             "reward": np.arange(100, dtype=np.float32),
             "next_obs": rng.normal(size=(100, 2)).astype(np.float32),
             "discount": np.ones(100, np.float32)}
    for s in shards:
        s.buffer.add(chunk)
    first, second = (s.buffer.sample(8)["reward"] for s in shards)
    assert not np.array_equal(first, second)


def test_a_stopped_server_drops_chunks_the_limiter_would_hold_back():
    """At the end of a Ray run the learner trains no more: workers that the rate limiter holds
    back waited for it until the driver's 10 s timeout. A stopped server accepts (and drops)
    their chunks, so they return; nothing more is stored or counted."""
    from distributed.replay_server import ReplayServer
    from launch.config import load_config

    cfg = load_config("multigoal-quick", ["replay.min_size=10", "replay.batch_size=8",
                                          "replay.rate_tolerance=0"])
    server = ReplayServer(cfg, chunk_size=4, num_shards=1)
    chunk = {k: np.zeros((4, 2) if k in ("obs", "next_obs", "action") else 4, np.float32)
             for k in ("obs", "action", "reward", "next_obs", "discount")}
    while server.insert(chunk):  # no sampling: the limiter soon holds the inserter back
        pass
    size, stats = server.size(), server.stats()
    server.stop_inserts()
    assert server.insert(chunk)  # the worker's loop returns
    assert server.size() == size
    assert server.stats()["replay/total_inserts"] == stats["replay/total_inserts"]


def test_a_shards_sampling_stream_is_no_envs_reset_stream():
    """Run seed 0 gave replay shard 0 and worker 0's env 0 the same seed (0), so the replay's
    sample indices came from the stream env 0's resets drew from."""
    from distributed.replay_server import ReplayServer, replay_seed
    from distributed.rollout import worker_seed
    from launch.config import load_config

    for run_seed in range(4):
        env_seeds = {worker_seed(run_seed, w) + i for w in range(4) for i in range(8)}
        shard_seeds = {replay_seed(run_seed, k) for k in range(4)}
        assert len(shard_seeds) == 4 and not shard_seeds & env_seeds
    server = ReplayServer(load_config("multigoal-quick", ["run.seed=0"]))
    seeded_as_env_0 = ReplayBuffer(server.buffer.capacity, seed=worker_seed(0, 0))
    for buffer in (server.buffer, seeded_as_env_0):
        buffer.add(_chunk(0, 1000))
    drawn = server.buffer.sample(8)["action"]
    assert not np.array_equal(drawn, seeded_as_env_0.sample(8)["action"])


def test_a_shard_actors_process_needs_no_torch(tmp_path):
    """A Ray shard or weight-store actor's process imports its module and unpickles what the
    runtime sends it (its settings; on resume, its checkpointed state as arrays): none of that
    may import torch (~1.5 s of every such actor's start, most of a short run's time on two
    cores). A fresh interpreter, since this one has torch."""
    import pickle
    import subprocess
    import sys

    from distributed.checkpoint import tensors_as_arrays
    from distributed.replay_server import ReplayServer, ReplaySettings
    from launch.config import load_config

    settings = ReplaySettings.of(load_config("pong-dqn"))
    saved = ReplayServer(settings, frame_replay=True).state_dict(with_contents=True)
    torch.save(arrays_as_tensors(saved), tmp_path / "replay.pt")  # as a checkpoint holds it
    state = tensors_as_arrays(torch.load(tmp_path / "replay.pt", weights_only=True))
    code = ("import pickle, sys\n"
            "import distributed.replay_shard, distributed.weight_store\n"
            "from distributed.replay_shard import ReplayShard\n"
            "settings, state = pickle.loads(sys.stdin.buffer.read())\n"
            "shard = ReplayShard(settings, frame_replay=True)\n"
            "shard.load_state_dict(state)\n"
            "shard.insert(None)\n"
            "state = shard.state_dict(with_contents=True)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'gymnasium', 'launch', 'agents')))\n")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps((settings, state)),
                         capture_output=True, cwd=Path(__file__).resolve().parents[1],
                         check=True)
    assert out.stdout.decode().strip() == "[]", out.stdout.decode()
