"""Metric aggregation and TensorBoard output shared by the inline and Ray runtimes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


class MetricAverager:
    """Running means of scalar metrics between two log points."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self._sums[k] += float(v)
            self._counts[k] += 1

    def pop(self) -> dict[str, float]:
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums.clear()
        self._counts.clear()
        return out


class TensorBoardLogger:
    """Thin wrapper over ``torch.utils.tensorboard.SummaryWriter`` writing into the run dir."""

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            if np.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def image(self, tag: str, rgb: np.ndarray, step: int) -> None:
        """``rgb``: [H, W, 3] uint8."""
        self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
