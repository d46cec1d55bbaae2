"""Atari through the inline runtime: the components train_inline wires (RolloutWorker,
ReplayServer with the frame replay, LearnerRunner, Driver) run a few hundred Pong steps.

Off-policy (5-step soft DQN): every sampled transition equals the one a naive n-step folding of
the stacked observations the worker saw produces (obs, action, n-step reward, next obs,
discount, across time-limit ends); env-step and insert counts are exact and the update-to-data
ratio is the configured one. On-policy (A2C): rollouts are lockstep continuations of each other,
time limits land exactly every ``max_episode_steps`` steps, the learner's update on them is
reproduced by a fresh learner, and the worker acts with the newest weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from agents.nstep import NStepAccumulator
from distributed.driver import Counters, Driver
from distributed.frame_replay import FrameReplayBuffer
from distributed.inline import _off_policy_iteration, _on_policy_iteration
from distributed.learner import LearnerRunner, probe_spaces
from distributed.replay_server import ReplayServer
from distributed.rollout import RolloutWorker, uses_frame_replay
from launch.config import load_config

pytest.importorskip("ale_py")

COMMON = ["run.eval_every=0", "run.log_every=100000", "run.checkpoint_every=100000000",
          "runtime.inline=true", "runtime.envs_per_worker=2", "env.max_episode_steps=100"]


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _build(cfg: Any, tmp_path) -> tuple[LearnerRunner, RolloutWorker, Driver]:
    obs_space, act_space = probe_spaces(cfg)
    runner = LearnerRunner(cfg, obs_space, act_space)
    worker = RolloutWorker(cfg, worker_index=0, num_workers=1)
    worker.set_weights(*runner.current())
    driver = Driver(cfg, tmp_path, Counters(), None, obs_space, act_space)
    return runner, worker, driver


def test_dqn_5step_frame_replay_samples_what_the_worker_saw(tmp_path) -> None:
    steps, min_size, n, gamma = 400, 200, 5, 0.99
    cfg = load_config("pong-soft-dqn-5step", [
        *COMMON, f"run.total_env_steps={steps}", f"replay.min_size={min_size}",
        "replay.capacity=5000", "replay.updates_per_step=0.125", "agent.target_update_interval=25",
        f"agent.gamma={gamma}"])
    runner, worker, driver = _build(cfg, tmp_path)
    assert uses_frame_replay(worker.env.single_observation_space, cfg.env.id)
    server = ReplayServer(cfg, frame_replay=True, chunk_size=worker.num_envs)
    assert isinstance(server.buffer, FrameReplayBuffer) and server.buffer.n_step == n

    # Brute force beside the fast path: fold the stacked observations the worker pushed.
    naive: dict[bytes, set] = {}
    acc = NStepAccumulator(worker.num_envs, n, gamma)
    push = worker.encoder.push
    seen = {"trunc": 0, "reward": 0}

    def recording_push(obs, action, reward, next_obs, terminated, truncated):
        seen["trunc"] += int(np.sum(truncated))
        seen["reward"] += int(np.count_nonzero(reward))
        out = acc.push(obs, action, reward, next_obs, terminated, truncated)
        for i in range(0 if out is None else len(out["reward"])):
            key = out["obs"][i].tobytes() + out["action"][i].tobytes()
            naive.setdefault(key, set()).add((round(float(out["reward"][i]), 5),
                                              out["next_obs"][i].tobytes(),
                                              round(float(out["discount"][i]), 6)))
        return push(obs, action, reward, next_obs, terminated, truncated)

    worker.encoder.push = recording_push
    q0 = _params(runner.learner.q)
    while not driver.done:
        _off_policy_iteration(worker, server, runner, driver)
    driver.close()

    # exact counts: env steps, stored transitions (start-of-episode frames are not transitions)
    assert driver.counters.env_steps == worker.env_steps == steps
    assert server.buffer.total_inserted == server.limiter.inserts == steps
    # update-to-data ratio: 0.125 updates per env step after min_size, exactly (inline)
    assert runner.updates == runner.learner.num_updates == (steps - min_size) // 8
    assert seen["trunc"] == steps // 100  # 100-step time limits, 2 envs
    assert seen["reward"] >= 4  # Pong points inside the windows: rewards are not all zero

    batch = server.buffer.sample(256)
    assert batch["obs"].dtype == np.uint8 and batch["obs"].shape == (256, 4, 84, 84)
    for i in range(256):
        key = batch["obs"][i].tobytes() + batch["action"][i].tobytes()
        assert key in naive, "sampled an (obs, action) the worker never produced"
        got = (round(float(batch["reward"][i]), 5), batch["next_obs"][i].tobytes(),
               round(float(batch["discount"][i]), 6))
        assert got in naive[key]
    assert (batch["discount"] == np.float32(gamma ** n)).any()
    powers = gamma ** np.arange(1, n + 1)  # [n]: a truncation keeps gamma^m, m <= n
    assert np.isclose(batch["discount"][:, None], powers[None], rtol=1e-6).any(1).all()

    q1 = runner.learner.q.state_dict()
    assert any(not torch.equal(q0[k], q1[k]) for k in q0), "the learner never moved"
    # the target copy at update 25 (the last): the target equals the online net now
    assert all(torch.equal(v, runner.learner.q_target.state_dict()[k]) for k, v in q1.items())


@pytest.mark.parametrize("preset", ["pong-a2c-naive", "pong-soft-q-a2c"])
def test_on_policy_rollouts_are_lockstep_and_drive_the_update(preset: str, tmp_path) -> None:
    T, N, limit, steps = 5, 2, 30, 200
    cfg = load_config(preset, [*COMMON, f"env.max_episode_steps={limit}",
                               f"run.total_env_steps={steps}", f"agent.n_steps={T}"])
    runner, worker, driver = _build(cfg, tmp_path)
    fresh = LearnerRunner(cfg, *probe_spaces(cfg))  # same seed: the same initial network
    assert all(torch.equal(v, fresh.learner.net.state_dict()[k])
               for k, v in runner.learner.net.state_dict().items())
    rollouts: list[dict[str, np.ndarray]] = []
    update = runner.update

    def recording_update(rollout):
        rollouts.append({k: v.copy() for k, v in rollout.items()})
        return update(rollout)

    runner.update = recording_update
    while not driver.done:
        _on_policy_iteration(cfg, [worker], runner, driver)
    driver.close()

    assert driver.counters.env_steps == worker.env_steps == steps
    assert len(rollouts) == runner.learner.num_updates == steps // (T * N)
    obs = np.concatenate([r["obs"][:T] for r in rollouts])  # [U*T, N, 4, 84, 84]
    final = np.concatenate([r["final_obs"] for r in rollouts])
    trunc = np.concatenate([r["truncated"] for r in rollouts])
    term = np.concatenate([r["terminated"] for r in rollouts])
    assert obs.dtype == np.uint8 and obs.shape[1:] == (N, 4, 84, 84)
    for a, b in zip(rollouts[:-1], rollouts[1:]):  # bootstrap obs = next rollout's first obs
        np.testing.assert_array_equal(a["obs"][T], b["obs"][0])
    # time limits every `limit` steps of each env (the first episode may be one step shorter:
    # see the report on EpisodicLife's seeded reset), and no terminations in Pong
    for e in range(N):
        ends = np.flatnonzero(trunc[:, e])
        assert ends[0] in (limit - 2, limit - 1) and len(ends) >= steps // N // limit - 1
        np.testing.assert_array_equal(np.diff(ends), limit)
    assert not term.any()
    # stacks: the next obs shifts by one frame; at an episode end the final obs does
    nxt = np.where(trunc[:, :, None, None, None], final, np.concatenate(
        [obs[1:], rollouts[-1]["obs"][T][None]]))
    np.testing.assert_array_equal(nxt[:, :, :-1], obs[:, :, 1:])
    assert (final[~trunc] == 0).all()

    for r in rollouts:  # the runtime updated on exactly these rollouts, in this order
        fresh.update(r)
    for k, v in runner.learner.net.state_dict().items():
        torch.testing.assert_close(v, fresh.learner.net.state_dict()[k], rtol=0, atol=0)
    start = LearnerRunner(cfg, *probe_spaces(cfg)).learner.net.state_dict()
    assert any(not torch.equal(start[k], v) for k, v in runner.learner.net.state_dict().items())
    # synchronous broadcast: the worker acts with the newest weights
    for k, v in worker.policy.net.state_dict().items():
        assert torch.equal(v, runner.learner.net.state_dict()[k])


def test_frame_replay_follows_the_envs_frame_stack(tmp_path) -> None:
    """A 2-frame Pong stack trains inline: the frame replay rebuilds stacks of the env's
    frame_stack, not of 4 (which refused the first insert), at the configured update ratio."""
    from distributed.checkpoint import load_checkpoint
    from distributed.inline import train_inline

    steps, min_size = 200, 100
    cfg = load_config("pong-soft-dqn-5step", [
        *COMMON, f"run.total_env_steps={steps}", f"replay.min_size={min_size}",
        "replay.capacity=1000", "replay.updates_per_step=0.125", "env.kwargs.frame_stack=2",
        "run.checkpoint_every=200"])
    assert probe_spaces(cfg)[0].shape == (2, 84, 84)
    train_inline(cfg, tmp_path)
    assert load_checkpoint(tmp_path)["runner"]["updates"] == (steps - min_size) // 8


def test_a_5step_frame_replay_min_size_must_leave_a_batch_of_complete_transitions(tmp_path):
    """The frame replay counts a step toward min_size before its 5-step window closes (up to 4
    open per env): with min_size=2 the first sample found no complete transition and the run
    stopped with a RuntimeError. Now the config names the smallest min_size that works, here
    2 envs x 4 open steps + 1 = 9, and a run at exactly 9 samples once it has 9 steps."""
    from distributed.checkpoint import load_checkpoint
    from distributed.inline import train_inline
    from launch.config import ConfigError

    sets = [*COMMON, "run.total_env_steps=81", "replay.updates_per_step=0.125",
            "replay.batch_size=32", "run.checkpoint_every=80"]
    with pytest.raises(ConfigError, match="'replay.min_size': 8 is too small for 5-step frame "
                                          r"replay; it needs at least 9 \(per shard: 8 steps"):
        load_config("pong-soft-dqn-5step", [*sets, "replay.min_size=8"])
    # Ray: 3 workers on 2 shards, so up to 2 write to a shard: 2 x (2 x 2 envs x 4 + 1) = 34
    ray_sets = [*sets, "runtime.inline=false", "runtime.workers=3", "replay.shards=2",
                "runtime.envs_per_worker=2"]
    with pytest.raises(ConfigError, match=r"needs at least 34 \(per shard: 16 steps"):
        load_config("pong-soft-dqn-5step", [*ray_sets, "replay.min_size=33"])
    assert load_config("pong-soft-dqn-5step", [*ray_sets, "replay.min_size=34"])
    train_inline(load_config("pong-soft-dqn-5step", [*sets, "replay.min_size=9"]), tmp_path)
    assert load_checkpoint(tmp_path)["runner"]["updates"] == (82 - 9) // 8  # 2 envs: 82 steps
