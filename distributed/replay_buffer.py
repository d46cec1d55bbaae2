"""Preallocated NumPy ring buffer with uniform sampling.

Storage is one array per batch key, allocated on the first insert from the chunk's shapes and
dtypes. The buffer is plain data + an RNG, so the replay server actor wraps it unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def saved_array(v: Any) -> np.ndarray:
    """An array of a saved replay state: as is, or a checkpoint's (CPU) tensor as its array."""
    return v.numpy() if hasattr(v, "numpy") else np.asarray(v)


class ReplayBuffer:
    """Ring buffer of transitions; ``add`` takes chunks (dict of arrays, leading dim T)."""

    def __init__(self, capacity: int, seed: int = 0):
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._storage: dict[str, np.ndarray] = {}
        self._next = 0  # write position
        self._size = 0
        self.total_inserted = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self._size

    def _allocate(self, chunk: dict[str, np.ndarray]) -> None:
        self._storage = {
            k: np.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype) for k, v in chunk.items()
        }

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        if not self._storage:
            self._allocate(chunk)
        if set(chunk) != set(self._storage):
            raise ValueError(f"chunk keys {sorted(chunk)} != buffer keys {sorted(self._storage)}")
        t = len(next(iter(chunk.values())))
        self.total_inserted += t
        if t > self.capacity:  # keep only the newest `capacity` rows
            chunk = {k: v[-self.capacity:] for k, v in chunk.items()}
            t = self.capacity
        rows = (self._next + np.arange(t)) % self.capacity  # [T]
        for key, value in chunk.items():
            store = self._storage[key]
            if value.shape[1:] != store.shape[1:]:
                raise ValueError(f"chunk[{key!r}] has shape {value.shape[1:]} per row, "
                                 f"buffer stores {store.shape[1:]}")
            store[rows] = value
        self._next = (self._next + t) % self.capacity
        self._size = min(self._size + t, self.capacity)

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        if self._size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = self._rng.integers(0, self._size, size=batch_size)  # [B]
        return {k: v[idx] for k, v in self._storage.items()}

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Arrays and plain types (the checkpoint makes tensors of the arrays: ``weights_only=True``
        loads those; no torch here, so a Ray shard's process does not import it).

        Rows are saved in storage order with the write position, so a restored buffer with the
        same capacity and RNG state samples exactly the same batches. The rows are a copy: the
        Ray shard's state is serialised after the call, while inserts go on in its event loop."""
        n = self._size
        return {
            "capacity": self.capacity,
            "size": n,
            "next": self._next,
            "total_inserted": self.total_inserted,
            "data": {k: v[:n].copy() for k, v in self._storage.items()},
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay state has capacity {state['capacity']}, "
                             f"this buffer {self.capacity}")
        data = {k: saved_array(v) for k, v in state["data"].items()}
        self._storage = {}
        if data:
            self._allocate(data)
            n = int(state["size"])
            for k, v in data.items():
                self._storage[k][:n] = v
        self._size, self._next = int(state["size"]), int(state["next"])
        self.total_inserted = int(state["total_inserted"])
        self._rng.bit_generator.state = state["rng"]
