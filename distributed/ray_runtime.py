"""Local and cluster modes: the same components placed in Ray actors.

Off-policy: N RolloutWorker actors push chunks to S ReplayServer shards; a LearnerActor samples
(prefetching), updates and publishes weights to a WeightStore with one ``ray.put`` per version;
workers fetch the ref only when the version moved. On-policy: workers step in lockstep for n
steps, their rollouts go straight (as object refs) to the learner, which updates once and
broadcasts. The driver (this module) logs, evaluates, checkpoints and restarts what died.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError

from agents.registry import get_algorithm
from distributed.checkpoint import (
    CheckpointError,
    check_replay_shards,
    load_checkpoint,
    tensors_as_arrays,
)
from distributed.driver import Counters, Driver, DriverHooks
from distributed.interrupts import held_back, raise_pending
from distributed.learner import TornLearnerState, probe_spaces
from distributed.ray_actors import LearnerActor, RolloutWorkerActor
from distributed.ray_address import check_reachable
from distributed.ray_evaluation import BackgroundEvaluation
from distributed.replay_server import ReplayServer, ReplaySettings
from distributed.replay_shard import ReplayShard
from distributed.rollout import uses_frame_replay
from distributed.weight_store import WeightStore

ACTOR_ERRORS = (RayActorError,)


def init_ray(cfg: Any) -> bool:
    """Start (local) or join (cluster) Ray; True when this call started it. The dashboard stays
    off locally; token authentication keeps Ray's default (on for local clusters since 2.59)."""
    if ray.is_initialized():
        return False
    if cfg.runtime.address:
        # cluster: code comes from the job's --working-dir or the nodes' install (cluster.yaml)
        check_reachable(cfg.runtime.address)
        ray.init(address=cfg.runtime.address)
    else:
        # local: workers import this checkout (and plug-in algorithms beside it) like the driver
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [
            str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))}}
        rt = cfg.runtime
        needed = rt.workers * rt.worker_num_cpus + rt.learner_num_cpus
        ray.init(num_cpus=max(os.cpu_count() or 1, int(needed + 0.999)),
                 include_dashboard=False, runtime_env=env, log_to_driver=False)
    return True


class RayRuntime:
    def __init__(self, cfg: Any, run_dir: Path, hooks: DriverHooks | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.obs_space, self.act_space = probe_spaces(cfg)
        rt = cfg.runtime
        # workers look the store and shards up by these names (unique per runtime)
        prefix = f"softq-{uuid.uuid4().hex[:12]}"
        self.store_name = f"{prefix}-weights"
        self.store = ray.remote(num_cpus=0)(WeightStore).options(name=self.store_name).remote()
        self.on_policy = get_algorithm(cfg.algo).on_policy
        self.shards: list[Any] = []
        self.shard_names: list[str] = []
        if not self.on_policy:
            frame = uses_frame_replay(self.obs_space, cfg.env.id)
            # the most transitions one push carries: an episode's end also flushes the n - 1
            # steps its n-step window held back (the frame replay folds n steps itself). The
            # limiter's slack must hold that much, else it can refuse both such a chunk and
            # the learner's next batch: the run stuck for good
            pending = 0 if frame else cfg.replay.n_step - 1
            chunk = (rt.steps_per_push + pending) * rt.envs_per_worker
            server_cls = ray.remote(num_cpus=0)(ReplayShard)
            self.shard_names = [f"{prefix}-replay-{i}" for i in range(max(1, cfg.replay.shards))]
            stack = self.obs_space.shape[0] if frame else 4  # [stack, H, W] frame stacks
            settings = ReplaySettings.of(cfg)  # not cfg: the shards' processes skip torch
            self.shards = [server_cls.options(name=name).remote(settings, frame, i, chunk,
                                                                frame_stack=stack)
                           for i, name in enumerate(self.shard_names)]
        self.learner = self._make_learner()
        self.workers: list[Any] = []  # start_workers(), once the run's step count is known
        self.hooks = hooks or DriverHooks()
        self.last_log_time = time.perf_counter()  # per-worker env-step rates are per log window
        self._noted_env_steps = -1  # the run's env-step count the store last heard
        self.init_state: dict | None = None  # fine-tuning source, re-applied if the learner dies
        self.evals = BackgroundEvaluation()  # evaluations beside training (ray_evaluation.py)
        # each shard's sample count when the learner was in the state a replacement would load
        # (the last checkpoint written, else the run's start): the replacement redoes the rest
        self._samples_at_learner_state = [0] * len(self.shards)

    # ------------------------------------------------------------------ actors
    def _make_learner(self) -> Any:
        rt = self.cfg.runtime
        cls = ray.remote(num_cpus=rt.learner_num_cpus, num_gpus=rt.learner_num_gpus,
                         max_restarts=0)(LearnerActor)
        return cls.remote(self.cfg, self.obs_space, self.act_space, self.store, self.shards)

    def start_workers(self, env_steps: int) -> None:
        """Create the rollout workers; they go on from the run's ``env_steps`` (resume)."""
        self.note_env_steps(env_steps, wait=True)
        self.workers = [self._make_worker(i, env_steps) for i in range(self.cfg.runtime.workers)]

    def note_env_steps(self, env_steps: int, wait: bool = False) -> None:
        """Tell the store the run's env-step count, which workers that Ray restarts read."""
        if env_steps == self._noted_env_steps and not wait:
            return
        self._noted_env_steps = env_steps
        ref = self.store.set_run_env_steps.remote(env_steps)
        if wait:
            ray.get(ref)

    def _make_worker(self, i: int, env_steps: int) -> Any:
        rt = self.cfg.runtime
        cls = ray.remote(num_cpus=rt.worker_num_cpus, max_restarts=-1,
                         max_task_retries=0)(RolloutWorkerActor)
        return cls.remote(self.cfg, i, rt.workers, self.store_name, self.shard_names,
                          env_steps)

    def replace_worker(self, i: int, counters: Counters) -> None:
        """A worker died: let Ray's restart serve if it answers, else create a new one."""
        counters.worker_restarts += 1
        try:
            ray.get(self.workers[i].get_version.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - any failure means: build a fresh actor
            ray.kill(self.workers[i], no_restart=True)
            self.workers[i] = self._make_worker(i, counters.env_steps)

    def replace_learner(self, counters: Counters) -> None:
        """The learner died: a new one resumes from the last checkpoint (if any). Its weight
        versions go on above the dead one's last (the store and the workers drop any version
        they have seen), so the workers take its next publish."""
        counters.learner_restarts += 1
        ray.kill(self.learner, no_restart=True)
        self.learner = self._make_learner()
        try:
            state = load_checkpoint(self.run_dir)
        except CheckpointError:  # no checkpoint yet: start where the run started
            if self.init_state is not None:
                ray.get(self.learner.init_from_pretrained.remote(self.init_state))
        else:
            ray.get(self.learner.load_state_dict.remote(state["runner"]))
        ray.get([shard.rewind_samples.remote(n)
                 for shard, n in zip(self.shards, self._samples_at_learner_state)])
        last_seen = ray.get(self.store.latest_version.remote())
        ray.get(self.learner.continue_versions_after.remote(last_seen))

    def is_learner_death(self, exc: BaseException) -> bool:
        """Whether ``exc`` (a RayActorError) says that the current learner actor died."""
        return getattr(exc, "actor_id", None) == self.learner._actor_id.hex()

    def dead_helper(self, exc: BaseException) -> str | None:
        """The replay shard or weight store whose death ``exc`` (a RayActorError) reports, else
        None. A worker's or the learner's task that called a dead shard fails with the shard's
        ActorDiedError, which is no sign that the worker or learner itself died."""
        dead = getattr(exc, "actor_id", None)
        if dead is None:
            return None
        for i, shard in enumerate(self.shards):
            if dead == shard._actor_id.hex():
                return f"replay shard {i}"
        return "the weight store" if dead == self.store._actor_id.hex() else None

    def replay_states(self, lost_ok: bool = False, with_contents: bool | None = None
                      ) -> list[dict] | None:
        """Every shard's state (with its contents under replay.save_contents). ``lost_ok``, for
        the final checkpoint: a shard that died gets ReplayServer.lost_state() (it resumes
        empty) instead of failing the checkpoint, which keeps the learner's progress since the
        last one and the other shards' contents. ``with_contents``: None for
        replay.save_contents."""
        if not self.shards:
            return None
        if with_contents is None:
            with_contents = self.cfg.replay.save_contents
        refs = [s.state_dict.remote(with_contents) for s in self.shards]
        if not lost_ok:
            return ray.get(refs)
        states = []
        for ref in refs:
            try:
                states.append(ray.get(ref))
            except ACTOR_ERRORS:
                states.append(ReplayServer.lost_state())
        return states

    def restore(self, state: dict) -> Counters:
        saved = state.get("replay") or []
        check_replay_shards(saved, len(self.shards), inline=False)
        ray.get(self.learner.load_state_dict.remote(state["runner"]))
        for shard, shard_state in zip(self.shards, saved, strict=True):
            # arrays, not the checkpoint's tensors: the shard's process has no torch to unpickle
            ray.get(shard.load_state_dict.remote(tensors_as_arrays(shard_state)))
        self._note_learner_state_samples(self.replay_states(with_contents=False))
        return Counters(**state["counters"])

    def checkpoint(self, driver: Driver, lost_ok: bool = False) -> list[int]:
        """Write a checkpoint of the learner and the shards; returns the shards saved as lost
        (``lost_ok``: see replay_states). The learner's state first: it comes once its train
        call is done, which trains on every batch it drew, so the shards' sample counts are
        exactly the updates saved."""
        learner_state = ray.get(self.learner.state_dict.remote())
        replay = self.replay_states(lost_ok=lost_ok)
        driver.checkpoint(learner_state, replay)
        self._note_learner_state_samples(replay)
        return [i for i, s in enumerate(replay or []) if s.get("lost")]

    def _note_learner_state_samples(self, replay: list[dict] | None) -> None:
        self._samples_at_learner_state = [int(s["limiter"]["samples"]) for s in replay or []]

    def shutdown(self) -> None:
        self.evals.stop()
        for actor in [*self.workers, self.learner, *self.shards, self.store]:
            ray.kill(actor, no_restart=True)


def train_ray(cfg: Any, run_dir: Path, hooks: DriverHooks | None = None, resume: bool = False,
              init_state: dict | None = None) -> dict[str, Any]:
    started = init_ray(cfg)
    runtime = None
    try:
        # a signal while the actors are built and restored is raised in the try below, whose
        # handler writes the final checkpoint (else a new run's directory had no checkpoint)
        with held_back():
            runtime = RayRuntime(cfg, run_dir, hooks)
            counters = Counters()
            if resume:
                counters = runtime.restore(load_checkpoint(run_dir))
            elif init_state is not None:
                runtime.init_state = init_state
                ray.get(runtime.learner.init_from_pretrained.remote(init_state))
            runtime.start_workers(counters.env_steps)
            driver = Driver(cfg, run_dir, counters, hooks, runtime.obs_space, runtime.act_space)
        from distributed.ray_loops import evaluate_now, off_policy_loop, on_policy_loop

        loop = on_policy_loop if runtime.on_policy else off_policy_loop
        try:
            raise_pending()
            if driver.owes_evaluation:
                evaluate_now(runtime, driver)
            loop(runtime, driver)
        except KeyboardInterrupt:
            driver.interrupted = True
            driver.bar.write("interrupted: writing a final checkpoint")
        finally:
            runtime.evals.stop()  # one still running stays owed: the checkpoint says so
            try:
                lost = runtime.checkpoint(driver, lost_ok=True)
            except TornLearnerState as exc:  # its train call's exception follows
                driver.skip_final_checkpoint(getattr(exc, "cause", exc))  # not Ray's traceback
            except ACTOR_ERRORS as exc:  # a dead learner: keep the last checkpoint
                driver.bar.write(f"no final checkpoint ({type(exc).__name__}); the last one "
                                 "stays as it was")
            else:
                if lost:
                    driver.bar.write(f"final checkpoint without replay shard(s) {lost} (dead): "
                                     "on resume they start empty")
        return driver.close()
    finally:
        if runtime is not None:
            runtime.shutdown()
        if started:
            ray.shutdown()
