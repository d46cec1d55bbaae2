"""Host-side plumbing of the SQL learner's CUDA-graph path: staged inputs and lazy metrics.

A graphed update must not wait for the device: the host only stages the next batch and launches
the graph, so it runs ahead of the GPU and the two overlap. Three pieces make that safe:

* ``StagedInputs``: every batch key and alpha packed into one float32 row of a pinned host slot,
  one host -> device copy per update into a fixed device buffer (the graph's inputs are views of
  it). ``depth`` slots are used round-robin; a slot is rewritten only after the event recorded
  behind its last use has passed, which also bounds how far the host runs ahead.
* device metrics are copied (non-blocking) into the slot's pinned metrics row after the replay;
* ``LazyMetrics``: the ``update()`` result, a read-only ``Mapping[str, float]`` that waits for its
  slot's event only when first read. A result still held unread when its slot comes round again is
  read then (one wait), so a kept result never shows a later update's numbers.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch


def graph_supports_generators() -> bool:
    """Whether a captured graph can draw from a non-default CUDA generator (PyTorch >= 2.5:
    ``CUDAGraph.register_generator_state``)."""
    return hasattr(torch.cuda.CUDAGraph, "register_generator_state")


class LazyMetrics(Mapping):
    """Scalar metrics of one graphed update, read from pinned memory on first access."""

    __slots__ = ("__weakref__", "_names", "_host", "_event", "_extra", "_values")

    def __init__(self, names: Sequence[str], host: torch.Tensor, event: torch.cuda.Event,
                 extra: dict[str, float]) -> None:
        self._names, self._host, self._event, self._extra = names, host, event, extra
        self._values: dict[str, float] | None = None

    def resolve(self) -> dict[str, float]:
        """Wait for the update's device work (once) and return the metrics as a plain dict."""
        if self._values is None:
            self._event.synchronize()
            self._values = dict(zip(self._names, self._host.tolist(), strict=True))
            self._values.update(self._extra)
            self._host = self._event = None  # the slot may be reused from here on
        return self._values

    @property
    def ready(self) -> bool:
        return self._values is not None

    def __getitem__(self, key: str) -> float:
        return self.resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.resolve())

    def __len__(self) -> int:
        return len(self._names) + len(self._extra)

    def __repr__(self) -> str:
        return f"LazyMetrics({self.resolve()!r})"

    def __reduce__(self) -> tuple[type, tuple[dict[str, float]]]:
        return dict, (self.resolve(),)  # pickles / deep-copies as the plain dict it stands for


class StagedInputs:
    """Pinned host slots -> one fixed device buffer holding every batch key and alpha.

    Layout of a row (float32): the keys of ``shapes`` flattened in order, then alpha. ``device``
    maps each key (and 'alpha', a 0-d view) to a view of the device buffer.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], num_metrics: int,
                 device: torch.device, depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"StagedInputs depth must be >= 1, got {depth}")
        self.shapes = dict(shapes)
        sizes = [int(np.prod(s)) for s in self.shapes.values()]
        self.offsets = np.cumsum([0, *sizes]).tolist()  # key i lives in [off[i], off[i + 1])
        width = self.offsets[-1] + 1  # + alpha
        self.host = torch.empty(depth, width, dtype=torch.float32).pin_memory()  # [R, W]
        self.host_metrics = torch.empty(depth, num_metrics, dtype=torch.float32).pin_memory()
        self._host_np = self.host.numpy()
        self.flat = torch.empty(width, dtype=torch.float32, device=device)  # [W]
        self.device: dict[str, torch.Tensor] = {
            key: self.flat[a:b].view(shape)
            for key, shape, a, b in zip(self.shapes, self.shapes.values(), self.offsets[:-1],
                                        self.offsets[1:], strict=True)}
        self.device["alpha"] = self.flat[-1]
        self.events = [torch.cuda.Event() for _ in range(depth)]
        self._used = [False] * depth
        self._readers: list[weakref.ref | None] = [None] * depth
        self.depth, self.slot = depth, 0

    def stage(self, batch: Mapping[str, np.ndarray], alpha: float) -> None:
        """Pack ``batch`` and alpha into the next free slot and queue its copy to the device."""
        i = self.slot
        reader = self._readers[i]() if self._readers[i] is not None else None
        if reader is not None:
            reader.resolve()  # a kept, unread result of this slot: read it before reuse
        if self._used[i]:
            self.events[i].synchronize()  # usually long done; bounds the host's lead
        row = self._host_np[i]
        for key, a, b in zip(self.shapes, self.offsets[:-1], self.offsets[1:], strict=True):
            np.copyto(row[a:b], np.reshape(batch[key], -1), casting="same_kind")
        row[-1] = alpha
        self.flat.copy_(self.host[i], non_blocking=True)

    def finish(self, metrics: torch.Tensor, names: Sequence[str],
               extra: dict[str, float]) -> LazyMetrics:
        """Queue the device metrics [M] into the slot's pinned row; hand back its lazy view."""
        i = self.slot
        host = self.host_metrics[i]
        host.copy_(metrics, non_blocking=True)
        self.events[i].record()
        self._used[i] = True
        out = LazyMetrics(names, host, self.events[i], extra)
        self._readers[i] = weakref.ref(out)
        self.slot = (i + 1) % self.depth
        return out

    def drain(self) -> None:
        """Read every result still held (before the buffers or the graph change)."""
        for ref in self._readers:
            reader = ref() if ref is not None else None
            if reader is not None:
                reader.resolve()
