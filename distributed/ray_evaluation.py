"""Evaluations that run beside a Ray run's training instead of pausing it.

The driver used to run every evaluation's episodes itself, and no worker or learner call was
made meanwhile. With a fast learner that pause is of the order of the training between two
evaluations (estimated: a GPU SQL learner makes 10k updates in ~3 s; 10 MuJoCo episodes of 1,000
steps take seconds as well). Here the evaluation due at step k runs in an evaluator actor with
the learner's weights of step k, while the loop goes on; its result is logged at step k when it
lands, with ``eval/lag_env_steps``, how far the run had gone on by then. At most one
runs at a time (the next starts once it has landed). An evaluation with pictures (they need the
learner) and the final one run in the driver, as inline, after the one in flight has landed.

Until its result is logged an evaluation is not made: a checkpoint written meanwhile, or a
Ctrl-C, leaves it owed, and a resumed run makes it first (Driver.owes_evaluation).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ray

from distributed.driver import Driver
from distributed.evaluation import EvaluationJob, run_evaluation
from distributed.ray_actors import weights_from_store, weights_to_store


class Evaluator:
    """The actor that runs them: one process for the run (a task per evaluation would start
    a process and import torch and the envs each time)."""

    def evaluate(self, job: EvaluationJob) -> dict[str, Any]:
        return run_evaluation(dataclasses.replace(job, weights=weights_from_store(job.weights)))


class BackgroundEvaluation:
    def __init__(self) -> None:
        self.job: EvaluationJob | None = None
        self.ref: Any = None
        self._actor: Any = None  # made at the first background evaluation

    @property
    def running(self) -> bool:
        return self.ref is not None

    def start(self, learner: Any, driver: Driver) -> None:
        """Start the evaluation due now with ``learner``'s (an actor's) current weights."""
        weights, _ = ray.get(learner.current_weights.remote())
        if self._actor is None:
            self._actor = ray.remote(num_cpus=0, max_restarts=0)(Evaluator).remote()
        self.job = driver.evaluation_job(weights_to_store(weights))
        self.ref = self._actor.evaluate.remote(self.job)

    def collect(self, driver: Driver, wait: bool = False) -> None:
        """Log the running evaluation if it has finished (``wait``: once it has)."""
        if self.ref is None or not (wait or ray.wait([self.ref], timeout=0)[0]):
            return
        result = ray.get(self.ref)
        job, self.job, self.ref = self.job, None, None
        assert job is not None
        driver.record_evaluation(job, result)
        driver.tb.scalars({"eval/lag_env_steps": float(driver.counters.env_steps - job.step)},
                          job.step)

    def stop(self) -> None:
        """Drop a running evaluation (the run stops; it stays owed) and end the actor."""
        if self._actor is not None:
            ray.kill(self._actor, no_restart=True)
        self.job, self.ref, self._actor = None, None, None
