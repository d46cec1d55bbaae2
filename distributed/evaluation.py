"""Evaluation episodes with a policy: returns (undiscounted, and discounted as Haarnoja et al. 2017
plot them in Figure 5), and for multi-goal the goal each episode ends at."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs import make_env


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
    y-axis, "average discounted return"). Always ``lengths`` (steps per episode), ``length_mean``
    and ``terminated_share`` (share of episodes the env ended itself, e.g. an ant that flipped,
    rather than the time limit).
    """
    if gamma is not None and not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    kwargs = dict(env_kwargs or {})
    if env_id.startswith("ALE/"):
        kwargs["training"] = False  # raw, unclipped, full-game episodes
    returns: list[float] = []
    discounted: list[float] = []
    lengths: list[int] = []
    terminated: list[bool] = []
    goals: list[int] = []
    modes: list[str | None] = []
    trajectories: list[np.ndarray] = []
    for start in range(0, episodes, max_parallel):
        n = min(max_parallel, episodes - start)
        envs = [make_env(env_id, seed=seed + start + i, max_episode_steps=max_episode_steps,
                         **kwargs) for i in range(n)]
        _run_batch(policy, envs, seed + start, explore, record_positions, returns, goals,
                   trajectories, modes, discounted, 1.0 if gamma is None else gamma, lengths,
                   terminated)
        for env in envs:
            env.close()
    out: dict[str, Any] = {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "returns": returns,
        "lengths": lengths,
        "length_mean": float(np.mean(lengths)),
        "terminated_share": float(np.mean(terminated)),
    }
    if gamma is not None:
        out.update(discounted_return_mean=float(np.mean(discounted)),
                   discounted_return_std=float(np.std(discounted)), discounted_returns=discounted)
    out.update(mode_summary(modes))
    if goals and all(g is not None for g in goals):  # multi-goal: the same shares, by goal index
        shares = out["mode_shares"]
        out["goal_shares"] = {str(j): shares.get(f"goal{j}", 0.0)
                              for j in range(max(4, 1 + max(goals)))}
        out["goal_shares"]["none"] = shares.get("none", 0.0)
        out["goals_reached"] = out["modes_covered"]
    if record_positions:
        out["trajectories"] = trajectories
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
               returns: list[float], goals: list[Any], trajectories: list[np.ndarray],
               modes: list[str | None], discounted: list[float], gamma: float,
               lengths: list[int], terminated_out: list[bool]) -> None:
    n = len(envs)
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    if hasattr(policy, "reset_noise"):
        policy.reset_noise(np.ones(n, dtype=bool))
    ep_ret = np.zeros(n)
    disc_ret = np.zeros(n)  # sum_t gamma^t r_t
    weight = np.ones(n)  # gamma^t of each env's next reward
    steps = np.zeros(n, dtype=np.int64)
    ended_by_env = np.zeros(n, dtype=bool)  # terminated (not truncated) on the last step
    raw_ret: list[float | None] = [None] * n
    last_goal: list[Any] = [None] * n
    last_mode: list[str | None] = [None] * n
    paths = [[o.copy()] for o in obs] if record else None
    alive = np.ones(n, dtype=bool)
    while alive.any():
        actions = policy.act(obs, explore)
        for i in np.flatnonzero(alive):
            o, r, terminated, truncated, info = envs[i].step(actions[i])
            obs[i] = o
            ep_ret[i] += r
            disc_ret[i] += weight[i] * r
            weight[i] *= gamma
            steps[i] += 1
            if paths is not None:
                paths[i].append(o.copy())
            if "goal_index" in info:
                last_goal[i] = int(info["goal_index"])
            last_mode[i] = mode_label(info)
            if "raw_episode_return" in info:
                raw_ret[i] = float(info["raw_episode_return"])
            if terminated or truncated:
                alive[i] = False
                ended_by_env[i] = bool(terminated)
    for i in range(n):
        returns.append(raw_ret[i] if raw_ret[i] is not None else float(ep_ret[i]))
        discounted.append(float(disc_ret[i]))
        lengths.append(int(steps[i]))
        terminated_out.append(bool(ended_by_env[i]))
        goals.append(last_goal[i])
        modes.append(last_mode[i])
        if paths is not None:
            trajectories.append(np.stack(paths[i]))
