"""n-step transition folding for N parallel environments (pure NumPy).

For a window starting at t with length m <= n (m < n only when the episode ended inside it):
    reward   = sum_{k<m} gamma^k r_{t+k}
    next_obs = s_{t+m}                      (the true final obs when the episode ended)
    discount = 0 if the episode *terminated* at t+m-1, else gamma^m
A time-limit truncation ends the window but keeps the bootstrap (discount gamma^m), so the target
still uses V(s_{t+m}); a termination zeroes it.
"""

from __future__ import annotations

import numpy as np


class NStepAccumulator:
    """Turns per-step data from N envs into n-step transitions (batch keys of agents.base).

    ``push`` takes arrays with leading dim N (obs [N, *obs_shape], action [N, *act_shape],
    reward/terminated/truncated [N]); ``next_obs`` must be the *true* next obs (the final obs of
    a finished episode, not the reset obs). Returns the completed transitions, or None.
    Floating observations are kept as float32 (what the networks read), other dtypes as given.
    """

    def __init__(self, num_envs: int, n: int, gamma: float):
        if n < 1:
            raise ValueError(f"n-step must be >= 1, got {n}")
        self.num_envs, self.n, self.gamma = num_envs, n, gamma
        self._obs: np.ndarray | None = None  # [N, n, *obs_shape]
        self._act: np.ndarray | None = None  # [N, n, *act_shape]
        self._rew = np.zeros((num_envs, n), dtype=np.float64)  # [N, n]
        self._count = np.zeros(num_envs, dtype=np.int64)  # valid entries per env, oldest first
        self._powers = gamma ** np.arange(n + 1)  # [n+1]

    def _lazy_init(self, obs: np.ndarray, action: np.ndarray) -> None:
        self._obs = np.zeros((self.num_envs, self.n, *obs.shape[1:]), dtype=obs.dtype)
        self._act = np.zeros((self.num_envs, self.n, *action.shape[1:]), dtype=action.dtype)

    def reset(self) -> None:
        self._count[:] = 0

    def push(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
             next_obs: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
             ) -> dict[str, np.ndarray] | None:
        if obs.dtype.kind == "f" and obs.dtype != np.float32:  # MuJoCo's float64 observations:
            obs = obs.astype(np.float32)  # the networks read float32; half the replay memory
            next_obs = next_obs.astype(np.float32)
        if self._obs is None:
            self._lazy_init(obs, action)
        assert self._obs is not None and self._act is not None
        idx = np.arange(self.num_envs)
        pos = self._count
        self._obs[idx, pos] = obs
        self._act[idx, pos] = action
        self._rew[idx, pos] = reward
        self._count += 1
        done = np.logical_or(terminated, truncated)
        out: list[dict[str, np.ndarray]] = []

        # Full windows of envs still running: emit the oldest entry, then shift left by one.
        full = np.flatnonzero((self._count == self.n) & ~done)
        if full.size:
            ret = self._rew[full] @ self._powers[: self.n]  # [F]
            out.append({
                "obs": self._obs[full, 0].copy(),
                "action": self._act[full, 0].copy(),
                "reward": ret.astype(np.float32),
                "next_obs": next_obs[full].copy(),
                "discount": np.full(full.size, self._powers[self.n], dtype=np.float32),
            })
            self._obs[full, :-1] = self._obs[full, 1:]
            self._act[full, :-1] = self._act[full, 1:]
            self._rew[full, :-1] = self._rew[full, 1:]
            self._count[full] -= 1

        # Finished episodes: flush every suffix of the window (m = count - i steps each).
        for e in np.flatnonzero(done):
            c = int(self._count[e])
            rews = self._rew[e, :c]  # [c]
            # suffix returns: ret[i] = sum_{k>=i} gamma^{k-i} r_k
            ret = np.array([rews[i:] @ self._powers[: c - i] for i in range(c)])
            lengths = c - np.arange(c)
            disc = np.zeros(c) if terminated[e] else self._powers[lengths]
            out.append({
                "obs": self._obs[e, :c].copy(),
                "action": self._act[e, :c].copy(),
                "reward": ret.astype(np.float32),
                "next_obs": np.repeat(next_obs[e][None], c, axis=0),
                "discount": disc.astype(np.float32),
            })
            self._count[e] = 0

        if not out:
            return None
        if len(out) == 1:
            return out[0]
        return {k: np.concatenate([o[k] for o in out]) for k in out[0]}
