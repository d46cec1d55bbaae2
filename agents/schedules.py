"""Scalar schedules indexed by an integer step (learner updates, epochs, ...).

``LogLinearSchedule`` anneals the entropy coefficient alpha (paper App. D.1: "alpha is annealed
log-linearly to 0.001 within 20 epochs"); ``LinearSchedule`` shrinks the fixed-noise set size
K_xi linearly to 1 for fine-tuning. Both hold their end value after ``steps``.
"""

from __future__ import annotations

import math


class LinearSchedule:
    """value(t) = start + min(t / steps, 1) * (end - start)."""

    def __init__(self, start: float, end: float, steps: int) -> None:
        if steps <= 0:
            raise ValueError(f"LinearSchedule: steps must be positive, got {steps}")
        self.start, self.end, self.steps = float(start), float(end), int(steps)

    def fraction(self, t: int) -> float:
        if t < 0:
            raise ValueError(f"schedule step must be >= 0, got {t}")
        return min(t / self.steps, 1.0)

    def __call__(self, t: int) -> float:
        return self.start + self.fraction(t) * (self.end - self.start)


class LogLinearSchedule(LinearSchedule):
    """value(t) = exp(log start + min(t / steps, 1) * (log end - log start)); start, end > 0."""

    def __init__(self, start: float, end: float, steps: int) -> None:
        if start <= 0 or end <= 0:
            raise ValueError(f"LogLinearSchedule needs positive start and end, got {start}, {end}")
        super().__init__(start, end, steps)
        self._log_start, self._log_end = math.log(self.start), math.log(self.end)

    def __call__(self, t: int) -> float:
        if t >= self.steps:  # exact end value, no exp(log()) round-off
            return self.end
        return math.exp(self._log_start + self.fraction(t) * (self._log_end - self._log_start))


class ConstantSchedule:
    """value(t) = value; lets callers treat "no annealing" like any schedule."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, t: int) -> float:
        return self.value
