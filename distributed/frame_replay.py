"""Frame-stacking replay: every Atari frame stored once (uint8), stacks rebuilt at sample time.

Worker side, ``FrameChunkEncoder.push(obs, action, reward, next_obs, terminated, truncated)``
takes the same arguments as ``agents.nstep.NStepAccumulator.push`` (obs/next_obs are the stacked
[N, S, *frame] observations, next_obs the true final obs for finished episodes) and returns a
chunk: a dict of arrays with one *row* per stored frame, rows of one env stream in time order:

    stream      int64 [R]             random 62-bit id of the env stream (one per env per encoder)
    seq         int64 [R]             row counter within the stream (0, 1, 2, ...): a gap (a lost
                                      or reordered chunk) is an error, never a silently wrong stack
    frame       uint8 [R, *frame]     the frame this row stores
    first       bool  [R]             first frame of an episode-start stack (no predecessor)
    is_step     bool  [R]             True: a step row (frame = newest frame of next_obs);
                                      False: one of the S frames of an episode's first obs
    action      [R]                   action of the step (0 on start rows)
    reward      float32 [R]           reward of the step (0 on start rows)
    terminated  bool  [R]             the step ended the episode by termination
    truncated   bool  [R]             the step ended the episode by a time limit

An episode contributes S start rows (its first stacked obs, padding included) and one row per
step. Chunks can be concatenated (``concat_chunks``) and chunks of many workers interleave freely.

Buffer side, ``FrameReplayBuffer`` writes rows into one ring of slots and links each row to its
predecessor in the same stream (``prev``) and each step row to the next step row (``next``), by
absolute row number, so streams never mix. A transition is anchored at a step row j (step t):
obs = the S frames ending at prev[j] (walk ``prev``), then up to n steps forward along ``next``
(stopping at the episode end) give reward = sum_k gamma^k r_{t+k}, discount = gamma^m or 0 when
terminated, and next_obs = the S frames ending at the last step's row. Slots are overwritten
first-in-first-out, so a row is alive iff its absolute number >= rows_written - num_slots;
anchors whose stack is overwritten or whose n-step window is not complete yet are rejected at
sampling time (uniform over the valid ones). Memory: one frame + 31 bytes per slot (int64
action); capacity 1,000,000 -> 1,015,625 slots -> 7.20 GB for 84x84 frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distributed.replay_buffer import saved_array

CHUNK_KEYS = ("stream", "seq", "frame", "first", "is_step", "action", "reward", "terminated",
              "truncated")


def concat_chunks(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate chunks in order (row order within each stream is preserved)."""
    return {k: np.concatenate([c[k] for c in chunks]) for k in CHUNK_KEYS}


class FrameChunkEncoder:
    """Per-worker encoder: stacked observations in, frame rows out (see module docstring)."""

    def __init__(self, num_envs: int, seed: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.stream_ids = np.random.default_rng(seed).integers(1, 2**62, size=num_envs)
        self._starting = np.ones(num_envs, dtype=bool)  # next obs opens an episode
        self._seq = np.zeros(num_envs, dtype=np.int64)  # rows emitted per stream
        self._last_next: np.ndarray | None = None  # [N, S, *frame]

    def push(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
             next_obs: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
             ) -> dict[str, np.ndarray] | None:
        N = self.num_envs
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        if obs.shape[0] != N or obs.ndim < 2 or obs.shape != next_obs.shape:
            raise ValueError(f"obs {obs.shape} / next_obs {next_obs.shape} must both be "
                             f"[{N}, stack, *frame]")
        if obs.dtype != np.uint8:
            raise ValueError(f"frame replay stores uint8 frames, got obs dtype {obs.dtype}")
        S = obs.shape[1]
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        if S > 1 and not np.array_equal(next_obs[:, :-1], obs[:, 1:]):
            raise ValueError("next_obs must be obs shifted by one frame (frame-stacked envs)")
        cont = ~self._starting
        if self._last_next is not None and cont.any() and not np.array_equal(
                obs[cont], self._last_next[cont]):
            bad = np.flatnonzero(cont)[0]
            raise ValueError(f"env {bad}: obs is not the previous step's next_obs (missing "
                             "step, or an episode end not reported)")
        start_env = np.flatnonzero(self._starting)  # [E]
        n_start = start_env.size * S
        env = np.concatenate([np.repeat(start_env, S), np.arange(N)])  # [R]
        is_step = np.concatenate([np.zeros(n_start, bool), np.ones(N, bool)])
        order = np.lexsort((is_step, env))  # env-major, start rows (stack order) before step
        first = np.zeros(n_start + N, bool)
        first[np.arange(start_env.size) * S] = True
        frame = np.concatenate([obs[start_env].reshape(n_start, *obs.shape[2:]),
                                next_obs[:, -1]])
        action = np.asarray(action)
        act = np.concatenate([np.zeros((n_start, *action.shape[1:]), action.dtype), action])
        pad = np.zeros(n_start)
        rank = np.empty(env.size, np.int64)  # position of each row within its env's rows
        rank[order] = np.arange(env.size) - np.searchsorted(env[order], env[order])
        chunk = {
            "stream": self.stream_ids[env],
            "seq": self._seq[env] + rank,
            "frame": frame,
            "first": first,
            "is_step": is_step,
            "action": act,
            "reward": np.concatenate([pad, reward]).astype(np.float32),
            "terminated": np.concatenate([pad.astype(bool), terminated]),
            "truncated": np.concatenate([pad.astype(bool), truncated]),
        }
        self._starting = terminated | truncated
        self._last_next = next_obs.copy()
        self._seq += np.bincount(env, minlength=N)
        return {k: v[order] for k, v in chunk.items()}


class FrameReplayBuffer:
    """Uniform replay over n-step transitions rebuilt from frame rows (see module docstring)."""

    def __init__(self, capacity: int, n_step: int, gamma: float, stack: int = 4, seed: int = 0):
        if capacity < 1 or n_step < 1 or stack < 1:
            raise ValueError(f"capacity, n_step and stack must be >= 1, got {capacity}, "
                             f"{n_step}, {stack}")
        self.capacity, self.n_step, self.gamma, self.stack = capacity, n_step, gamma, stack
        # Episode-start stacks also take slots: a little slack keeps ~capacity transitions.
        self.num_slots = capacity + max(capacity // 64, 4 * stack)
        self._rng = np.random.default_rng(seed)
        self._powers = gamma ** np.arange(n_step + 1)  # [n+1]
        self._store: dict[str, np.ndarray] = {}
        self._tails: dict[int, tuple[int, int]] = {}  # stream id -> (last row, its seq)
        self.rows_written = 0
        self.total_inserted = 0  # step rows ever added
        self._resident_steps = 0

    def __len__(self) -> int:
        return self._resident_steps

    def _allocate(self, chunk: dict[str, np.ndarray]) -> None:
        n = self.num_slots
        self._store = {
            "frame": np.zeros((n, *chunk["frame"].shape[1:]), np.uint8),
            "action": np.zeros((n, *chunk["action"].shape[1:]), chunk["action"].dtype),
            "reward": np.zeros(n, np.float32),
            "prev": np.full(n, -1, np.int64),  # absolute row number of the predecessor
            "next": np.full(n, -1, np.int64),  # absolute row number of the next step row
            "is_step": np.zeros(n, bool),
            "terminated": np.zeros(n, bool),
            "truncated": np.zeros(n, bool),
        }

    def nbytes(self) -> int:
        return sum(v.nbytes for v in self._store.values())

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        missing = [k for k in CHUNK_KEYS if k not in chunk]
        if missing:
            raise ValueError(f"frame chunk is missing keys {missing}")
        R = len(chunk["stream"])
        if R == 0:
            return
        if R > self.num_slots:
            raise ValueError(f"chunk of {R} rows exceeds the {self.num_slots} slots")
        if not self._store:
            self._allocate(chunk)
        st = self._store
        if chunk["frame"].shape[1:] != st["frame"].shape[1:]:
            raise ValueError(f"chunk frames {chunk['frame'].shape[1:]} != stored "
                             f"{st['frame'].shape[1:]}")
        is_step, first = chunk["is_step"].astype(bool), chunk["first"].astype(bool)
        if (~is_step).sum() != self.stack * first.sum():
            raise ValueError(f"episode-start stacks must have stack={self.stack} frames")
        absn = self.rows_written + np.arange(R)  # [R] absolute row numbers
        slots = absn % self.num_slots

        # prev: the previous row of the same stream (in this chunk, else the stream's tail).
        stream = chunk["stream"].astype(np.int64)
        order = np.argsort(stream, kind="stable")
        s_sorted = stream[order]
        prev_sorted = np.empty(R, np.int64)
        prev_sorted[1:] = absn[order[:-1]]
        head = np.ones(R, bool)
        head[1:] = s_sorted[1:] != s_sorted[:-1]  # first row of each stream in the chunk
        heads = np.flatnonzero(head)
        seq_sorted = chunk["seq"].astype(np.int64)[order]
        if np.any(seq_sorted[1:][~head[1:]] != seq_sorted[:-1][~head[1:]] + 1):
            raise ValueError("rows of a stream are not consecutive within the chunk")
        for i in heads.tolist():
            tail_row, tail_seq = self._tails.get(int(s_sorted[i]), (-1, -1))
            if seq_sorted[i] != tail_seq + 1:
                raise ValueError(f"stream {int(s_sorted[i])}: expected row {tail_seq + 1}, got "
                                 f"{int(seq_sorted[i])} (a chunk was lost or reordered)")
            prev_sorted[i] = tail_row
        prev = np.empty(R, np.int64)
        prev[order] = prev_sorted
        prev[first] = -1
        if (is_step & (prev < 0)).any():
            raise ValueError("a step row has no predecessor: each stream must open with an "
                             "episode-start stack")
        tail_idx = np.append(heads[1:], R) - 1  # last row of each stream in sorted order
        for s, a, q in zip(s_sorted[tail_idx].tolist(), absn[order[tail_idx]].tolist(),
                           seq_sorted[tail_idx].tolist(), strict=True):
            self._tails[s] = (a, q)

        filled_before = min(self.rows_written, self.num_slots)
        self._resident_steps -= int(st["is_step"][slots[slots < filled_before]].sum())
        st["frame"][slots] = chunk["frame"]
        st["action"][slots] = chunk["action"]
        st["reward"][slots] = chunk["reward"]
        st["prev"][slots] = prev
        st["next"][slots] = -1
        st["is_step"][slots] = is_step
        st["terminated"][slots] = chunk["terminated"]
        st["truncated"][slots] = chunk["truncated"]
        self.rows_written += R
        # next links: predecessor of a step row -> that row, if the predecessor is still alive
        p, a = prev[is_step], absn[is_step]
        alive = p >= self.rows_written - self.num_slots
        st["next"][p[alive] % self.num_slots] = a[alive]
        n_steps = int(is_step.sum())
        self._resident_steps += n_steps
        self.total_inserted += n_steps
        if len(self._tails) > 4096:  # forget streams whose last row is long overwritten
            low = self.rows_written - self.num_slots
            self._tails = {s: t for s, t in self._tails.items() if t[0] >= low}

    # ------------------------------------------------------------------ sampling
    def _stack_rows(self, newest: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Absolute rows [B, S] of the stack ending at ``newest`` [B]; ok &= all rows alive."""
        low = self.rows_written - self.num_slots
        rows = np.empty((newest.size, self.stack), np.int64)
        cur = newest
        for k in range(self.stack - 1, -1, -1):  # S hops along prev (loop over stack depth)
            ok = ok & (cur >= max(low, 0))
            cur = np.where(ok, cur, 0)
            rows[:, k] = cur
            if k:
                cur = self._store["prev"][cur % self.num_slots]
        return rows, ok

    def _transitions(self, anchor: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Rows/returns of the n-step transitions anchored at absolute step rows ``anchor`` [B],
        and their validity mask."""
        st, ns = self._store, self.num_slots
        ok = st["is_step"][anchor % ns].copy()
        obs_rows, ok = self._stack_rows(st["prev"][anchor % ns], ok)
        B = anchor.size
        ret = np.zeros(B)
        m = np.zeros(B, np.int64)
        term = np.zeros(B, bool)
        alive = ok.copy()
        cur, last = anchor.copy(), anchor.copy()
        for k in range(self.n_step):  # loop over the n-step window, vectorized over B
            slot = cur % ns
            ret += np.where(alive, self._powers[k] * st["reward"][slot], 0.0)
            last = np.where(alive, cur, last)
            m = np.where(alive, k + 1, m)
            term |= alive & st["terminated"][slot]
            alive &= ~(st["terminated"][slot] | st["truncated"][slot])
            if k < self.n_step - 1:
                nxt = st["next"][slot]
                ok &= ~alive | (nxt >= 0)  # window not complete yet
                alive &= nxt >= 0
                cur = np.where(alive, nxt, cur)
        next_rows, ok = self._stack_rows(last, ok)
        out = {
            "obs_rows": obs_rows,  # [B, S] absolute rows of the obs stack
            "action_row": anchor,  # [B]
            "reward": ret.astype(np.float32),
            "next_rows": next_rows,  # [B, S]
            "discount": np.where(term, 0.0, self._powers[m]).astype(np.float32),
        }
        return out, ok

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """Uniform over valid anchors; batch keys of agents.base (obs/next_obs uint8)."""
        if self._resident_steps == 0:
            raise RuntimeError("cannot sample from an empty frame replay buffer")
        filled = min(self.rows_written, self.num_slots)
        base = self.rows_written - filled  # absolute number of the oldest live row
        parts: list[dict[str, np.ndarray]] = []
        need = batch_size
        for _ in range(100):  # rejection of anchors without a full window / live stack
            cand = base + self._rng.integers(0, filled, size=2 * need + 16)
            tr, ok = self._transitions(cand)
            take = np.flatnonzero(ok)[:need]
            parts.append({k: v[take] for k, v in tr.items()})
            need -= take.size
            if need == 0:
                break
        else:
            raise RuntimeError("frame replay holds no complete n-step transition yet")
        sel = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        st, ns = self._store, self.num_slots
        return {  # frames are gathered for the accepted anchors only
            "obs": st["frame"][sel["obs_rows"] % ns],  # [B, S, *frame]
            "action": st["action"][sel["action_row"] % ns],  # [B]
            "reward": sel["reward"],  # [B] n-step discounted sum
            "next_obs": st["frame"][sel["next_rows"] % ns],  # [B, S, *frame]
            "discount": sel["discount"],  # [B] gamma^m, or 0 when terminated
        }

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Arrays and plain types, as ReplayBuffer's (the checkpoint makes tensors of them)."""
        return {
            "capacity": self.capacity, "n_step": self.n_step, "gamma": self.gamma,
            "stack": self.stack, "rows_written": self.rows_written,
            "total_inserted": self.total_inserted, "resident_steps": self._resident_steps,
            "store": {k: v.copy() for k, v in self._store.items()},
            "tail_streams": np.array(list(self._tails.keys()), dtype=np.int64),
            "tail_rows": np.array([t[0] for t in self._tails.values()], dtype=np.int64),
            "tail_seqs": np.array([t[1] for t in self._tails.values()], dtype=np.int64),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("capacity", "n_step", "stack"):
            if state[key] != getattr(self, key):
                raise ValueError(f"checkpoint {key}={state[key]} != buffer {key}="
                                 f"{getattr(self, key)}")
        self._store = {k: saved_array(v).copy() for k, v in state["store"].items()}
        self.rows_written = int(state["rows_written"])
        self.total_inserted = int(state["total_inserted"])
        self._resident_steps = int(state["resident_steps"])
        self._tails = {s: (r, q) for s, r, q in zip(
            saved_array(state["tail_streams"]).tolist(), saved_array(state["tail_rows"]).tolist(),
            saved_array(state["tail_seqs"]).tolist(), strict=True)}
        self._rng.bit_generator.state = state["rng"]
