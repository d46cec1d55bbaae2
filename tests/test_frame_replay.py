"""Frame replay returns exactly the n-step transitions a naive stacked buffer would, across
interleaved env streams of several workers, episode ends (terminal and truncation) and ring
wrap-around; persistence; memory per transition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.nstep import NStepAccumulator
from distributed.checkpoint import arrays_as_tensors
from distributed.frame_replay import FrameChunkEncoder, FrameReplayBuffer, concat_chunks

S, SHAPE, GAMMA = 4, (6, 5), 0.9


class FakeStackedEnvs:
    """N envs of random uint8 frames, stacked like FrameStackObservation; some episodes start
    with a padded stack (first frame repeated), others with S distinct frames."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.n, self.rng = n, rng
        self.obs = np.stack([self._start() for _ in range(n)])

    def _start(self) -> np.ndarray:
        if self.rng.random() < 0.5:
            return np.repeat(self.rng.integers(0, 256, (1, *SHAPE), dtype=np.uint8), S, 0)
        return self.rng.integers(0, 256, (S, *SHAPE), dtype=np.uint8)

    def step(self):
        new = self.rng.integers(0, 256, (self.n, 1, *SHAPE), dtype=np.uint8)
        next_obs = np.concatenate([self.obs[:, 1:], new], axis=1)  # true next obs
        u = self.rng.random(self.n)
        term, trunc = u < 0.06, (u >= 0.06) & (u < 0.12)
        reward = self.rng.normal(size=self.n)
        after = next_obs.copy()
        for e in np.flatnonzero(term | trunc):
            after[e] = self._start()
        return next_obs, reward, term, trunc, after


def _collect(steps: int, n_step: int, workers: int = 2, envs: int = 3, seed: int = 0):
    """Run the fake envs; return the encoder chunks (interleaved across workers, sometimes
    concatenated over steps) and the naive stacked n-step transitions keyed by obs bytes."""
    rng = np.random.default_rng(seed)
    sims = [FakeStackedEnvs(envs, rng) for _ in range(workers)]
    encs = [FrameChunkEncoder(envs, seed=seed * 10 + w) for w in range(workers)]
    accs = [NStepAccumulator(envs, n_step, GAMMA) for _ in range(workers)]
    pending: list[list[dict]] = [[] for _ in range(workers)]
    chunks, naive = [], {}
    for t in range(steps):
        for w in range(workers):
            obs = sims[w].obs
            action = rng.integers(0, 6, size=envs)
            next_obs, reward, term, trunc, after = sims[w].step()
            pending[w].append(encs[w].push(obs, action, reward, next_obs, term, trunc))
            out = accs[w].push(obs, action, reward, next_obs, term, trunc)
            if out is not None:
                for i in range(len(out["reward"])):
                    key = out["obs"][i].tobytes()
                    assert key not in naive
                    naive[key] = (t, out["action"][i], out["reward"][i],
                                  out["next_obs"][i].tobytes(), out["discount"][i])
            sims[w].obs = after
            if rng.random() < 0.5:  # ship 1 or several steps per chunk
                chunks.append(concat_chunks(pending[w]))
                pending[w] = []
    chunks += [concat_chunks(p) for p in pending if p]
    return chunks, naive


def _check_against_naive(batch: dict[str, np.ndarray], naive: dict) -> list[bytes]:
    keys = []
    assert batch["obs"].dtype == np.uint8 and batch["obs"].shape[1:] == (S, *SHAPE)
    for i in range(len(batch["reward"])):
        key = batch["obs"][i].tobytes()
        assert key in naive, "sampled an obs stack the naive buffer never produced"
        _, a, r, nxt, d = naive[key]
        assert batch["action"][i] == a
        assert batch["reward"][i] == pytest.approx(r, rel=1e-5, abs=1e-6)
        assert batch["next_obs"][i].tobytes() == nxt
        assert batch["discount"][i] == pytest.approx(d, rel=1e-6)
        keys.append(key)
    return keys


@pytest.mark.parametrize("n_step", [1, 3])
def test_frame_replay_equals_naive_stacked_buffer(n_step: int) -> None:
    steps = 50
    chunks, naive = _collect(steps, n_step, seed=n_step)
    buf = FrameReplayBuffer(capacity=10_000, n_step=n_step, gamma=GAMMA, stack=S, seed=0)
    for c in chunks:
        buf.add(c)
    assert len(buf) == buf.total_inserted == steps * 2 * 3
    seen: set[bytes] = set()
    for _ in range(60):
        seen.update(_check_against_naive(buf.sample(100), naive))
    assert seen == set(naive)  # every naive transition is reachable (uniform coverage)
    discounts = {round(float(v[4]), 6) for v in naive.values()}
    assert 0.0 in discounts  # terminals inside windows were exercised
    if n_step > 1:
        assert any(d > GAMMA**n_step + 1e-6 for d in discounts)  # truncated windows


def test_wraparound_never_returns_stale_or_mixed_stacks() -> None:
    chunks, naive = _collect(120, 3, seed=7)
    buf = FrameReplayBuffer(capacity=150, n_step=3, gamma=GAMMA, stack=S, seed=1)
    for c in chunks:
        buf.add(c)
    assert buf.total_inserted == 120 * 6 and len(buf) <= buf.num_slots
    times = []
    for _ in range(20):
        keys = _check_against_naive(buf.sample(64), naive)
        times += [naive[k][0] for k in keys]
    # ~160 slots hold the last ~25 steps of 6 streams: nothing from the first 80 steps survives
    assert min(times) >= 80


def test_state_dict_round_trip(tmp_path) -> None:
    chunks, naive = _collect(30, 3, seed=3)
    a = FrameReplayBuffer(capacity=500, n_step=3, gamma=GAMMA, stack=S, seed=2)
    for c in chunks[:-4]:
        a.add(c)
    torch.save(arrays_as_tensors(a.state_dict()), tmp_path / "replay.pt")  # as a checkpoint
    b = FrameReplayBuffer(capacity=500, n_step=3, gamma=GAMMA, stack=S, seed=123)
    b.load_state_dict(torch.load(tmp_path / "replay.pt", weights_only=True))
    assert len(b) == len(a) and b.total_inserted == a.total_inserted
    for c in chunks[-4:]:  # streams continue across the restore
        a.add(c)
        b.add(c)
    for _ in range(3):
        sa, sb = a.sample(32), b.sample(32)
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k])
        _check_against_naive(sb, naive)


def test_bytes_per_transition_fit_a_million_atari_transitions_in_8gb() -> None:
    enc = FrameChunkEncoder(1, seed=0)
    obs = np.zeros((1, 4, 84, 84), np.uint8)
    buf = FrameReplayBuffer(capacity=1000, n_step=5, gamma=0.99)
    buf.add(enc.push(obs, np.zeros(1, np.int64), np.zeros(1), obs, np.zeros(1, bool),
                     np.zeros(1, bool)))
    per_transition = buf.nbytes() / buf.capacity
    assert 84 * 84 <= per_transition < 7300  # one frame + small overhead; 1e6 x -> < 7.3 GB


def test_encoder_rejects_inconsistent_streams() -> None:
    rng = np.random.default_rng(0)
    enc = FrameChunkEncoder(2, seed=0)
    obs = rng.integers(0, 256, (2, S, *SHAPE), dtype=np.uint8)
    nxt = np.concatenate([obs[:, 1:], rng.integers(0, 256, (2, 1, *SHAPE), np.uint8)], 1)
    no = np.zeros(2, bool)
    enc.push(obs, np.zeros(2, np.int64), np.zeros(2), nxt, no, no)
    with pytest.raises(ValueError, match="previous step's next_obs"):
        enc.push(obs, np.zeros(2, np.int64), np.zeros(2), nxt, no, no)  # skipped a step
    with pytest.raises(ValueError, match="shifted by one frame"):
        enc.push(nxt, np.zeros(2, np.int64), np.zeros(2), nxt, no, no)
    with pytest.raises(ValueError, match="uint8"):
        enc.push(obs.astype(np.float32), np.zeros(2), np.zeros(2), nxt, no, no)
    buf = FrameReplayBuffer(capacity=10, n_step=1, gamma=0.9, stack=S)
    with pytest.raises(RuntimeError, match="empty"):
        buf.sample(1)


def test_lost_chunk_is_an_error_not_a_wrong_stack() -> None:
    chunks, _ = _collect(10, 1, workers=1, envs=2, seed=5)
    buf = FrameReplayBuffer(capacity=100, n_step=1, gamma=GAMMA, stack=S)
    buf.add(chunks[0])
    with pytest.raises(ValueError, match="lost or reordered"):
        buf.add(chunks[2])  # chunks[1] never arrived
