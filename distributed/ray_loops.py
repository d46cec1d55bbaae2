"""The driver loops of the Ray runtime: asynchronous off-policy and lockstep on-policy."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray

from distributed.driver import Driver
from distributed.learner import LearnerRunner, cpu_copy_quietly
from distributed.ray_actors import weights_to_store
from distributed.ray_runtime import ACTOR_ERRORS, RayRuntime

MAX_FAILURES_IN_A_ROW = 3  # replacements of one actor with no success between: give up


class FailureStreak:
    """Consecutive failures per actor (workers 0..N-1, the learner as N). A failure that keeps
    coming back (a worker whose constructor raises, a dead replay shard, a learner that cannot
    load) would otherwise restart actors forever without a word: after
    MAX_FAILURES_IN_A_ROW the run stops and names the cause."""

    def __init__(self, num_workers: int):
        self.counts = [0] * (num_workers + 1)
        self.learner = num_workers

    def ok(self, i: int) -> None:
        self.counts[i] = 0

    def failed(self, i: int, exc: BaseException) -> None:
        self.counts[i] += 1
        if self.counts[i] >= MAX_FAILURES_IN_A_ROW:
            who = "the learner" if i == self.learner else f"rollout worker {i}"
            lines = str(exc).strip().splitlines()  # a Ray error: the remote traceback's tail
            raise RuntimeError(f"{who} failed {self.counts[i]} times in a row; giving up. Last "
                               f"error: {type(exc).__name__}: {' | '.join(lines[-6:])[:1500]}"
                               ) from exc


class RestartWatch:
    """Counts worker restarts that no failed task reported. Ray can restart a killed worker
    between two of its tasks (then only the report's incarnation id changes) or before its
    first report (then the first report says ``restarted``). Several restarts between two
    reports count as one."""

    FORGOTTEN = "forgotten"

    def __init__(self, num_workers: int):
        self.seen: list[str | None] = [None] * num_workers  # None: no report yet

    def saw(self, i: int, report: dict[str, Any], counters: Any) -> None:
        incarnation, last = report["incarnation"], self.seen[i]
        if last is None:
            counters.worker_restarts += int(report["restarted"])
        elif last not in (incarnation, self.FORGOTTEN):
            counters.worker_restarts += 1
        self.seen[i] = incarnation

    def forget(self, i: int) -> None:
        """Worker i failed a task (already counted by replace_worker): its next id is news."""
        self.seen[i] = self.FORGOTTEN


class WaitShares:
    """Which side of an off-policy Ray run is the bottleneck, per log window: the share of its
    train calls' time the learner waited for batches, and of their report cycles (collect +
    push) the workers were held back by the rate limiter. Logged as
    ``runtime/learner_wait_share`` and ``runtime/worker_wait_share``: a learner that waits
    wants more workers; workers that wait have a learner at its limit."""

    def __init__(self) -> None:
        self.learner = [0.0, 0.0]  # seconds waited, seconds in train calls
        self.workers = [0.0, 0.0]  # seconds held back, seconds collecting + held back

    def learner_trained(self, result: dict[str, Any]) -> None:
        self.learner[0] += result["wait_s"]
        self.learner[1] += result["seconds"]

    def worker_reported(self, report: dict[str, Any]) -> None:
        held = report.get("rate_limited_s", 0.0)
        self.workers[0] += held
        self.workers[1] += report["seconds"] + held

    def pop(self) -> dict[str, float]:
        """The shares since the last pop (a side with no finished call in the window: none)."""
        out = {}
        for name, (waited, total) in (("learner", self.learner), ("worker", self.workers)):
            if total > 0:
                out[f"runtime/{name}_wait_share"] = waited / total
        self.learner, self.workers = [0.0, 0.0], [0.0, 0.0]
        return out


def off_policy_loop(rt: RayRuntime, driver: Driver) -> None:
    cfg = rt.cfg
    published = ray.get(rt.learner.publish.remote())
    steps = cfg.runtime.steps_per_push
    pending: dict[Any, int] = {w.run.remote(steps): i for i, w in enumerate(rt.workers)}
    learner_call = rt.learner.train.remote(cfg.runtime.learner_train_s)
    per_worker = np.zeros(len(rt.workers))  # env steps since the last log, per worker
    # each worker's version as of its last report; before its first, the one its first run
    # pulls at least (0 made a resumed run's first weights/lag about the learner's version)
    versions = np.full(len(rt.workers), float(published))
    watch = RestartWatch(len(rt.workers))
    streak = FailureStreak(len(rt.workers))
    shares = WaitShares()
    while not driver.done:
        ready, _ = ray.wait([*pending, learner_call], num_returns=1, timeout=1.0)
        for ref in ready:
            if ref == learner_call:
                try:
                    shares.learner_trained(ray.get(ref))
                    streak.ok(streak.learner)
                except ACTOR_ERRORS as exc:
                    _stop_if_a_helper_died(rt, exc)
                    streak.failed(streak.learner, exc)
                    rt.replace_learner(driver.counters)
                    ray.get(rt.learner.publish.remote())
                learner_call = rt.learner.train.remote(cfg.runtime.learner_train_s)
                continue
            i = pending.pop(ref)
            try:
                report = ray.get(ref)
            except ACTOR_ERRORS as exc:
                _stop_if_a_helper_died(rt, exc)
                streak.failed(i, exc)
                rt.replace_worker(i, driver.counters)
                watch.forget(i)
            else:
                streak.ok(i)
                watch.saw(i, report, driver.counters)
                shares.worker_reported(report)
                driver.record(report["env_steps"], report["episodes"], report["running_extremes"])
                per_worker[i] += report["env_steps"]
                versions[i] = report["version"]
            if not driver.done:
                pending[rt.workers[i].run.remote(steps)] = i
        if rt.hooks.on_tick is not None:
            rt.hooks.on_tick(rt)
        _housekeeping(rt, driver, per_worker, versions, shares)
    try:  # no more learner calls: workers the rate limiter holds back would wait for them
        ray.get([s.stop_inserts.remote() for s in rt.shards])
    except ACTOR_ERRORS:
        pass  # a dead shard: its workers' tasks fail, and the wait below ends anyway
    finished, _ = ray.wait(list(pending), num_returns=len(pending), timeout=10)
    for ref in finished:  # their steps are past the budget; a restart among them still counts
        try:
            watch.saw(pending[ref], ray.get(ref), driver.counters)
        except ACTOR_ERRORS:
            pass


def _stop_if_a_helper_died(rt: RayRuntime, exc: BaseException) -> None:
    """A dead replay shard (or weight store) ends the run at once, named: it is not restarted
    (its contents are gone), and replacing the worker or learner whose call to it failed would
    only count restarts that never happened and reload a healthy learner from the last
    checkpoint, until the failure streak gave up naming the wrong actor."""
    who = rt.dead_helper(exc)
    if who is not None:
        raise RuntimeError(f"{who} died ({type(exc).__name__}); the run cannot go on without it: "
                           f"resume it from its last checkpoint (the final one, unless the "
                           f"learner died too; a lost shard then starts empty)") from exc


def on_policy_loop(rt: RayRuntime, driver: Driver) -> None:
    cfg = rt.cfg
    weights, version = ray.get(rt.learner.current_weights.remote())
    weights_ref: Any = ray.put(weights_to_store(weights))
    per_worker = np.zeros(len(rt.workers))
    watch = RestartWatch(len(rt.workers))
    streak = FailureStreak(len(rt.workers))
    while not driver.done:
        calls = [w.rollout.options(num_returns=2).remote(cfg.agent.n_steps, weights_ref, version)
                 for w in rt.workers]  # [(report ref, rollout ref)] per worker
        try:
            reports = ray.get([report for report, _ in calls])
        except ACTOR_ERRORS as exc:
            for i, w in enumerate(rt.workers):
                try:
                    ray.get(w.get_version.remote(), timeout=30)
                except Exception:  # noqa: BLE001
                    streak.failed(i, exc)
                    rt.replace_worker(i, driver.counters)
                    watch.forget(i)
            continue
        for i in range(len(rt.workers)):
            streak.ok(i)
        # Rollouts go from the workers to the learner as object refs: the driver never holds them.
        try:
            version, (weights_ref,) = ray.get(
                rt.learner.update_on_policy.remote(*[data for _, data in calls]))
            streak.ok(streak.learner)
        except ACTOR_ERRORS as exc:  # the learner died: a new one from the last checkpoint;
            streak.failed(streak.learner, exc)  # these rollouts are dropped, steps not counted
            rt.replace_learner(driver.counters)
            # on-policy weights never go through the store: number them above the last
            # broadcast (a worker that holds that version would keep the dead learner's weights)
            ray.get(rt.learner.continue_versions_after.remote(version + 1))
            weights, version = ray.get(rt.learner.current_weights.remote())
            weights_ref = ray.put(weights_to_store(weights))
            continue
        for i, r in enumerate(reports):
            watch.saw(i, r, driver.counters)
            driver.record(r["env_steps"], r["episodes"], r["running_extremes"])
            per_worker[i] += r["env_steps"]
        if rt.hooks.on_tick is not None:
            rt.hooks.on_tick(rt)
        _housekeeping(rt, driver, per_worker, np.full(len(rt.workers), version - 1.0))


def pool_shard_stats(shards: list[dict[str, float]]) -> dict[str, float]:
    """One replay's statistics from its shards': sizes, rates and totals add up; the
    samples-per-insert ratio is that of the totals (not one shard's, nor a sum of ratios)."""
    out: dict[str, float] = {}
    for stats in shards:
        for k, v in stats.items():
            out[k] = out.get(k, 0.0) + v
    counted = out.get("replay/counted_inserts", 0.0)
    out["replay/samples_per_insert"] = (out.get("replay/total_samples", 0.0) / counted
                                        if counted else float("nan"))
    return out


def _housekeeping(rt: RayRuntime, driver: Driver, per_worker: np.ndarray,
                  versions: np.ndarray, shares: WaitShares | None = None) -> None:
    """Evaluate, log and checkpoint when due. A learner that died meanwhile is left to the
    loop, whose own call to it fails next and replaces it; what was due stays due."""
    try:
        _evaluate_log_checkpoint(rt, driver, per_worker, versions, shares)
    except ACTOR_ERRORS as exc:
        if not rt.is_learner_death(exc):
            _stop_if_a_helper_died(rt, exc)
            raise


def _evaluate_log_checkpoint(rt: RayRuntime, driver: Driver, per_worker: np.ndarray,
                             versions: np.ndarray, shares: WaitShares | None) -> None:
    # for workers that Ray restarts from here on (at every report, not only at log steps: with
    # run.log_every=0 or a long interval a restarted worker would take a second random warm-up
    # and reseed its envs as at the start)
    rt.note_env_steps(driver.counters.env_steps)
    rt.evals.collect(driver)  # log a background evaluation that has finished
    if driver.due_eval():
        if driver.done or driver.wants_images():  # here, after the one running (its step first)
            rt.evals.collect(driver, wait=True)
            evaluate_now(rt, driver)
        elif not rt.evals.running:  # else it starts once that one has landed
            rt.evals.start(rt.learner, driver)
    if driver.due_log():
        elapsed = max(time.perf_counter() - rt.last_log_time, 1e-9)
        rt.last_log_time = time.perf_counter()
        metrics = ray.get(rt.learner.pop_metrics.remote())
        if rt.shards:
            metrics.update(pool_shard_stats(ray.get([s.stats.remote() for s in rt.shards])))
        for i, n in enumerate(per_worker):
            metrics[f"rollout/worker_{i}/env_steps_per_s"] = n / elapsed
        per_worker[:] = 0
        metrics["weights/lag"] = float(metrics.get("weights/version", 0.0) - versions.mean())
        if shares is not None:
            metrics.update(shares.pop())
        driver.log(metrics)
    if driver.due_checkpoint():
        rt.checkpoint(driver)


def evaluate_now(rt: RayRuntime, driver: Driver) -> None:
    weights, _ = ray.get(rt.learner.current_weights.remote())
    driver.evaluate(weights, _ShadowLearner(rt))


class _ShadowLearner:
    """Lazily materialises a local copy of the learner for pictures (Q contours)."""

    def __init__(self, rt: RayRuntime):
        self._rt = rt
        self._learner: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._learner is None:
            cfg = self._rt.cfg
            with cpu_copy_quietly():
                runner = LearnerRunner(cfg, self._rt.obs_space, self._rt.act_space, device="cpu")
                runner.load_state_dict(ray.get(self._rt.learner.state_dict.remote()))
            self._learner = runner.learner
        return getattr(self._learner, name)
