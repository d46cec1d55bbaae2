"""Evaluation episodes with a policy: returns, and for multi-goal the goal each episode ends at."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs import make_env


def evaluate_policy(policy: Any, env_id: str, episodes: int, seed: int,
                    max_episode_steps: int | None = None, env_kwargs: dict | None = None,
                    explore: bool = False, record_positions: bool = False,
                    max_parallel: int = 16) -> dict[str, Any]:
    """Run ``episodes`` full episodes (several envs stepped together, one episode each).

    Returns ``return_mean``, ``return_std``, ``returns`` (raw game score where the env reports
    one, i.e. Atari), ``goal_shares`` (multi-goal: share of episodes ending at each goal, and at
    none), and ``trajectories`` ([E][T+1, obs_dim]) when ``record_positions``.
    """
    kwargs = dict(env_kwargs or {})
    if env_id.startswith("ALE/"):
        kwargs["training"] = False  # raw, unclipped, full-game episodes
    returns: list[float] = []
    goals: list[int] = []
    trajectories: list[np.ndarray] = []
    for start in range(0, episodes, max_parallel):
        n = min(max_parallel, episodes - start)
        envs = [make_env(env_id, seed=seed + start + i, max_episode_steps=max_episode_steps,
                         **kwargs) for i in range(n)]
        _run_batch(policy, envs, seed + start, explore, record_positions, returns, goals,
                   trajectories)
        for env in envs:
            env.close()
    out: dict[str, Any] = {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "returns": returns,
    }
    if goals and any(g is not None for g in goals):
        num_goals = 1 + max(g for g in goals if g is not None)
        ends = np.array([(-1 if g is None else g) for g in goals])
        out["goal_shares"] = {str(j): float(np.mean(ends == j)) for j in range(max(num_goals, 4))}
        out["goal_shares"]["none"] = float(np.mean(ends == -1))
        out["goals_reached"] = int(len({g for g in goals if g is not None and g >= 0}))
    if record_positions:
        out["trajectories"] = trajectories
    return out


def _run_batch(policy: Any, envs: list[gym.Env], seed: int, explore: bool, record: bool,
               returns: list[float], goals: list[Any], trajectories: list[np.ndarray]) -> None:
    n = len(envs)
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    if hasattr(policy, "reset_noise"):
        policy.reset_noise(np.ones(n, dtype=bool))
    ep_ret = np.zeros(n)
    raw_ret: list[float | None] = [None] * n
    last_goal: list[Any] = [None] * n
    paths = [[o.copy()] for o in obs] if record else None
    alive = np.ones(n, dtype=bool)
    while alive.any():
        actions = policy.act(obs, explore)
        for i in np.flatnonzero(alive):
            o, r, terminated, truncated, info = envs[i].step(actions[i])
            obs[i] = o
            ep_ret[i] += r
            if paths is not None:
                paths[i].append(o.copy())
            if "goal_index" in info:
                last_goal[i] = int(info["goal_index"])
            if "raw_episode_return" in info:
                raw_ret[i] = float(info["raw_episode_return"])
            if terminated or truncated:
                alive[i] = False
    for i in range(n):
        returns.append(raw_ret[i] if raw_ret[i] is not None else float(ep_ret[i]))
        goals.append(last_goal[i])
        if paths is not None:
            trajectories.append(np.stack(paths[i]))
