"""Ray actor bodies around the plain components (RolloutWorker, ReplayServer, LearnerRunner).

The components stay Ray-free; this module adds only what placement needs: pulling weights from
the weight store (distributed/weight_store.py) when the version moved, pushing chunks to a
replay shard (which holds the call while the rate limiter says wait:
distributed/replay_shard.py), and the learner's prefetching train loop that publishes weights
with one ``ray.put`` per version (as numpy arrays: ``weights_to_store``).
"""

from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
import torch
from ray.exceptions import ObjectLostError

from distributed.checkpoint import cpu_state
from distributed.learner import LearnerRunner
from distributed.replay_server import shard_of_worker
from distributed.rollout import RolloutWorker, join_rollouts

# the longest a learner's sample request waits in its shard for data the limiter allows
_SAMPLE_WAIT_S = 0.05


@dataclass(frozen=True)
class _Kept:
    """A numpy array a plug-in published among its weights: it comes back an array, not a
    tensor (``weights_from_store`` turns the bare arrays into tensors)."""
    value: np.ndarray


def weights_to_store(weights: dict[str, Any]) -> dict[str, Any]:
    """Weights as they go into Ray's object store: numpy views of the CPU tensors. Ray keeps
    numpy arrays out of band (one copy into shared memory, zero-copy reads); a torch tensor is
    pickled through torch.save instead: the Nature CNN's 1.7M parameters took 27-33 ms to put
    against 3-9 ms, and 7-12 ms against 4-5 ms to fetch and load (on-policy runs do both on
    every update)."""
    out: dict[str, Any] = {}
    for k, v in weights.items():
        if isinstance(v, np.ndarray):
            out[k] = _Kept(v)
            continue
        try:
            out[k] = v.detach().numpy() if isinstance(v, torch.Tensor) else v
        except (TypeError, RuntimeError):  # bfloat16, a CUDA tensor: it travels as a tensor
            out[k] = v
    return out


def weights_from_store(weights: dict[str, Any]) -> dict[str, Any]:
    """``weights_to_store``'s inverse: tensors over the (read-only, shared) arrays, which the
    policy's load_state_dict copies from and never writes."""
    with warnings.catch_warnings():  # torch warns that the arrays are not writable
        warnings.simplefilter("ignore", UserWarning)
        return {k: torch.from_numpy(v) if isinstance(v, np.ndarray)
                else v.value if isinstance(v, _Kept) else v for k, v in weights.items()}


class RolloutWorkerActor(RolloutWorker):
    """Takes the weight store and replay shards by *name*, not handle: Ray re-runs the
    constructor on a restart, and actor handles among the constructor arguments put them in the
    object store, which makes Ray warn that a restart may fail (ray-project/ray#53727).

    ``start_env_steps``: the run's env-step count when the driver created this actor (0 for a
    fresh run), kept however late the actor's process comes up: a worker that starts after the
    others have run a while is not a mid-run restart (it takes its share of the random warm-up
    and its envs' seeds do not depend on timing). Ray re-runs the constructor with the same
    arguments on a restart, so a restarted worker goes on from the count the store holds."""

    def __init__(self, cfg: Any, worker_index: int, num_workers: int, weight_store_name: str,
                 shard_names: list[str], start_env_steps: int = 0):
        store = ray.get_actor(weight_store_name)
        # True when Ray restarted this actor, even before it ever reported (e.g. killed while
        # being created): the driver cannot see that from the incarnation id alone.
        restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        if restarted:
            start_env_steps = ray.get(store.get_run_env_steps.remote())
        super().__init__(cfg, worker_index, num_workers, start_env_steps=start_env_steps)
        self.weight_store = store
        self.shard = (ray.get_actor(shard_names[shard_of_worker(worker_index, len(shard_names))])
                      if shard_names else None)
        self.weight_pulls = 0
        self.incarnation = uuid.uuid4().hex  # new on every (re)start: the driver counts restarts
        self.restarted = restarted

    def identity(self) -> dict[str, Any]:
        """What the driver's restart count reads from every report."""
        return {"incarnation": self.incarnation, "restarted": self.restarted}

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def env_step_count(self) -> int:
        """This worker's own env-step count, its share of the run's (its schedules read it)."""
        return self.env_steps

    def pull_weights(self) -> bool:
        """Fetch weights only when the published version moved; True if they changed. Weights
        whose owner, the learner, died before they were fetched are skipped: the worker acts on
        with what it has until the replacement learner publishes."""
        newer = ray.get(self.weight_store.get_if_newer.remote(self.weights_version))
        if newer is None:
            return False
        version, (ref,) = newer
        try:
            weights = weights_from_store(ray.get(ref))
        except ObjectLostError:  # OwnerDiedError among them
            return False
        self.set_weights(weights, version)
        self.weight_pulls += 1
        return True

    def run(self, num_steps: int) -> dict[str, Any]:
        """Off-policy: pull weights if newer, collect, push the chunk (waiting while the rate
        limiter says the workers are ahead). Returns the episode/timing report without data."""
        self.pull_weights()
        report = self.collect(num_steps)
        chunk = report.pop("data")
        # the shard holds the call while the rate limiter says the workers are ahead
        report["rate_limited_s"] = ray.get(self.shard.insert_when_allowed.remote(chunk))
        report["weight_pulls"] = self.weight_pulls
        report.update(self.identity())
        return report

    def rollout(self, horizon: int, weights: dict | None, version: int
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        """On-policy: act with exactly the broadcast weights. Returns (report, time-major
        rollout) as two objects (call with ``num_returns=2``), so the rollout goes from this
        worker to the learner by reference and never through the driver."""
        if weights is not None and version != self.weights_version:
            self.set_weights(weights_from_store(weights), version)
        report = self.collect_rollout(horizon)
        data = report.pop("data")
        report.update(self.identity())
        return report, data


def actor_device(device: str, gpu_ids: list[Any]) -> str:
    """The learner actor's device: 'auto' is CUDA only when the actor reserved a GPU
    (runtime.learner_num_gpus > 0; Ray 2.60 does not hide the node's GPUs from an actor that
    reserved none, so torch would see them); an explicit device is kept."""
    if device == "auto":
        return "cuda" if gpu_ids else "cpu"
    return device


class LearnerActor:
    """Owns a LearnerRunner; trains from replay shards with one sample request in flight."""

    def __init__(self, cfg: Any, observation_space: Any, action_space: Any, weight_store: Any,
                 replay_shards: list[Any]):
        device = actor_device(cfg.runtime.device, ray.get_gpu_ids())
        self.runner = LearnerRunner(cfg, observation_space, action_space, device=device)
        self.cfg, self.weight_store, self.shards = cfg, weight_store, replay_shards
        self._shard_i = 0
        # one request per worker in turn, to the shard that worker writes to:
        # each shard is sampled in proportion to its writers, so 3 workers on 2 shards are not
        # held to the pace of the one alone on its shard (whose data was then half of all batches)
        self._shard_order = [shard_of_worker(i, len(replay_shards))  # [] on-policy: no replay
                             for i in range(max(cfg.runtime.workers, len(replay_shards)))
                             if replay_shards]
        self._weights_ref: list[Any] = []

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def device(self) -> str:
        return str(getattr(self.runner.learner, "device", "cpu"))

    def publish(self) -> int:
        weights, version = self.runner.publish()
        self._weights_ref = [ray.put(weights_to_store(weights))]  # one put per version
        ray.get(self.weight_store.publish.remote(version, self._weights_ref))
        return version

    def _request(self) -> Any:
        shard = self.shards[self._shard_order[self._shard_i % len(self._shard_order)]]
        self._shard_i += 1
        return shard.sample_when_allowed.remote(4, _SAMPLE_WAIT_S)

    def train(self, seconds: float) -> dict[str, Any]:
        """Update for about ``seconds``; the next batches are fetched while these train. Every
        batch drawn is trained on before this returns, so between calls (when the driver reads
        the state to checkpoint) the shards' sample counts are exactly the updates made: a
        resume or a replacement learner keeps the update-to-data ratio to the batch. Returns
        the updates made, the seconds this call took and those it waited for batches."""
        start = time.perf_counter()
        deadline = start + seconds
        done = 0
        waited = 0.0
        request = self._request()
        while request is not None:
            t0 = time.perf_counter()
            batches = ray.get(request)  # [] after _SAMPLE_WAIT_S in the shard without data
            waited += time.perf_counter() - t0
            # prefetch while we update, unless these are the last
            request = self._request() if time.perf_counter() < deadline else None
            for batch in batches:
                self.runner.update(batch)
                done += 1
                if self.runner.should_publish():
                    self.publish()
        return {"updates": done, "wait_s": waited, "seconds": time.perf_counter() - start,
                "version": self.runner.version}

    def update_on_policy(self, *rollouts: dict[str, Any]) -> tuple[int, list[Any]]:
        """Concatenate the workers' rollouts along the env axis, update once, publish; returns
        the new version and [its weights' ref] (one call per update for the driver)."""
        self.runner.update(join_rollouts(list(rollouts)))
        weights, version = self.runner.publish()
        self._weights_ref = [ray.put(weights_to_store(weights))]
        return version, self._weights_ref

    def pop_metrics(self) -> dict[str, float]:
        return self.runner.pop_metrics()

    def state_dict(self) -> dict[str, Any]:
        return cpu_state(self.runner.state_dict())  # the driver may have no CUDA

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.runner.load_state_dict(state)

    def init_from_pretrained(self, state: dict[str, Any]) -> None:
        from distributed.inline import init_from_pretrained

        init_from_pretrained(self.runner, state)

    def current_weights(self) -> tuple[dict, int]:
        return self.runner.current()

    def continue_versions_after(self, version: int) -> None:
        """A replacement learner: number its weights after ``version``, the newest published."""
        self.runner.version = max(self.runner.version, int(version))

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(learner, *args)`` here (pictures that need the Q network)."""
        return fn(self.runner.learner, *args)
