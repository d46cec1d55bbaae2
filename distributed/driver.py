"""Driver-side bookkeeping shared by every runtime: progress bar, TensorBoard, evaluation,
pictures and checkpoints, all scheduled on the environment-step counter so a resumed run
continues on the same schedule.

Training episodes also feed Figure 3's curves (Haarnoja et al. 2017): the best ``max_com_x``
(swimmer) and ``min_distance_to_target`` (ant target tasks) over every training episode since the
run began, episodes still running included (a new best shows before its episode ends), kept in
``Counters`` (so they survive a resume) and logged as ``train/max_com_x`` and
``train/min_distance_to_target`` at every log step once known, and in summary.json."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from distributed.checkpoint import arrays_as_tensors, non_finite_tensors, save_checkpoint
from distributed.evaluation import EvaluationJob, run_evaluation
from distributed.metrics import TensorBoardLogger
from distributed.rollout import EpisodeTracker
from envs.atomic_files import atomic_write_text

# Learner metrics that are finite in every healthy update: non-finite means divergence.
DIVERGENCE_PREFIXES = ("loss/", "q/", "v/", "train/grad_norm")

# image_hook(learner_or_None, eval_result, env_steps) -> {tag: [H, W, 3] uint8}
ImageHook = Callable[[Any, dict, int], dict[str, np.ndarray]]


# episode field -> (Counters field, TensorBoard tag, keep the max (True) or the min (False)),
# one per extreme the rollout workers track
BEST_SO_FAR: dict[str, tuple[str, str, bool]] = {
    field: (f"best_{field}", f"train/{field}", is_max)
    for field, is_max in EpisodeTracker.EXTREMES.values()
}


# rollout/return_mean and rollout/length_mean average this many of the last training episodes
RECENT_EPISODES = 100


@dataclass
class Counters:
    """Run-wide counts, checkpointed. The best-so-far fields stay None until a training episode
    reported them (checkpoints from before they existed load with the defaults). The returns and
    lengths of the last RECENT_EPISODES training episodes are kept too, so a resumed run's
    rollout/return_mean goes on over the same window instead of restarting from its first
    episode."""

    env_steps: int = 0
    episodes: int = 0
    worker_restarts: int = 0
    learner_restarts: int = 0
    best_max_com_x: float | None = None
    best_min_distance_to_target: float | None = None
    last_eval_step: int | None = None  # -1: none yet; None: not recorded (older checkpoints)
    recent_returns: list[float] = dataclasses.field(default_factory=list)  # oldest first
    recent_lengths: list[float] = dataclasses.field(default_factory=list)

    def state_dict(self) -> dict[str, int | float | list[float] | None]:
        return {"env_steps": self.env_steps, "episodes": self.episodes,
                "worker_restarts": self.worker_restarts,
                "learner_restarts": self.learner_restarts,
                "best_max_com_x": self.best_max_com_x,
                "best_min_distance_to_target": self.best_min_distance_to_target,
                "last_eval_step": self.last_eval_step,
                "recent_returns": [float(r) for r in self.recent_returns],
                "recent_lengths": [float(n) for n in self.recent_lengths]}

    def best_so_far(self) -> dict[str, float]:
        """TensorBoard tag -> value of the best-so-far extremes known yet."""
        out = {}
        for attr, tag, _ in BEST_SO_FAR.values():
            value = getattr(self, attr)
            if value is not None:
                out[tag] = float(value)
        return out


def mode_share_scalars(shares: dict[str, float], seen: set[str]) -> dict[str, float]:
    """``eval/mode_share/<label>`` for this evaluation's labels and, at 0, for the labels an
    earlier one had (``seen``, updated here): TensorBoard draws a line between the points it
    has, so a share left out would show as the neighbouring evaluations' values, not as 0."""
    seen.update(shares)
    return {f"eval/mode_share/{label}": shares.get(label, 0.0) for label in sorted(seen)}


@dataclass
class DriverHooks:
    image_hook: ImageHook | None = None
    on_tick: Callable[[Any], None] | None = None
    """Called with the runtime once per driver iteration (tests use it to inject faults)."""


class Driver:
    def __init__(self, cfg: Any, run_dir: Path, counters: Counters,
                 hooks: DriverHooks | None = None, observation_space: Any = None,
                 action_space: Any = None):
        self.cfg, self.run_dir, self.counters = cfg, Path(run_dir), counters
        self.hooks = hooks or DriverHooks()
        # On resume, TensorBoard drops what a crashed run logged after its last checkpoint. The
        # checkpoint's own step stays: its evaluation and log come just before the checkpoint.
        self.tb = TensorBoardLogger(self.run_dir / "tb",
                                    purge_step=counters.env_steps + 1 if counters.env_steps
                                    else None)
        self.recent_returns = deque(counters.recent_returns, maxlen=RECENT_EPISODES)
        self.recent_lengths = deque(counters.recent_lengths, maxlen=RECENT_EPISODES)
        self.last_eval: dict[str, Any] = {}
        self._mode_labels: set[str] = set()  # behaviour labels this session's evaluations had
        self._spaces = (observation_space, action_space)
        run = cfg.run
        self._next_log = self._next_multiple(run.log_every)
        self._next_eval = self._next_multiple(run.eval_every)
        self._next_ckpt = self._next_multiple(run.checkpoint_every)
        self._next_image = self._next_multiple(run.image_every)
        if counters.env_steps == 0 and counters.last_eval_step is None:
            counters.last_eval_step = -1
        # an evaluation that was due when the run was interrupted (a Ctrl-C or crash between the
        # step that made it due and the housekeeping that makes it): the loops make it first
        self.owes_evaluation = self._evaluation_was_due()
        self._t0 = time.perf_counter()
        self._last_line = self._t0
        self._warned_divergence = False
        self.diverged_at: int | None = None  # the step whose learner state was not finite
        self.interrupted = False  # Ctrl-C or SIGTERM ended the run before its budget
        self._last_checkpoint = counters.env_steps if counters.env_steps else None
        self._steps0 = counters.env_steps
        self._rate = (self._t0, counters.env_steps)
        self.bar = tqdm(total=run.total_env_steps, initial=counters.env_steps, unit="step",
                        dynamic_ncols=True, disable=None, desc=cfg.preset or cfg.algo)

    def _evaluation_was_due(self) -> bool:
        """Whether this (resumed) run's checkpoint was written after an evaluation fell due and
        before it was made: at the budget's end a final one, else one per eval_every boundary."""
        every, last = self.cfg.run.eval_every, self.counters.last_eval_step
        step = self.counters.env_steps
        if every <= 0 or last is None or step == 0:
            return False
        if step >= self.cfg.run.total_env_steps:
            return last != step
        return step // every * every > max(last, 0)  # step 0 is no boundary: none is made there

    def _next_multiple(self, every: int) -> float:
        if every <= 0:
            return float("inf")
        return (self.counters.env_steps // every + 1) * every

    # ------------------------------------------------------------------ progress
    def record(self, env_steps: int, episodes: list[dict[str, float]],
               running_extremes: dict[str, float] | None = None) -> None:
        """Count a worker report: its env steps, its finished episodes and the extremes its
        unfinished episodes have reached so far (both feed the best-so-far curves)."""
        self.counters.env_steps += env_steps
        self.counters.episodes += len(episodes)
        for ep in episodes:
            self.recent_returns.append(ep.get("raw_return", ep["return"]))
            self.recent_lengths.append(ep["length"])
            self._improve_best_so_far(ep)
        self._improve_best_so_far(running_extremes or {})
        self.bar.update(env_steps)

    def _improve_best_so_far(self, extremes: dict[str, float]) -> None:
        for field, (attr, _, is_max) in BEST_SO_FAR.items():
            value = extremes.get(field)
            if value is None:
                continue
            best = getattr(self.counters, attr)
            if best is None or (value > best if is_max else value < best):
                setattr(self.counters, attr, float(value))

    @property
    def done(self) -> bool:
        return (self.counters.env_steps >= self.cfg.run.total_env_steps
                or self.diverged_at is not None)

    def env_steps_per_s(self) -> float:
        now = time.perf_counter()
        t, s = self._rate
        self._rate = (now, self.counters.env_steps)
        return (self.counters.env_steps - s) / max(now - t, 1e-9)

    def due_log(self) -> bool:
        return self.counters.env_steps >= self._next_log or self.done

    def log(self, metrics: dict[str, float]) -> None:
        step = self.counters.env_steps
        metrics = dict(metrics)
        metrics["rollout/env_steps_per_s"] = self.env_steps_per_s()
        metrics["rollout/episodes"] = float(self.counters.episodes)
        metrics["runtime/worker_restarts"] = float(self.counters.worker_restarts)
        metrics["runtime/learner_restarts"] = float(self.counters.learner_restarts)
        if self.recent_returns:
            metrics["rollout/return_mean"] = float(np.mean(self.recent_returns))
            metrics["rollout/length_mean"] = float(np.mean(self.recent_lengths))
        metrics.update(self.counters.best_so_far())
        diverged = tuple(k for k, v in metrics.items()
                         if k.startswith(DIVERGENCE_PREFIXES) and not np.isfinite(v))
        if diverged and not self._warned_divergence:
            self._warned_divergence = True
            print(f"softq: warning: {', '.join(diverged)} not finite at step {step}: the learner "
                  f"has diverged (lower the learning rates or clip the gradients)",
                  file=sys.stderr, flush=True)
            self._next_ckpt = step  # look at the weights now: the run stops if they are gone
        self.tb.scalars(metrics, step, keep_nonfinite=diverged)  # TensorBoard shows nan/inf
        self.tb.flush()
        postfix = {"ret": f"{metrics.get('rollout/return_mean', float('nan')):.1f}",
                   "sps": f"{metrics['rollout/env_steps_per_s']:.0f}"}
        if "eval/return_mean" in self.last_eval:
            postfix["eval"] = f"{self.last_eval['eval/return_mean']:.1f}"
        self.bar.set_postfix(postfix, refresh=False)
        if self.bar.disable and time.perf_counter() - self._last_line >= 15.0:
            # no terminal (CI, nohup, ray job logs): a plain progress line instead of the bar
            self._last_line = time.perf_counter()
            total = self.cfg.run.total_env_steps
            print(f"[{step}/{total} steps] " + " ".join(f"{k}={v}" for k, v in postfix.items()),
                  flush=True)
        self._next_log = self._next_multiple(self.cfg.run.log_every)

    # ------------------------------------------------------------------ evaluation
    def due_eval(self) -> bool:
        return self.counters.env_steps >= self._next_eval or (
            self.done and self.cfg.run.eval_every > 0)

    def evaluation_job(self, weights: dict) -> EvaluationJob:
        """The evaluation due now, with these weights (the learner's at this step). The next
        one falls due eval_every steps on, whenever this one's episodes finish."""
        want_images = self.wants_images()
        self._next_eval = self._next_multiple(self.cfg.run.eval_every)
        return EvaluationJob(self.cfg, *self._spaces, self.counters.env_steps, weights,
                             record_positions=want_images)

    def wants_images(self) -> bool:
        """Whether the evaluation due now also draws pictures (they need the learner)."""
        return (self.hooks.image_hook is not None and self.cfg.run.image_every > 0
                and (self.counters.env_steps >= self._next_image or self.done))

    def evaluate(self, weights: dict, learner: Any = None) -> dict[str, Any]:
        """Run the evaluation due now, here, and log it."""
        job = self.evaluation_job(weights)
        return self.record_evaluation(job, run_evaluation(job), learner)

    def record_evaluation(self, job: EvaluationJob, result: dict[str, Any],
                          learner: Any = None) -> dict[str, Any]:
        """Log an evaluation's result at its step (which a background one's run has passed)."""
        step = job.step
        scalars = {"eval/return_mean": result["return_mean"],
                   "eval/return_std": result["return_std"],
                   "eval/length_mean": result["length_mean"],
                   "eval/terminated_share": result["terminated_share"]}
        if "discounted_return_mean" in result:  # Figure 5's y-axis (Haarnoja et al. 2017)
            scalars["eval/discounted_return_mean"] = result["discounted_return_mean"]
            scalars["eval/discounted_return_std"] = result["discounted_return_std"]
        if "goals_reached" in result:
            scalars["eval/goals_reached"] = float(result["goals_reached"])
        if "mode_shares" in result:
            scalars["eval/modes_covered"] = float(result["modes_covered"])
            scalars.update(mode_share_scalars(result["mode_shares"], self._mode_labels))
        self.tb.scalars(scalars, step)
        # made only once logged: a Ctrl-C or SIGTERM during the episodes leaves it owed, and the
        # checkpoint written then tells the resumed run to make it
        self.counters.last_eval_step = step
        self.owes_evaluation = False
        self.last_eval = {**scalars, "goal_shares": result.get("goal_shares")}
        if job.record_positions:
            self.images(learner, result)
        return result

    def images(self, learner: Any, result: dict) -> None:
        step = self.counters.env_steps
        assert self.hooks.image_hook is not None
        pictures = self.hooks.image_hook(learner, result, step)
        for tag, rgb in pictures.items():
            self.tb.image(tag, rgb, step)
        self._next_image = self._next_multiple(self.cfg.run.image_every)

    # ------------------------------------------------------------------ checkpoints
    def due_checkpoint(self) -> bool:
        return self.counters.env_steps >= self._next_ckpt

    def checkpoint(self, learner_state: dict, replay_state: list[dict] | None) -> None:
        """``replay_state``: one state per replay shard (None for on-policy runs). A learner
        state holding nan or inf is not written (it would replace the last good checkpoint with
        weights nothing can be learned from): the run stops instead."""
        step = self.counters.env_steps
        bad = non_finite_tensors(learner_state)
        if bad:
            if self.diverged_at is None:
                self.diverged_at = step
                more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
                print(f"softq: error: the learner's state is not finite at step {step} "
                      f"({bad[0]}{more}): the run stops; {self.last_checkpoint_kept()}",
                      file=sys.stderr, flush=True)
            return
        self.counters.recent_returns = list(self.recent_returns)
        self.counters.recent_lengths = list(self.recent_lengths)
        # the config it was trained with, as plain types (resume and eval compare config.yaml)
        config = json.loads(json.dumps(dataclasses.asdict(self.cfg)))
        state = {"counters": self.counters.state_dict(), "runner": learner_state,
                 "config": config}
        if replay_state is not None:
            state["replay"] = arrays_as_tensors(replay_state)
        save_checkpoint(self.run_dir, state)
        self._last_checkpoint = step
        self._next_ckpt = self._next_multiple(self.cfg.run.checkpoint_every)

    def last_checkpoint_kept(self) -> str:
        """Where a run that writes no final checkpoint can go on from."""
        if self._last_checkpoint is None:
            return "no checkpoint was written"
        return f"checkpoint.pt keeps step {self._last_checkpoint}"

    def skip_final_checkpoint(self, why: BaseException) -> None:
        """Say that the final checkpoint is not written, why, and what stays."""
        print(f"softq: no final checkpoint: {why}; {self.last_checkpoint_kept()}",
              file=sys.stderr, flush=True)

    def close(self) -> dict[str, Any]:
        self.bar.close()
        self.tb.close()
        path = self.run_dir / "summary.json"
        if self.counters.env_steps == self._steps0 and not self.last_eval and path.is_file():
            return json.loads(path.read_text())  # a resume with nothing left to do
        summary = {
            "env_steps": self.counters.env_steps,
            "episodes": self.counters.episodes,
            "wall_s": time.perf_counter() - self._t0,
            "env_steps_per_s": (self.counters.env_steps - self._steps0)
            / max(time.perf_counter() - self._t0, 1e-9),
            **self.counters.best_so_far(),
            **{k: v for k, v in self.last_eval.items() if v is not None},
        }
        if self.diverged_at is not None:
            summary["diverged_at_step"] = self.diverged_at
        if self.interrupted and (not self.done or self._evaluation_was_due()):
            summary["interrupted"] = True  # at the budget's end too, while its final
            # evaluation is still owed: the run is not finished until a resume made it
        atomic_write_text(path, json.dumps(summary, indent=2))
        return summary
