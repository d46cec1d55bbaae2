"""Evaluation episodes with a policy: returns (undiscounted, and discounted as Haarnoja et al. 2017
plot them in Figure 5), and for multi-goal the goal each episode ends at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from distributed.seeding import derived_seeds
from envs import is_atari_id, make_env


@dataclass
class EpisodeRecord:
    """One evaluation episode: return (Atari: the raw game score), sum_t gamma^t r_t, steps,
    whether the env ended it, the final goal index / behaviour label, and the observations."""
    ret: float = 0.0
    discounted: float = 0.0
    length: int = 0
    terminated: bool = False
    goal: int | None = None
    mode: str | None = None
    raw_return: float | None = None
    path: Any = None  # list of [obs_dim] while running, then [T+1, obs_dim]
    first_obs: Any = None  # [obs_dim]: the reset observation
    first_action: Any = None  # [act_dim]: the action taken there


def evaluation_seeds(run_seed: int, env_steps: int) -> tuple[int, int]:
    """(env seed, policy seed) of a run's evaluation at ``env_steps``; episode i resets its env
    with env seed + i. Mixed through SeedSequence, so that two run seeds (and two evaluations of
    one run) start from unrelated states: ``run_seed + step`` gave seeds s and s + 1 all but one
    evaluation start state in common, and the seeds' spread came from correlated replicates. A
    function of (seed, step) only: an evaluation repeats after a resume, and every algorithm run
    with one seed is evaluated from the same start states (common random numbers)."""
    env_seed, policy_seed = derived_seeds(run_seed, env_steps, 0xE7A1, count=2)
    return env_seed >> 2, policy_seed >> 2  # < 2**30: room for + i, ALE's int32


def evaluation_policy(cfg: Any, observation_space: gym.Space, action_space: gym.Space,
                      env_steps: int, weights: dict, seed: int | None = None) -> Any:
    """The policy an evaluation at run step ``env_steps`` acts with, built afresh: its noise
    seeded from the run's seed and the step (:func:`evaluation_seeds`; ``seed`` overrides), on
    the run's fixed xi set and the schedules at that step (fine-tuning)."""
    from agents.registry import get_algorithm

    if seed is None:
        seed = evaluation_seeds(cfg.run.seed, env_steps)[1]
    policy = get_algorithm(cfg.algo).build_policy(
        cfg.agent, observation_space, action_space, seed=seed, run_seed=cfg.run.seed)
    policy.set_weights(weights)
    if hasattr(policy, "set_env_steps"):
        policy.set_env_steps(int(env_steps))
    return policy


@dataclass(frozen=True)
class EvaluationJob:
    """A run's evaluation at step ``step`` with the learner's ``weights`` of that step: all it
    needs, picklable, so the driver runs it or hands it to the Ray runtime's evaluator actor
    (distributed/ray_evaluation.py) while training goes on. ``record_positions``: keep the
    paths (for pictures)."""
    cfg: Any
    observation_space: gym.Space
    action_space: gym.Space
    step: int
    weights: dict
    record_positions: bool = False


def run_evaluation(job: EvaluationJob) -> dict[str, Any]:
    """``evaluate_policy``'s result for the job: ``run.eval_episodes`` episodes from the start
    states and policy noise that (run seed, step) fix (:func:`evaluation_seeds`)."""
    cfg = job.cfg
    policy = evaluation_policy(cfg, job.observation_space, job.action_space, job.step,
                               job.weights)
    return evaluate_policy(policy, cfg.env.id, cfg.run.eval_episodes,
                           seed=evaluation_seeds(cfg.run.seed, job.step)[0],
                           max_episode_steps=cfg.env.max_episode_steps,
                           env_kwargs=cfg.env.kwargs, record_positions=job.record_positions,
                           gamma=getattr(cfg.agent, "gamma", None))


def evaluate_policy(policy: Any, env_id: str, episodes: int, seed: int,
                    max_episode_steps: int | None = None, env_kwargs: dict | None = None,
                    explore: bool = False, record_positions: bool = False,
                    max_parallel: int = 16, gamma: float | None = None) -> dict[str, Any]:
    """Run ``episodes`` full episodes (several envs stepped together, one episode each).

    Returns ``return_mean``, ``return_std``, ``returns`` (raw game score where the env reports
    one, i.e. Atari), ``goal_shares`` (multi-goal: share of episodes ending at each goal, and at
    none), and ``trajectories`` ([E][T+1, obs_dim]) when ``record_positions``. Envs that label
    behaviour (``info["mode"]``, or multi-goal's ``goal_index``) add ``mode_shares`` (label ->
    share of episodes whose final step has it) and ``modes_covered`` (distinct labels but "none").
    With ``gamma``, also ``discounted_return_mean``, ``discounted_return_std`` and
    ``discounted_returns``: sum_t gamma^t r_t from the reset, of the env's own reward (Figure 5's
    y-axis, "average discounted return"). Always ``lengths`` (steps per episode), ``length_mean``,
    ``terminated`` (per episode: the env ended it itself, e.g. an ant that flipped, rather than
    the time limit) and its share ``terminated_share``, and ``first_obs`` / ``first_actions``
    ([E, ...]: each episode's reset observation and the action taken there).
    """
    if gamma is not None and not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    kwargs = dict(env_kwargs or {})
    if is_atari_id(env_id):
        kwargs["training"] = False  # raw, unclipped, full-game episodes
    records: list[EpisodeRecord] = []
    for start in range(0, episodes, max_parallel):
        n = min(max_parallel, episodes - start)
        envs = [make_env(env_id, seed=seed + start + i, max_episode_steps=max_episode_steps,
                         **kwargs) for i in range(n)]
        records += _run_batch(policy, envs, seed + start, explore, record_positions,
                              1.0 if gamma is None else gamma)
        for env in envs:
            env.close()
    returns = [r.ret for r in records]
    lengths = [r.length for r in records]
    goals = [r.goal for r in records]
    out: dict[str, Any] = {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "returns": returns,
        "lengths": lengths,
        "length_mean": float(np.mean(lengths)),
        "terminated_share": float(np.mean([r.terminated for r in records])),
        "terminated": [bool(r.terminated) for r in records],
    }
    if gamma is not None:
        discounted = [r.discounted for r in records]
        out.update(discounted_return_mean=float(np.mean(discounted)),
                   discounted_return_std=float(np.std(discounted)), discounted_returns=discounted)
    out["first_obs"] = np.stack([r.first_obs for r in records])  # [E, obs_dim]
    out["first_actions"] = np.stack([r.first_action for r in records])  # [E, act_dim] (or [E])
    out.update(mode_summary([r.mode for r in records]))
    if goals and all(g is not None for g in goals):  # multi-goal: the same shares, by goal index
        shares = out["mode_shares"]
        out["goal_shares"] = {str(j): shares.get(f"goal{j}", 0.0)
                              for j in range(max(4, 1 + max(goals)))}
        out["goal_shares"]["none"] = shares.get("none", 0.0)
        out["goals_reached"] = out["modes_covered"]
    if record_positions:
        out["trajectories"] = [r.path for r in records]
    return out


def mode_label(info: dict[str, Any]) -> str | None:
    """The behaviour label of one step's info: ``info["mode"]``, multi-goal's ``goal_index``
    as "goal<j>" (-1: "none"), or None when the env labels nothing."""
    if "mode" in info:
        return str(info["mode"])
    if "goal_index" in info:
        j = int(info["goal_index"])
        return f"goal{j}" if j >= 0 else "none"
    return None


def mode_summary(labels: list[str | None]) -> dict[str, Any]:
    """Final-step labels of the episodes -> {'mode_shares': {label: share}, 'modes_covered'}."""
    if not labels or any(lab is None for lab in labels):
        return {}
    names, counts = np.unique(np.array(labels), return_counts=True)
    shares = {str(n): float(c) / len(labels) for n, c in zip(names, counts)}
    return {"mode_shares": shares, "modes_covered": int(sum(n != "none" for n in shares))}


def _run_batch(policy: Any, envs: list[gym.Env], seed: int, explore: bool, record: bool,
               gamma: float) -> list[EpisodeRecord]:
    """One episode in each env, stepped together; env i is reset with seed + i."""
    n = len(envs)
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    if hasattr(policy, "reset_noise"):
        policy.reset_noise(None)  # a new batch of envs (the last one may be smaller)
    records = [EpisodeRecord(path=[o.copy()] if record else None) for o in obs]
    weight = np.ones(n)  # gamma^t of each env's next reward
    alive = np.ones(n, dtype=bool)
    first = True
    while alive.any():
        actions = policy.act(obs, explore)
        if first:  # the (s_0, a_0) pairs, for checking a critic against the measured return
            for rec, o, a in zip(records, obs, actions):
                rec.first_obs, rec.first_action = o.copy(), np.array(a, copy=True)
            first = False
        for i in np.flatnonzero(alive):
            o, r, terminated, truncated, info = envs[i].step(actions[i])
            obs[i] = o
            rec = records[i]
            rec.ret += r
            rec.discounted += weight[i] * r
            weight[i] *= gamma
            rec.length += 1
            if rec.path is not None:
                rec.path.append(o.copy())
            if "goal_index" in info:
                rec.goal = int(info["goal_index"])
            rec.mode = mode_label(info)
            if "raw_episode_return" in info:
                rec.raw_return = float(info["raw_episode_return"])
            if terminated or truncated:
                alive[i] = False
                rec.terminated = bool(terminated)  # the env ended it, not the time limit
    for rec in records:
        rec.ret = rec.raw_return if rec.raw_return is not None else float(rec.ret)
        rec.discounted = float(rec.discounted)
        if rec.path is not None:
            rec.path = np.stack(rec.path)
    return records
