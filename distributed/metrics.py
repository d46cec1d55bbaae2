"""Metric aggregation and TensorBoard output shared by the inline and Ray runtimes."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class MetricAverager:
    """Running means of scalar metrics between two log points.

    ``add`` only keeps the mapping: a learner may return metrics that are still being computed
    on the GPU (agents.sql.cuda_graph.LazyMetrics), and reading them at every update would put
    a host sync back into each step. They are read when ``pop`` averages them.
    """

    def __init__(self) -> None:
        self._pending: list[Mapping[str, float]] = []

    def add(self, metrics: Mapping[str, float]) -> None:
        self._pending.append(metrics)

    def pop(self) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for metrics in self._pending:
            for k, v in metrics.items():
                sums[k] += float(v)
                counts[k] += 1
        self._pending = []
        return {k: sums[k] / counts[k] for k in sums}


def wait_until_a_new_event_file_sorts_last(log_dir: Path) -> None:
    """TensorBoard reads a directory's event files in name order, and a purge marker drops only
    the events read before it. The names are ``events.out.tfevents.<unix seconds>.<host>.<pid>.
    <counter>``: within one second, one process's counter compares as text ("...10" < "...9"),
    so a resume's purge could be read before the events it should drop. Waiting (at most a
    second) until the clock has passed every existing file's second makes the new name sort last.
    """
    newest = -1
    for path in log_dir.glob("events.out.tfevents.*"):
        stamp = path.name.split(".")[3]
        if stamp.isdigit():
            newest = max(newest, int(stamp))
    give_up = time.time() + 1.1  # a clock behind the files' (copied from another machine)
    while int(time.time()) <= newest and time.time() < give_up:
        time.sleep(0.05)


class TensorBoardLogger:
    """Thin wrapper over ``torch.utils.tensorboard.SummaryWriter`` writing into the run dir."""

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        if purge_step is not None:
            wait_until_a_new_event_file_sorts_last(Path(log_dir))
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, metrics: dict[str, float], step: int,
                keep_nonfinite: tuple[str, ...] = ()) -> None:
        """Write the finite values (a nan stands for "not defined yet", as the rate limiter's
        ratio before min_size), and the non-finite ones of the keys in ``keep_nonfinite``."""
        for key, value in metrics.items():
            if np.isfinite(value) or key in keep_nonfinite:
                self.writer.add_scalar(key, value, step)

    def image(self, tag: str, rgb: np.ndarray, step: int) -> None:
        """``rgb``: [H, W, 3] uint8."""
        self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
