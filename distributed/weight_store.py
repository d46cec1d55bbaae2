"""The weight store actor: the newest published weights' object ref and the run's env-step count.

Kept free of torch and of the rest of softq: its process is up ~1.5 s sooner (a torch import is
most of an actor's start), and the workers are created once it answers.
"""

from __future__ import annotations

from typing import Any


class WeightStore:
    """Holds the newest (version, [ObjectRef]) pair. The ref is wrapped in a list so Ray passes
    the reference itself, not the weights: one ``ray.put`` serves every worker. Also holds the
    run's env-step count as the driver last told it, for workers that start mid-run."""

    def __init__(self) -> None:
        self.version = -1
        self.ref: list[Any] | None = None
        self.run_env_steps = 0

    def set_run_env_steps(self, env_steps: int) -> None:
        self.run_env_steps = int(env_steps)

    def get_run_env_steps(self) -> int:
        return self.run_env_steps

    def publish(self, version: int, ref: list[Any]) -> None:
        if version > self.version:
            self.version, self.ref = version, ref

    def get_if_newer(self, version: int) -> tuple[int, list[Any]] | None:
        if self.ref is None or self.version <= version:
            return None
        return self.version, self.ref

    def latest_version(self) -> int:
        return self.version
