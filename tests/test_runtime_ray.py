"""The Ray runtime on a local 2-CPU Ray: weight broadcast, parity, rate limit, fault tolerance,
a two-node cluster, and resume after the driver is killed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
import torch

from distributed.checkpoint import load_checkpoint
from distributed.driver import DriverHooks
from distributed.learner import LearnerRunner, probe_spaces
from distributed.ray_runtime import train_ray
from distributed.replay_server import ReplayServer
from distributed.replay_shard import ReplayShard
from distributed.weight_store import WeightStore
from launch.compare_cmd import read_scalars
from launch.config import load_config

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]


def counting_config(tmp_steps=1200, **overrides):
    sets = [
        "algo=tests.counting_algo:SPEC", "agent={}", "replay.min_size=64",
        "replay.batch_size=8", "replay.save_contents=true", "run.eval_every=0",
        "run.random_steps=0",
        "run.log_every=200", "run.checkpoint_every=100000", "run.image_every=0",
        f"run.total_env_steps={tmp_steps}", "runtime.inline=false", "runtime.workers=2",
        "runtime.envs_per_worker=2", "runtime.steps_per_push=4",
        "runtime.weight_publish_interval=5", "runtime.learner_train_s=0.1",
        "runtime.learner_num_cpus=0", "runtime.worker_num_cpus=0.5",
    ]
    sets += [f"{k}={v}" for k, v in overrides.items()]
    return load_config("multigoal-quick", sets)


def test_weight_store_hands_out_a_ref_only_when_the_version_moved():
    store = WeightStore()
    assert store.get_if_newer(-1) is None
    store.publish(3, ["ref3"])
    assert store.get_if_newer(-1) == (3, ["ref3"])
    assert store.get_if_newer(3) is None  # worker already has v3: nothing to fetch
    store.publish(2, ["stale"])  # out-of-order publish is ignored
    assert store.get_if_newer(0) == (3, ["ref3"])


def test_weight_broadcast_with_a_counting_policy(local_ray, tmp_path):
    cfg = counting_config()
    summary = train_ray(cfg, tmp_path)
    state = load_checkpoint(tmp_path)
    final_updates = state["runner"]["learner"]["num_updates"]
    acts = state["replay"][0]["buffer"]["data"]["action"].numpy()  # insertion order
    assert summary["env_steps"] >= 1200
    for w in (0, 1):
        stamps = acts[acts[:, 1] == w, 0]
        assert len(stamps) > 100
        # after the learner publishes stamp v, later transitions of that worker carry >= v
        assert np.all(np.diff(stamps) >= 0)
        # stamps are published update counts: multiples of the publish interval
        assert np.all(stamps % 5 == 0)
        assert len(np.unique(stamps)) >= 5
        # workers kept up: their newest weights are recent (async, so only a loose bound:
        # the learner may train on for a while after a worker's last pull)
        assert stamps.max() >= 0.75 * final_updates


def test_learner_parity_in_process_and_in_a_ray_actor(local_ray):
    cfg = load_config("multigoal-quick", ["agent.hidden_sizes=[32, 32]"])
    obs_space, act_space = probe_spaces(cfg)
    rng = np.random.default_rng(0)
    batches = [{
        "obs": rng.normal(size=(64, 2)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(64, 2)).astype(np.float32),
        "reward": rng.normal(size=64).astype(np.float32),
        "next_obs": rng.normal(size=(64, 2)).astype(np.float32),
        "discount": np.full(64, 0.99, np.float32),
    } for _ in range(3)]
    local = LearnerRunner(cfg, obs_space, act_space, device="cpu")
    remote = ray.remote(num_cpus=0)(LearnerRunner).remote(cfg, obs_space, act_space, "cpu")
    for batch in batches:
        assert local.update(batch) == ray.get(remote.update.remote(batch))
    remote_state = ray.get(remote.state_dict.remote())
    for k, v in local.learner.get_weights().items():
        assert torch.equal(v, ray.get(remote.current.remote())[0][k])
    assert remote_state["updates"] == local.updates == 3
    ray.kill(remote)


def test_an_on_policy_run_learns_the_same_inline_and_on_ray(local_ray, tmp_path):
    """A2C with 2 workers x 2 envs: inline the workers take turns, on Ray they run side by side;
    the updates (batches of all 4 envs, 20 of them) and so the weights are bit for bit the same.
    Inline used to run one worker whatever runtime.workers said: a batch of 2 envs, 40 updates."""
    from distributed.inline import train_inline

    sets = ["runtime.workers=2", "runtime.envs_per_worker=2", "run.total_env_steps=400",
            "run.eval_every=0", "run.log_every=100", "runtime.learner_num_cpus=0",
            "runtime.worker_num_cpus=0.5"]
    train_inline(load_config("cartpole-a2c", [*sets, "runtime.inline=true"]), tmp_path / "inline")
    train_ray(load_config("cartpole-a2c", [*sets, "runtime.inline=false"]), tmp_path / "ray")
    inline, on_ray = (load_checkpoint(tmp_path / d)["runner"] for d in ("inline", "ray"))
    assert inline["updates"] == on_ray["updates"] == 400 // (2 * 2 * 5)
    for part in ("net", "optim"):
        for k, v in flat_tensors(inline["learner"][part]).items():
            assert torch.equal(v, flat_tensors(on_ray["learner"][part])[k]), (part, k)


def flat_tensors(state: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested state dict, by its dotted key path."""
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    if isinstance(state, dict):
        return {k: v for key, sub in state.items()
                for k, v in flat_tensors(sub, f"{prefix}.{key}" if prefix else str(key)).items()}
    return {}


def test_rate_limiter_holds_the_update_to_data_ratio(local_ray, tmp_path):
    """With the default rate_tolerance (0) each shard's ratio is the configured one to within
    one chunk's samples either way (with 0.1 a learner-bound run settled near 0.9 of it). Three
    workers on two shards: workers 0 and 2 write to shard 0, and the learner samples it twice as
    often, so no worker is held to another's pace (alternating shards, shard 1's lone worker
    supplied half of all batches and the other two ran at half its pace: inserts 1272 / 1136).
    Four updates per env step keep the learner the bottleneck."""
    cfg = counting_config(tmp_steps=2400, **{"replay.updates_per_step": 4,
                                             "replay.shards": 2, "runtime.workers": 3,
                                             "runtime.worker_num_cpus": 0.25})
    assert cfg.replay.rate_tolerance == 0.0
    train_ray(cfg, tmp_path)
    state = load_checkpoint(tmp_path)
    spi, slack, min_size = 4 * 8, max(8, 4 * 8 * 8), 64 // 2
    for shard in state["replay"]:
        lim = shard["limiter"]
        counted = lim["inserts"] - min_size
        assert spi * counted - slack - spi * 8 <= lim["samples"] <= spi * counted + slack
    inserts = [shard["limiter"]["inserts"] for shard in state["replay"]]
    assert 1.6 <= inserts[0] / inserts[1] <= 2.5, inserts
    # every sampled batch was trained on (a train call ends with its prefetch trained)
    samples = sum(shard["limiter"]["samples"] for shard in state["replay"])
    assert samples == state["runner"]["updates"] * 8
    # TensorBoard tells which side is the bottleneck: the workers are held back (~0.95 of
    # their time), the learner waits little (~0.2)
    learner, workers = _wait_shares(tmp_path)
    assert workers.mean() > 0.6 > learner.mean()


def _wait_shares(run_dir):
    from launch.compare_cmd import read_scalars

    shares = [read_scalars(run_dir, f"runtime/{side}_wait_share")[1] for side in
              ("learner", "worker")]
    assert all(((v >= 0) & (v <= 1)).all() for v in shares)
    return shares


def test_a_shard_checkpoint_taken_while_inserts_go_on_holds_the_rows_its_counts_say(local_ray):
    """The shard is an asyncio actor: Ray serialises a state_dict's result while the inserts
    queued behind it already run. Rows it returned as views of the live buffer were then
    overwritten mid-serialisation (rows of inserts its total_inserted does not count)."""
    rows, dim, chunks = 1000, 1000, 10  # 80 MB of observations: a serialisation that takes a while
    cfg = load_config("multigoal-quick", [f"replay.capacity={rows * chunks}", "replay.min_size=10"])
    shard = ray.remote(num_cpus=0)(ReplayShard).remote(cfg, chunk_size=rows, num_shards=1)
    shapes = {"obs": (rows, dim), "next_obs": (rows, dim), "action": (rows, 2),
              "reward": (rows,), "discount": (rows,)}
    refs = [ray.put({k: np.full(shape, float(v), np.float32) for k, shape in shapes.items()})
            for v in range(4)]
    ray.get([shard.insert.remote(refs[0], True) for _ in range(chunks)])  # full of 0s
    for value in (1, 2, 3):
        before = value * rows * chunks
        state = shard.state_dict.remote(True)
        later = [shard.insert.remote(refs[value], True) for _ in range(chunks)]
        buffer = ray.get(state)["buffer"]
        ray.get(later)
        counted = min(buffer["total_inserted"] - before, rows * chunks)
        assert int((buffer["data"]["reward"] == value).sum()) == counted
    ray.kill(shard)


def test_a_shard_state_with_no_rows_yet_is_checkpointed_and_restored(local_ray, tmp_path):
    """A shard whose buffer is allocated but holds 0 rows: Ray hands out its zero-length arrays
    (float32, int64, ...) at one address, and tensors sharing them made torch.save refuse the
    checkpoint ('view the same data as different types')."""
    from distributed.checkpoint import arrays_as_tensors, save_checkpoint
    from distributed.replay_server import ReplaySettings

    cfg = load_config("multigoal-quick", ["replay.capacity=10", "replay.min_size=1"])
    shard = ray.remote(num_cpus=0)(ReplayShard).remote(ReplaySettings.of(cfg), num_shards=1)
    empty = {"obs": np.zeros((0, 3), np.float32), "action": np.zeros((0, 2), np.int64),
             "reward": np.zeros(0, np.float32), "done": np.zeros(0, bool)}
    assert ray.get(shard.insert.remote(empty, True))
    state = ray.get(shard.state_dict.remote(True))
    ray.kill(shard)
    save_checkpoint(tmp_path, {"counters": {"env_steps": 0}, "runner": {},
                               "replay": arrays_as_tensors([state])})  # as Driver.checkpoint
    back = ReplayServer(cfg, num_shards=1)
    back.load_state_dict(load_checkpoint(tmp_path)["replay"][0])
    assert back.size() == 0
    assert {k: (v.shape, v.dtype) for k, v in back.buffer._storage.items()} == {
        "obs": ((10, 3), np.float32), "action": ((10, 2), np.int64),
        "reward": ((10,), np.float32), "done": ((10,), bool)}


def test_a_push_that_flushes_n_step_windows_does_not_stall_the_run(local_ray, tmp_path):
    """With 5-step returns and 1-step pushes, an episode's end pushes up to 5 transitions; a
    rate limiter sized for 1-transition chunks then refused both that push and the learner's
    next batch, and the run waited forever."""
    deadline = time.monotonic() + 120

    def give_up(rt):
        if time.monotonic() > deadline:
            raise TimeoutError("the run is stuck: no worker push and no batch is allowed")

    cfg = counting_config(600, **{"replay.n_step": 5, "runtime.steps_per_push": 1,
                                  "runtime.envs_per_worker": 1, "runtime.workers": 1,
                                  "replay.min_size": 16})
    summary = train_ray(cfg, tmp_path, DriverHooks(on_tick=give_up))
    assert summary["env_steps"] >= 600


def test_a_learner_starved_of_data_shows_in_its_wait_share(local_ray, tmp_path):
    """One update per 20 env steps: the learner waits for batches (~0.9 of its time) and the
    limiter holds the workers back hardly at all (~0.06)."""
    train_ray(counting_config(tmp_steps=1200, **{"replay.updates_per_step": 0.05}), tmp_path)
    learner, workers = _wait_shares(tmp_path)
    assert learner.mean() > 0.5 > workers.mean()



def test_pong_trains_on_ray_from_frame_replay_shards(local_ray, tmp_path):
    """The Atari path on Ray: 5-step soft DQN on Pong, 2 workers writing uint8 frame chunks to
    2 frame-replay shards (actors that hold inserts while the limiter says wait). Every sample
    drawn is trained on, at the configured ratio, and the shards rebuild full frame stacks."""
    steps, min_size = 400, 160
    cfg = load_config("pong-soft-dqn-5step", [
        "run.eval_every=0", "run.log_every=100", "run.checkpoint_every=100000000",
        "run.image_every=0", f"run.total_env_steps={steps}", f"replay.min_size={min_size}",
        "replay.capacity=2000", "replay.batch_size=8", "replay.updates_per_step=0.25",
        "replay.shards=2", "replay.save_contents=true", "env.max_episode_steps=100",
        "runtime.inline=false", "runtime.workers=2", "runtime.envs_per_worker=1",
        "runtime.steps_per_push=8", "runtime.learner_num_cpus=0",
        "runtime.worker_num_cpus=0.5", "runtime.learner_train_s=0.2"])
    train_ray(cfg, tmp_path)
    state = load_checkpoint(tmp_path)
    limiters = [s["limiter"] for s in state["replay"]]
    assert sum(lim["samples"] for lim in limiters) == state["runner"]["updates"] * 8
    counted = sum(lim["inserts"] - min_size // 2 for lim in limiters)
    # at the ratio to within one chunk's samples either way per shard (0.25 x 8 x 8 = 16)
    assert abs(state["runner"]["updates"] - 0.25 * counted) <= 2 * 16 / 8
    assert state["runner"]["updates"] > 0
    for shard in state["replay"]:  # single 84x84 frames, one stored per step (stacks rebuilt)
        buffer = shard["buffer"]
        assert buffer["stack"] == 4 and buffer["store"]["frame"].dtype == torch.uint8
        assert tuple(buffer["store"]["frame"].shape[1:]) == (84, 84)
        assert buffer["total_inserted"] == shard["limiter"]["inserts"] > min_size // 2

def test_weight_lag_after_a_resume_counts_from_the_published_version(local_ray, tmp_path):
    """The workers' versions started at 0: at a resumed run's first log, a worker that had not
    reported yet counted as acting with version 0, and weights/lag jumped to about half the
    learner's version (two workers: here about 110 instead of a few)."""
    train_ray(counting_config(), tmp_path)
    version = load_checkpoint(tmp_path)["runner"]["version"]
    assert version >= 100
    # a log after every report: the first comes when only one worker has reported
    train_ray(counting_config(1300, **{"run.log_every": 8}), tmp_path, resume=True)
    steps, lag = read_scalars(tmp_path, "weights/lag")
    after = lag[steps > 1200]
    assert len(after) >= 5 and after.max() < 20, after


def test_inline_replay_holds_the_whole_capacity_and_resumes_only_its_own_shards(tmp_path):
    """Inline mode runs one replay server: replay.shards (a split across Ray actors) must not
    shrink it; a checkpoint with another number of shard states is refused by name."""
    from distributed.checkpoint import CheckpointError, save_checkpoint
    from distributed.inline import train_inline

    over = {"runtime.inline": "true", "replay.shards": 4, "replay.capacity": 300}
    train_inline(counting_config(400, **over), tmp_path)
    state = load_checkpoint(tmp_path)
    assert len(state["replay"]) == 1
    assert len(state["replay"][0]["buffer"]["data"]["action"]) == 300  # not 300 / 4
    state["replay"] = state["replay"] * 2  # as a Ray run with two shards saves it
    save_checkpoint(tmp_path, {k: v for k, v in state.items() if k != "format"})
    with pytest.raises(CheckpointError, match="2 replay shard.*runtime.inline=false"):
        train_inline(counting_config(800, **over), tmp_path, resume=True)


def test_a_killed_worker_and_learner_are_replaced_and_training_goes_on(local_ray, tmp_path,
                                                                      capfd):
    """A worker killed right at the start, then the learner: Ray restarts the worker; a new
    learner takes over from the last checkpoint (at step 100, a few dozen updates) and the
    workers act with its weights, not the dead one's (whose weights they may not even fetch).
    It redoes the dead one's updates since that checkpoint: the shard counted their samples as
    drawn, so the run used to end that many updates short of its update-to-data ratio."""
    cfg = counting_config(tmp_steps=2400, **{"run.checkpoint_every": 100})
    killed: dict[str, Any] = {}

    def kill(rt):
        if "worker" not in killed:
            # before, during or after its first task: each way of dying is counted
            ray.kill(rt.workers[0], no_restart=False)  # Ray restarts it (max_restarts=-1)
            killed["worker"] = True
        elif "learner" not in killed and ray.get(rt.store.latest_version.remote()) >= 20:
            killed["learner"] = ray.get(rt.store.latest_version.remote())
            ray.kill(rt.learner, no_restart=True)

    summary = train_ray(cfg, tmp_path, DriverHooks(on_tick=kill))
    state = load_checkpoint(tmp_path)
    assert "learner" in killed and summary["env_steps"] >= 2400
    assert state["counters"]["worker_restarts"] >= 1
    assert state["counters"]["learner_restarts"] == 1
    # every sample the shard counts was trained on by the learner saved
    assert state["replay"][0]["limiter"]["samples"] == state["runner"]["updates"] * 8
    acts = state["replay"][0]["buffer"]["data"]["action"].numpy()
    assert (acts[:, 1] == 0).sum() > 0 and (acts[:, 1] == 1).sum() > 0
    # worker 1 was never killed: its stamps (the update count of the weights it acted with)
    # fall at most once, when the new learner's weights reach it (unless the new learner has
    # redone the dead one's updates by then), and end at the new learner's last updates: it
    # did not keep acting with the dead learner's weights (~100 updates)
    stamps = acts[acts[:, 1] == 1, 0]
    assert len(np.flatnonzero(np.diff(stamps) < 0)) <= 1
    assert stamps[-1] >= state["runner"]["updates"] - 100 > 1000
    # workers get the store and shards by name: no actor handle among the constructor
    # arguments of a restartable actor, so Ray has nothing to warn about (ray#53727)
    assert "constructor arguments in the object store" not in capfd.readouterr().err


def test_a_killed_on_policy_learner_is_replaced(local_ray, tmp_path):
    """A2C in lockstep on two Ray workers: the learner killed mid-run is replaced (afresh: no
    checkpoint yet), the round it was killed in is dropped, and the run ends with a checkpoint
    of the new learner."""
    cfg = load_config("cartpole-a2c", [
        "runtime.inline=false", "runtime.workers=2", "runtime.envs_per_worker=4",
        "runtime.learner_num_cpus=0", "runtime.worker_num_cpus=0.5", "run.eval_every=0",
        "run.log_every=400", "run.total_env_steps=2000"])
    killed: dict[str, int] = {}
    acted_with: list[dict[str, torch.Tensor]] = []

    def kill(rt):
        if killed and not acted_with:  # the first round after the replacement has trained:
            acted_with.extend(ray.get([w.__ray_call__.remote(  # what each worker acted with
                lambda worker: worker.policy.net.state_dict()) for w in rt.workers]))
            return
        version = ray.get(rt.learner.current_weights.remote())[1]
        if not killed and version >= 20:
            killed["at"] = version
            ray.kill(rt.learner, no_restart=True)

    summary = train_ray(cfg, tmp_path, DriverHooks(on_tick=kill))
    state = load_checkpoint(tmp_path)
    assert killed and summary["env_steps"] >= 2000
    # that round was collected with the new learner's weights (afresh: its initial ones), not
    # with the dead learner's last, whose version number the new one's had taken
    fresh = LearnerRunner(cfg, *probe_spaces(cfg), device="cpu").learner.get_weights()
    assert len(acted_with) == 2
    for weights in acted_with:
        for k, v in fresh.items():
            assert torch.equal(weights[k], v), k
    assert state["counters"]["learner_restarts"] == 1
    # 40 steps (2 workers x 4 envs x 5 steps) per update: the new learner made the rest
    updates = state["runner"]["updates"]
    assert 0 < updates < 2000 // 40 - killed["at"] + 1
    # its weight versions went on above the dead one's (they restarted at 0: on-policy weights
    # never pass through the store that replace_learner reads the last version from)
    assert state["runner"]["version"] >= killed["at"] + updates


def test_a_dead_replay_shard_stops_the_run_naming_it_and_checkpoints_the_rest(local_ray,
                                                                             tmp_path):
    """A worker's or the learner's task fails when the replay shard it calls has died: that was
    taken for their own death (restarts counted, a healthy learner killed and reloaded from the
    last checkpoint) until the failure streak gave up naming "rollout worker 0". The final
    checkpoint used to fail on the dead shard too, losing the learner's progress since the last
    one (here: no checkpoint at all); now the dead shard is saved as lost and resumes empty."""
    killed = []

    def kill(rt):
        survivor_size = ray.get(rt.shards[1].size.remote())  # worker 1 fills it
        if not killed and ray.get(rt.store.latest_version.remote()) >= 5 and survivor_size:
            killed.append(survivor_size)
            ray.kill(rt.shards[0], no_restart=True)

    cfg = counting_config(1_000_000, **{"replay.shards": 2})
    with pytest.raises(RuntimeError, match="replay shard 0 died .*resume it from its last"):
        train_ray(cfg, tmp_path, DriverHooks(on_tick=kill))
    state = load_checkpoint(tmp_path)  # the final checkpoint (checkpoint_every is 100,000)
    assert killed and state["runner"]["learner"]["num_updates"] >= 5
    lost, kept = state["replay"]
    assert lost.get("lost") and "buffer" not in lost
    assert len(kept["buffer"]["data"]["action"]) >= killed[0] > 0  # the survivor's contents

    def until_shard_0_is_fed(rt):  # else worker 1 can spend the 400 steps before worker 0 starts
        deadline = time.monotonic() + 60
        while not ray.get(rt.shards[0].size.remote()) and time.monotonic() < deadline:
            time.sleep(0.05)

    updates, more = state["runner"]["learner"]["num_updates"], state["counters"]["env_steps"] + 400
    summary = train_ray(counting_config(more, **{"replay.shards": 2}), tmp_path, resume=True,
                        hooks=DriverHooks(on_tick=until_shard_0_is_fed))
    state = load_checkpoint(tmp_path)
    assert summary["env_steps"] >= more and state["runner"]["learner"]["num_updates"] > updates
    assert "lost" not in state["replay"][0] and len(state["replay"][0]["buffer"]["data"]["action"])


def test_an_update_that_raises_half_done_leaves_the_last_checkpoint_as_it_was(local_ray,
                                                                             tmp_path, capfd):
    """The learner's 300th update raises after counting itself (DDPG: after the critic's step,
    before the actor's). The final checkpoint used to save that state, one no run ever had, over
    the last good one; now the error reaches the caller and checkpoint.pt keeps its step."""
    cfg = counting_config(1_000_000, **{"run.checkpoint_every": 200, "agent.fail_at_update": 300})
    with pytest.raises(RuntimeError, match="update 300 failed half done"):
        train_ray(cfg, tmp_path)
    state = load_checkpoint(tmp_path)
    step = state["counters"]["env_steps"]
    assert step > 0 and step % 200 == 0  # a periodic checkpoint, not a final one
    assert state["runner"]["learner"]["num_updates"] == state["runner"]["updates"] < 300
    assert (f"no final checkpoint: the learner stopped part way through an update "
            f"(RuntimeError in update 300); checkpoint.pt keeps step {step}"
            in capfd.readouterr().err)


def test_a_failure_that_keeps_coming_back_stops_the_run_with_its_error():
    """A worker whose constructor raises, or whose replay shard died, fails again on every
    replacement: after MAX_FAILURES_IN_A_ROW failures of one actor with no success between, the
    loops give up and name the cause instead of replacing it forever. (Driving this through
    train_ray with a policy that cannot start takes ~25 s of actor creations: the loops call
    exactly these two methods around every task.)"""
    from distributed.ray_loops import MAX_FAILURES_IN_A_ROW, FailureStreak

    streak = FailureStreak(num_workers=2)
    cause = RuntimeError("line 1\nthe policy refuses to start")
    for _ in range(MAX_FAILURES_IN_A_ROW - 1):
        streak.failed(1, cause)
        streak.failed(streak.learner, cause)
    streak.ok(1)  # a report in between: the streak starts over
    for _ in range(MAX_FAILURES_IN_A_ROW - 1):
        streak.failed(1, cause)
    with pytest.raises(RuntimeError, match="the learner failed 3 times in a row.*refuses"):
        streak.failed(streak.learner, cause)
    with pytest.raises(RuntimeError, match="rollout worker 1 failed 3 times") as err:
        streak.failed(1, cause)
    assert err.value.__cause__ is cause


def test_shard_statistics_pool_into_one_replays():
    """Two shards' stats (as ReplayServer.stats reports them) -> one replay's: the ratio is
    total samples over total counted inserts; a shard still below min_size adds no ratio."""
    from distributed.ray_loops import pool_shard_stats

    cfg = counting_config(**{"replay.shards": 2, "replay.min_size": 20})
    a, b = ReplayServer(cfg, shard_index=0), ReplayServer(cfg, shard_index=1)
    chunk = {k: np.zeros((30,) + ((2,) if k in ("obs", "next_obs", "action") else ()),
                         np.float32) for k in ("obs", "action", "reward", "next_obs", "discount")}
    a.insert(chunk, force=True)  # 30 inserts: 20 counted beyond the shard's min_size (20 / 2)
    b.insert({k: v[:5] for k, v in chunk.items()}, force=True)  # below min_size
    for _ in range(5):
        assert a.sample(8) is not None
    pooled = pool_shard_stats([a.stats(), b.stats()])
    assert pooled["replay/size"] == 35 and pooled["replay/total_samples"] == 40
    assert pooled["replay/counted_inserts"] == 20
    assert pooled["replay/samples_per_insert"] == 2.0  # 40 samples / 20 counted inserts


def test_wait_shares_are_the_waited_part_of_each_sides_time_per_log_window():
    from distributed.ray_loops import WaitShares

    shares = WaitShares()
    shares.learner_trained({"wait_s": 0.1, "seconds": 0.5})
    shares.learner_trained({"wait_s": 0.3, "seconds": 0.5})
    shares.worker_reported({"seconds": 0.02, "rate_limited_s": 0.06})
    shares.worker_reported({"seconds": 0.04})  # a report without waiting
    assert shares.pop() == pytest.approx({"runtime/learner_wait_share": 0.4 / 1.0,
                                          "runtime/worker_wait_share": 0.06 / 0.12})
    assert shares.pop() == {}  # a window with no finished call names no share
    shares.worker_reported({"seconds": 0.01, "rate_limited_s": 0.03})
    assert shares.pop() == pytest.approx({"runtime/worker_wait_share": 0.75})


def test_restart_watch_counts_a_restart_no_task_reported():
    # Ray may restart a killed worker between two tasks: no task fails, only the report's
    # incarnation id changes. A failed task (counted by replace_worker) makes the next id news.
    # A worker restarted before its first report says so in that report.
    from distributed.driver import Counters
    from distributed.ray_loops import RestartWatch

    def report(inc, restarted=False):
        return {"incarnation": inc, "restarted": restarted}

    counters, watch = Counters(), RestartWatch(3)
    for i, inc in [(0, "a"), (1, "x"), (0, "a"), (1, "x"), (0, "b"), (0, "b")]:
        watch.saw(i, report(inc), counters)
    assert counters.worker_restarts == 1  # worker 0: a -> b
    counters.worker_restarts += 1  # what replace_worker counts when worker 1's task fails
    watch.forget(1)
    watch.saw(1, report("y", restarted=True), counters)  # Ray's restart served: not twice
    assert counters.worker_restarts == 2
    watch.saw(2, report("p", restarted=True), counters)  # restarted before any report
    watch.saw(2, report("p", restarted=True), counters)
    assert counters.worker_restarts == 3


def identity_once_up(worker: Any) -> dict:
    """worker.identity(), asked again while Ray says the actor is restarting (a call made
    then fails at once: the workers have max_task_retries=0)."""
    deadline = time.time() + 60
    while True:
        try:
            return ray.get(worker.identity.remote(), timeout=60)
        except ray.exceptions.ActorUnavailableError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_a_worker_killed_before_its_first_report_says_it_was_restarted(local_ray, tmp_path):
    from distributed.driver import Counters
    from distributed.ray_loops import RestartWatch
    from distributed.ray_runtime import RayRuntime

    rt = RayRuntime(counting_config(), tmp_path)
    rt.start_workers(1000)  # as on resuming a run at 1,000 env steps
    try:
        ray.kill(rt.workers[0], no_restart=False)  # at once: it may still be being created
        reports = [identity_once_up(w) for w in rt.workers]
        assert [r["restarted"] for r in reports] == [True, False]
        # both go on from the run's count, the restarted one too: 500 steps each of the two
        assert ray.get([w.env_step_count.remote() for w in rt.workers]) == [500, 500]
        counters, watch = Counters(), RestartWatch(2)
        for i, r in enumerate(reports):
            watch.saw(i, r, counters)
        assert counters.worker_restarts == 1
    finally:
        rt.shutdown()


def test_a_worker_that_comes_up_late_is_not_taken_for_a_restart(local_ray, tmp_path):
    """Actors come up asynchronously: a worker whose process starts after the others have run
    (a busy machine, a node the autoscaler adds) still starts where the driver created it: its
    share of the random warm-up and its envs' seeds do not depend on when it came up."""
    from distributed.ray_runtime import RayRuntime

    rt = RayRuntime(counting_config(**{"run.random_steps": 200}), tmp_path)
    rt.start_workers(0)  # a fresh run
    rt.note_env_steps(1000, wait=True)  # the run went on while they were being created
    try:
        assert ray.get([w.env_step_count.remote() for w in rt.workers], timeout=60) == [0, 0]
    finally:
        rt.shutdown()


def test_the_store_hears_the_runs_step_count_without_log_steps(local_ray, tmp_path):
    """Workers that Ray restarts read the run's step count from the weight store: with
    run.log_every=0 it was only told at the end, so a restart took a second random warm-up
    and reseeded its envs as at the start of the run."""
    heard = []

    def listen(rt):
        heard.append(ray.get(rt.store.get_run_env_steps.remote()))

    train_ray(counting_config(400, **{"run.log_every": 0}), tmp_path, DriverHooks(on_tick=listen))
    assert max(heard) >= 200


def test_a_learner_gpu_the_local_ray_lacks_is_refused_before_any_write(local_ray):
    """The learner actor reserves runtime.learner_num_gpus: more than the local Ray has kept it
    pending forever, the run hanging without a word (log_to_driver is off locally). softq train
    starts Ray (here: finds it started) before it makes the run directory."""
    from launch.config import ConfigError
    from launch.train_cmd import _start_ray

    cfg = counting_config(**{"runtime.learner_num_gpus": 64})
    with pytest.raises(ConfigError, match="learner_num_gpus=64: this machine's Ray has 0 GPU"):
        _start_ray(cfg)
    assert ray.is_initialized()  # a Ray it did not start is left running


def random_actions(acts: np.ndarray) -> int:
    """Transitions of the random warm-up: the counting policy's actions are [stamp, worker]."""
    return int(np.count_nonzero(acts[:, 1] != np.round(acts[:, 1])))


def test_inline_resume_goes_on_from_the_runs_step_count(tmp_path):
    """A resumed inline run neither repeats the random warm-up nor restarts the exploration
    schedules (they read the worker's step count), and its envs do not replay the first
    episodes' seeds."""
    from distributed.inline import train_inline
    from distributed.rollout import worker_seed

    cfg = counting_config(400, **{"runtime.inline": "true", "run.random_steps": 200,
                                  "run.checkpoint_every": 400})
    train_inline(cfg, tmp_path)
    cfg = counting_config(800, **{"runtime.inline": "true", "run.random_steps": 200,
                                  "run.checkpoint_every": 400})
    train_inline(cfg, tmp_path, resume=True)
    acts = load_checkpoint(tmp_path)["replay"][0]["buffer"]["data"]["action"].numpy()
    assert len(acts) == 800
    assert random_actions(acts) == 200 and random_actions(acts[:200]) == 200
    assert worker_seed(0, 0) == 0 and worker_seed(0, 0, 400) not in (0, worker_seed(0, 0, 800))


def test_a_signal_while_the_ray_run_is_set_up_ends_it_with_a_checkpoint(local_ray, tmp_path,
                                                                        monkeypatch):
    """SIGTERM while train_ray builds its actors: the KeyboardInterrupt escaped before the
    handler that writes the final checkpoint, leaving a run directory with nothing to resume."""
    import signal

    from distributed.interrupts import signals_as_interrupt
    from distributed.ray_runtime import RayRuntime

    real = RayRuntime.start_workers

    def start_workers(self, env_steps):
        real(self, env_steps)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(RayRuntime, "start_workers", start_workers)
    # as `softq train` does: Ray (local_ray here) and its SIGTERM handler first, then ours
    with signals_as_interrupt() as received:
        summary = train_ray(counting_config(), tmp_path)
    assert received == [signal.SIGTERM] and summary["interrupted"]
    assert load_checkpoint(tmp_path)["counters"]["env_steps"] == 0


def test_evaluations_run_beside_training_and_land_at_their_own_steps(local_ray, tmp_path):
    """An evaluation used to pause the Ray run (the driver ran its episodes). Now it runs in an
    evaluator actor while workers and learner go on, and is logged at the step it fell due with
    how far the run had gone on by then; the final one runs in the driver, at the last step."""
    from launch.compare_cmd import read_scalars

    cfg = counting_config(tmp_steps=1600, **{"run.eval_every": 200, "run.eval_episodes": 2})
    summary = train_ray(cfg, tmp_path)
    steps, _ = read_scalars(tmp_path, "eval/return_mean")
    lag_steps, lags = read_scalars(tmp_path, "eval/lag_env_steps")
    final = summary["env_steps"]
    assert steps[-1] == final and load_checkpoint(tmp_path)["counters"]["last_eval_step"] == final
    assert (np.diff(steps) > 0).all() and len(steps) >= 2
    assert set(lag_steps) == set(steps[:-1])  # every one but the final ran in the background
    assert lags.max() > 0  # training went on while it ran (the actor's start alone takes ~1 s)
    assert (steps[:-1] >= 200).all() and (steps[:-1] < final).all()


def test_an_evaluation_still_running_when_the_run_is_stopped_stays_owed(local_ray, tmp_path):
    """Ctrl-C while a background evaluation runs: it is dropped, the checkpoint records none as
    made, and the resumed run makes it first, at the step it resumes from."""
    from launch.compare_cmd import read_scalars

    def interrupt_while_evaluating(rt):
        if rt.evals.running:
            raise KeyboardInterrupt

    cfg = counting_config(tmp_steps=100_000, **{"run.eval_every": 200, "run.eval_episodes": 2})
    train_ray(cfg, tmp_path, DriverHooks(on_tick=interrupt_while_evaluating))
    stopped = load_checkpoint(tmp_path)["counters"]
    assert stopped["last_eval_step"] == -1 and stopped["env_steps"] >= 200
    more = stopped["env_steps"] + 100
    train_ray(counting_config(tmp_steps=more, **{"run.eval_every": 200,
                                                  "run.eval_episodes": 2}),
              tmp_path, resume=True)
    steps, _ = read_scalars(tmp_path, "eval/return_mean")
    assert steps[0] == stopped["env_steps"] and steps[-1] >= more


def test_resume_after_the_driver_is_killed(local_ray, tmp_path, monkeypatch):
    """`softq train` in a subprocess (its own Ray) is killed with everything it started; the
    checkpoint it left resumes (`--resume`, here in this process on the shared Ray) with its
    replay contents and without a second random warm-up."""
    from launch.cli import main

    run = tmp_path / "run"
    argv = [sys.executable, "-m", "launch.cli", "train", "multigoal-quick", "--workers", "1",
            "--out", str(run), "--set", "algo=tests.counting_algo:SPEC", "--set", "agent={}",
            "--set", "replay.min_size=64", "--set", "replay.batch_size=8",
            "--set", "replay.save_contents=true", "--set", "run.eval_every=0",
            "--set", "run.random_steps=200",
            "--set", "run.checkpoint_every=400", "--set", "run.total_env_steps=1000000",
            "--set", "runtime.learner_num_cpus=0", "--set", "runtime.steps_per_push=4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "checkpoint.pt").exists():
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
        proc.wait()
    before = load_checkpoint(run)
    steps = before["counters"]["env_steps"]
    assert steps >= 400
    size_before = len(before["replay"][0]["buffer"]["data"]["action"])
    assert size_before > 0
    # config.yaml names a plug-in module: allowed by name
    monkeypatch.setenv("SOFTQ_PLUGIN_MODULES", "tests.counting_algo")
    assert main(["train", "--resume", str(run),
                 "--set", f"run.total_env_steps={steps + 200}"]) == 0
    after = load_checkpoint(run)
    assert after["counters"]["env_steps"] >= steps + 200
    assert after["runner"]["learner"]["num_updates"] >= before["runner"]["learner"]["num_updates"]
    # the replay contents came back: the old rows are still there, plus the new ones
    acts = after["replay"][0]["buffer"]["data"]["action"].numpy()
    assert len(acts) >= size_before + 200
    # the resumed worker went on from the run's step count: no second random warm-up
    assert random_actions(acts) == 200
    # with evaluation turned on, a run with nothing left to do still makes its final one
    done = after["counters"]["env_steps"]
    assert main(["train", "--resume", str(run), "--set", f"run.total_env_steps={done}",
                 "--set", "run.eval_every=1000000", "--set", "run.eval_episodes=1"]) == 0
    assert read_scalars(run, "eval/return_mean")[0].tolist() == [done]
    assert load_checkpoint(run)["counters"]["last_eval_step"] == done


# The test below needs a Ray of its own: it shuts the shared one (local_ray) down, so it
# comes last.

def test_two_node_cluster_runs_actors_on_both_nodes(tmp_path):
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        nodes = set()

        def record_nodes(rt):
            if not nodes:
                nodes.update(ray.get([w.node_id.remote() for w in rt.workers]))
                nodes.add(ray.get(rt.learner.node_id.remote()))

        cfg = counting_config(tmp_steps=600, **{"runtime.learner_num_cpus": 1,
                                                "runtime.worker_num_cpus": 1,
                                                "runtime.address": cluster.address})
        summary = train_ray(cfg, tmp_path, DriverHooks(on_tick=record_nodes))
        assert summary["env_steps"] >= 600
        assert len(nodes) == 2
        assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
