"""Samples-per-insert rate limiter (the idea of Reverb's ``SampleToInsertRatio``).

The update-to-data ratio is a config value (``updates_per_step``); with batch size B the target
samples-per-insert is ``spi = updates_per_step * B``. Counting from the moment the buffer first
holds ``min_size`` transitions, the limiter keeps

    spi * (1 - tol) * I - slack  <=  S  <=  spi * (1 + tol) * I + slack

where I = inserts after ``min_size``, S = samples drawn, tol = ``rate_tolerance`` and
``slack = max(B, spi * chunk)`` absorbs one batch or one chunk (so the two sides can never
deadlock: when inserting is refused, sampling one batch is always allowed, and vice versa).
The learner waits when it is ahead; workers wait when they are too far ahead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RateLimiter:
    samples_per_insert: float
    min_size: int
    tolerance: float
    slack: float
    inserts: int = 0  # all inserts ever
    samples: int = 0  # samples drawn after min_size was reached

    @classmethod
    def for_updates(cls, updates_per_step: float, batch_size: int, min_size: int,
                    tolerance: float, chunk_size: int = 1) -> RateLimiter:
        spi = updates_per_step * batch_size
        return cls(spi, min_size, tolerance, slack=max(float(batch_size), spi * chunk_size))

    def _counted_inserts(self, extra: int = 0) -> int:
        return max(0, self.inserts + extra - self.min_size)

    def can_sample(self, batch_size: int) -> bool:
        if self.inserts < self.min_size:
            return False
        upper = self.samples_per_insert * (1 + self.tolerance) * self._counted_inserts()
        return self.samples + batch_size <= upper + self.slack

    def on_target(self, batch_size: int) -> bool:
        """True while one more batch keeps S <= spi * I exactly (the inline loop samples only
        then, so its update-to-data ratio is exactly the configured one)."""
        if self.inserts < self.min_size:
            return False
        return self.samples + batch_size <= self.samples_per_insert * self._counted_inserts() + 1e-9

    def can_insert(self, n: int) -> bool:
        if self.samples_per_insert <= 0:
            return True
        lower = self.samples_per_insert * (1 - self.tolerance) * self._counted_inserts(n)
        return self.samples >= lower - self.slack

    def record_insert(self, n: int) -> None:
        self.inserts += n

    def record_sample(self, batch_size: int) -> None:
        self.samples += batch_size

    def counted_inserts(self) -> int:
        """Inserts beyond min_size: those the update-to-data ratio is held against."""
        return self._counted_inserts()

    def ratio(self) -> float:
        """Observed samples per counted insert (nan before min_size)."""
        counted = self._counted_inserts()
        return self.samples / counted if counted else float("nan")

    def state_dict(self) -> dict:
        return {"inserts": self.inserts, "samples": self.samples}

    def load_state_dict(self, state: dict) -> None:
        self.inserts, self.samples = int(state["inserts"]), int(state["samples"])
