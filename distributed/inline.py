"""Inline mode: every component called in one process, in a loop (tests, debugging, profiling).

The components are exactly those the Ray runtime places in actors: RolloutWorker, ReplayServer,
LearnerRunner, Driver. Only placement differs: off-policy one rollout worker feeds the replay;
on-policy the runtime.workers workers take turns, so each update's batch holds every worker's
envs, as on Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distributed.checkpoint import (
    CheckpointError,
    check_replay_shards,
    load_checkpoint,
    shape_differences,
)
from distributed.driver import Counters, Driver, DriverHooks
from distributed.interrupts import held_back, raise_pending, uninterrupted
from distributed.learner import LearnerRunner, TornLearnerState, probe_spaces
from distributed.replay_server import ReplayServer
from distributed.rollout import RolloutWorker, join_rollouts, uses_frame_replay


def restore(run_dir: Path | None, runner: LearnerRunner, server: ReplayServer | None
            ) -> Counters:
    """Load the run directory's checkpoint into the components (fresh counters if none)."""
    if run_dir is None:
        return Counters()
    state = load_checkpoint(run_dir)
    if server is not None and state.get("replay"):
        check_replay_shards(state["replay"], 1, inline=True)
    runner.load_state_dict(state["runner"])
    if server is not None and state.get("replay"):
        server.load_state_dict(state["replay"][0])
    return Counters(**state["counters"])


def with_own_optimizer_settings(theirs: Any, ours: dict[str, Any]) -> Any:
    """``theirs`` (a pretrained learner's state) with every optimizer's hyperparameters (lr,
    betas, eps, ...) taken from ``ours``: Optimizer.load_state_dict would otherwise bring the
    pretraining run's, and a fine-tuning run's own ``--set agent.q_lr=...`` would be ignored.
    The optimizer state (Adam's moments and step counts) is kept."""
    if not isinstance(theirs, dict):
        return theirs
    out = dict(theirs)
    for key, own in ours.items():
        saved = theirs.get(key)
        if not (_is_optimizer_state(own) and _is_optimizer_state(saved)):
            continue
        if len(own["param_groups"]) != len(saved["param_groups"]):
            continue  # another network layout: load_state_dict names the misfit
        groups = [{**mine, "params": old["params"]}
                  for mine, old in zip(own["param_groups"], saved["param_groups"], strict=True)]
        out[key] = {**saved, "param_groups": groups}
    return out


def _is_optimizer_state(obj: Any) -> bool:
    return isinstance(obj, dict) and "state" in obj and isinstance(obj.get("param_groups"), list)


def init_from_pretrained(runner: LearnerRunner, state: dict[str, Any]) -> None:
    """Fine-tuning: take another run's learned parameters, restart every schedule at zero."""
    misfit = (f"--init-from: the pretrained checkpoint does not fit this config's "
              f"{runner.cfg.algo} learner")
    learner_state = state.get("runner", {}).get("learner")
    ours = runner.learner.state_dict()
    differ = shape_differences(learner_state, ours,
                               skip=getattr(runner.learner, "DEVICE_DEPENDENT_STATE", ()))
    if differ:  # other network sizes or observation/action dimensions: name the first ones
        more = f" (and {len(differ) - 2} more)" if len(differ) > 2 else ""
        raise CheckpointError(f"{misfit}: {'; '.join(differ[:2])}{more}")
    try:
        runner.learner.load_state_dict(with_own_optimizer_settings(learner_state, ours))
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:  # e.g. another algorithm
        raise CheckpointError(f"{misfit} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]})") from exc
    if hasattr(runner.learner, "num_updates"):
        runner.learner.num_updates = 0
    if hasattr(runner.learner, "sync_target"):
        # The targets start at the pretrained networks, not at the pretraining run's last copy
        # (up to target_update_interval updates older, and kept another full interval now that
        # the count restarts), as the co-author's fine-tuning scripts set them.
        runner.learner.sync_target()


def train_inline(cfg: Any, run_dir: Path, hooks: DriverHooks | None = None,
                 resume: bool = False, init_state: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    # a signal while the components are built (a second or more: the learner, the checkpoint
    # being loaded) is raised in the try below, whose handler writes the final checkpoint: a new
    # run's directory otherwise held config.yaml and no checkpoint to --resume from
    with held_back():
        obs_space, act_space = probe_spaces(cfg)
        runner = LearnerRunner(cfg, obs_space, act_space)
        if init_state is not None:
            init_from_pretrained(runner, init_state)
        server = None
        if not runner.spec.on_policy:
            frame = uses_frame_replay(obs_space, cfg.env.id)
            # one server holds the whole replay (replay.shards splits it across Ray actors only)
            server = ReplayServer(cfg, frame_replay=frame,
                                  chunk_size=cfg.runtime.envs_per_worker, num_shards=1,
                                  frame_stack=obs_space.shape[0] if frame else 4)
        counters = restore(run_dir if resume else None, runner, server)
        # On-policy, the update's batch is every worker's envs: the workers take turns here as
        # they run side by side on Ray (the same envs, seeds and batch). Off-policy, one worker
        # feeds the replay. A resumed run's workers go on from its step count (warm-up, ...).
        n = cfg.runtime.workers if server is None else 1
        workers = [RolloutWorker(cfg, worker_index=i, num_workers=n,
                                 start_env_steps=counters.env_steps) for i in range(n)]
        driver = Driver(cfg, run_dir, counters, hooks, obs_space, act_space)
        for worker in workers:
            worker.set_weights(*runner.current())
    try:
        raise_pending()
        if driver.owes_evaluation:
            driver.evaluate(runner.learner.get_weights(), runner.learner)
        while not driver.done:
            if server is None:
                _on_policy_iteration(cfg, workers, runner, driver)
            else:
                _off_policy_iteration(workers[0], server, runner, driver)
            _housekeeping(cfg, driver, runner, server)
    except KeyboardInterrupt:
        driver.interrupted = True
        driver.bar.write("interrupted: writing a final checkpoint")
    finally:
        try:
            driver.checkpoint(runner.state_dict(), _replay_state(cfg, server))
        except TornLearnerState as exc:  # the update's own exception follows
            driver.skip_final_checkpoint(exc)
        for worker in workers:
            worker.close()
    return driver.close()


def _off_policy_iteration(worker: RolloutWorker, server: ReplayServer, runner: LearnerRunner,
                          driver: Driver) -> None:
    out = worker.collect(1)
    with uninterrupted():  # the chunk both in replay and counted, or neither
        server.insert(out["data"], force=True)  # inline: the learner catches up right below
        driver.record(out["env_steps"], out["episodes"], out["running_extremes"])
    while (batch := server.sample(exact=True)) is not None:
        with uninterrupted():  # never checkpoint half an update (DDPG: critic stepped, actor not)
            runner.update(batch)
        if runner.should_publish():
            worker.set_weights(*runner.publish())


def _on_policy_iteration(cfg: Any, workers: list[RolloutWorker], runner: LearnerRunner,
                         driver: Driver) -> None:
    outs = [worker.collect_rollout(cfg.agent.n_steps) for worker in workers]
    with uninterrupted():  # the rollouts both counted and learned from, or neither
        for out in outs:
            driver.record(out["env_steps"], out["episodes"], out["running_extremes"])
        runner.update(join_rollouts([out["data"] for out in outs]))
    weights = runner.publish()  # synchronous: every update is broadcast
    for worker in workers:
        worker.set_weights(*weights)


def _replay_state(cfg: Any, server: ReplayServer | None) -> list[dict] | None:
    if server is None:
        return None
    return [server.state_dict(with_contents=cfg.replay.save_contents)]


def _housekeeping(cfg: Any, driver: Driver, runner: LearnerRunner,
                  server: ReplayServer | None) -> None:
    if driver.due_eval():
        driver.evaluate(runner.learner.get_weights(), runner.learner)
    if driver.due_log():
        metrics = runner.pop_metrics()
        if server is not None:
            metrics.update(server.stats())
        metrics["weights/lag"] = 0.0
        driver.log(metrics)
    if driver.due_checkpoint():
        driver.checkpoint(runner.state_dict(), _replay_state(cfg, server))
