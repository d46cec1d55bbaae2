"""Rollout worker: a vector env and an inference-only policy producing transition chunks.

The same class runs in-process (inline mode) and as a Ray actor (``ray.remote(RolloutWorker)``);
it never imports Ray. Off-policy workers return replay chunks (n-step folded by an encoder);
on-policy workers return time-major rollouts of exactly ``T`` lockstep steps.

Every report also carries the training episodes that finished (``EpisodeTracker``): return,
length, the raw game return (Atari), the last ``goal_index`` (multi-goal), and the extremes of
Figure 3 over all the episode's steps where the env reports them: ``max_com_x`` (swimmer,
``info["com_x"]``) and ``min_distance_to_target`` (ant target tasks,
``info["distance_to_target"]``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from agents.nstep import NStepAccumulator
from agents.registry import get_algorithm
from distributed.seeding import derived_seeds
from envs import is_atari_id, make_vector_env


def uses_frame_replay(observation_space: Any, env_id: str) -> bool:
    """Atari's frame stacks (uint8 [stack, H, W] from ``envs.atari``) go to the frame replay,
    which stores each frame once and rebuilds a stack from the frames before it; any other
    observation (an RGB picture [3, H, W] is no stack of frames) to the n-step replay."""
    shape = getattr(observation_space, "shape", None) or ()
    return (is_atari_id(env_id) and len(shape) == 3
            and getattr(observation_space, "dtype", None) == np.uint8)


def step_info(infos: dict[str, Any], done: np.ndarray, key: str
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """``info[key]`` of this step for every env of a same-step-autoreset vector env.

    With ``AutoresetMode.SAME_STEP`` the envs that finished were already reset: ``infos`` holds
    their *reset* info (and the step info of the others), their last step's info is under
    ``infos["final_info"]``, masked by its own ``"_key"`` arrays. Returns ``(values, has)``:
    ``[num_envs]`` values and the mask of envs whose step reported ``key``; None when no env did.
    """
    final = infos.get("final_info") if done.any() else None
    if final is None:  # the common step: nobody finished, infos is every env's step info
        return (infos[key], infos[f"_{key}"]) if key in infos else None
    in_final = key in final
    if key not in infos and not in_final:
        return None
    values = np.zeros(len(done))
    has = np.zeros(len(done), dtype=bool)
    if key in infos:
        m = infos[f"_{key}"] & ~done  # reset info of the finished envs does not count
        values[m] = infos[key][m]
        has |= m
    if in_final:
        m = final[f"_{key}"] & done
        values[m] = final[key][m]
        has |= m
    return values, has


class EpisodeTracker:
    """Per-env running returns/lengths/extremes; finished episodes are kept until drained.

    ``step`` takes the vector env's ``infos`` as returned (same-step autoreset, see
    ``step_info``), so every env's own step info is read at every step, the last step of an
    episode included. ``EXTREMES`` lists the per-step info keys whose running max/min over the
    episode becomes a field of the finished episode (only when the env reported the key).
    """

    # info key -> (episode field, take the max (True) or the min (False))
    EXTREMES: dict[str, tuple[str, bool]] = {
        "com_x": ("max_com_x", True),
        "distance_to_target": ("min_distance_to_target", False),
    }

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        # info key -> running extreme per env (+-inf until the key was seen this episode)
        self.extremes = {key: np.full(num_envs, -np.inf if is_max else np.inf)
                         for key, (_, is_max) in self.EXTREMES.items()}
        self.finished: list[dict[str, float]] = []

    def step(self, reward: np.ndarray, done: np.ndarray, infos: dict[str, Any]) -> None:
        self.returns += reward
        self.lengths += 1
        for key, (_, is_max) in self.EXTREMES.items():
            got = step_info(infos, done, key)
            if got is not None:
                values, has = got
                run = self.extremes[key]
                new = np.fmax(run, values) if is_max else np.fmin(run, values)  # skip NaN
                np.copyto(run, new, where=has)
        if not done.any():
            return
        raw = step_info(infos, done, "raw_episode_return")
        goal = step_info(infos, done, "goal_index")
        life = step_info(infos, done, "life_lost")  # Atari: a life ended, the game goes on
        for e in np.flatnonzero(done):
            if life is not None and life[1][e] and life[0][e]:
                continue  # one game, one episode: its return and length run on
            episode = {"return": float(self.returns[e]), "length": float(self.lengths[e])}
            if raw is not None and raw[1][e]:
                episode["raw_return"] = float(raw[0][e])
            if goal is not None and goal[1][e]:
                episode["goal_index"] = float(goal[0][e])
            for key, (field, is_max) in self.EXTREMES.items():
                run = self.extremes[key]
                if np.isfinite(run[e]):
                    episode[field] = float(run[e])
                run[e] = -np.inf if is_max else np.inf
            self.finished.append(episode)
            self.returns[e], self.lengths[e] = 0.0, 0

    def drain(self) -> list[dict[str, float]]:
        out, self.finished = self.finished, []
        return out

    def in_progress_extremes(self) -> dict[str, float]:
        """Episode field -> the best running extreme over the episodes still in progress (the
        fields no running episode has reported yet are left out). Lets the driver's
        best-so-far curves move before the episode that set a new best has ended."""
        out = {}
        for key, (field, is_max) in self.EXTREMES.items():
            run = self.extremes[key]
            finite = run[np.isfinite(run)]
            if finite.size:
                out[field] = float(finite.max() if is_max else finite.min())
        return out


def worker_seed(run_seed: int, worker_index: int, start_env_steps: int = 0) -> int:
    """Seed of a worker's envs and policy. A worker that starts mid-run (resume, restart) mixes
    the run's env-step count in, so it does not replay the episodes the run began with."""
    base = run_seed * 10_007 + worker_index * 1_000
    if start_env_steps <= 0:
        return base
    return derived_seeds(base, start_env_steps)[0]


def own_streams(seed: int) -> tuple[int, int]:
    """(policy seed, action-space seed) of a worker whose envs are seeded ``seed``, each its own
    random stream. Both used to be ``seed`` itself, and Gymnasium's reset(seed=s), NumPy's
    default_rng(s) (DDPG's OU noise, DQN's epsilon-greedy) and action_space.seed(s) (the random
    warm-up) are one PCG64 stream: the exploration replayed env 0's reset noise."""
    policy, space = derived_seeds(seed, 0x5EED, count=2)
    return policy, space


def join_rollouts(rollouts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several workers' lockstep rollouts (time-major, [T(+1), N_i, ...]) as one batch of
    sum(N_i) envs: the on-policy update of the Ray learner and of the inline loop alike."""
    if len(rollouts) == 1:
        return rollouts[0]
    return {k: np.concatenate([r[k] for r in rollouts], axis=1) for k in rollouts[0]}


class RolloutWorker:
    """Steps ``envs_per_worker`` envs with the current policy.

    Args:
        cfg: the run's Config (launch.config.Config; only read here).
        worker_index: 0..workers-1, seeds the envs and per-worker exploration.
        num_workers: how many workers share the run's env steps.
        start_env_steps: the run's env-step count when this worker starts (a resumed run, a
            restarted worker): the random warm-up and the exploration schedules (epsilon,
            fixed xi), which read this worker's share of it, go on from there.
    """

    def __init__(self, cfg: Any, worker_index: int = 0, num_workers: int = 1,
                 start_env_steps: int = 0):
        torch.set_num_threads(1)
        self.cfg, self.worker_index = cfg, worker_index
        seed = worker_seed(cfg.run.seed, worker_index, start_env_steps)
        self.num_envs = cfg.runtime.envs_per_worker
        self.env = make_vector_env(cfg.env.id, self.num_envs, seed,
                                   cfg.env.max_episode_steps, **cfg.env.kwargs)
        spec = get_algorithm(cfg.algo)
        self.on_policy = spec.on_policy
        policy_kwargs = {"worker_index": worker_index, "num_workers": num_workers,
                         "run_seed": cfg.run.seed}
        policy_seed, action_space_seed = own_streams(seed)
        self.policy = spec.build_policy(cfg.agent, self.env.single_observation_space,
                                        self.env.single_action_space, seed=policy_seed,
                                        **policy_kwargs)
        self.encoder = self._make_encoder()
        self.random_steps = cfg.run.random_steps // max(1, num_workers)
        self.env.action_space.seed(action_space_seed)
        self.weights_version = -1
        self.env_steps = max(0, int(start_env_steps)) // max(1, num_workers)  # this worker's share
        self.episodes = EpisodeTracker(self.num_envs)
        self.obs, _ = self.env.reset(seed=seed)
        self._busy_s = 0.0

    def _make_encoder(self) -> Any:
        if self.on_policy:
            return None
        gamma, n = self.cfg.agent.gamma, self.cfg.replay.n_step
        if uses_frame_replay(self.env.single_observation_space, self.cfg.env.id):
            from distributed.frame_replay import FrameChunkEncoder

            return FrameChunkEncoder(self.num_envs)
        return NStepAccumulator(self.num_envs, n, gamma)

    # ------------------------------------------------------------------ weights
    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self.policy.set_weights(weights)
        self.weights_version = version

    def get_version(self) -> int:
        return self.weights_version

    # ------------------------------------------------------------------ stepping
    def _step(self, explore: bool = True) -> tuple[np.ndarray, ...]:
        if hasattr(self.policy, "set_env_steps"):
            self.policy.set_env_steps(self.env_steps)
        if self.env_steps < self.random_steps:
            action = self.env.action_space.sample()
        else:
            action = self.policy.act(self.obs, explore)
        next_obs, reward, terminated, truncated, infos = self.env.step(action)
        done = np.logical_or(terminated, truncated)
        true_next = next_obs
        if done.any():  # same-step autoreset: the final obs of finished episodes is in infos
            true_next = next_obs.copy()
            final = infos["final_obs"]
            for e in np.flatnonzero(done):
                true_next[e] = final[e]
            if hasattr(self.policy, "reset_noise"):
                self.policy.reset_noise(done)
        self.episodes.step(reward, done, infos)  # reads final_info of the finished envs itself
        obs = self.obs
        self.obs = next_obs
        self.env_steps += self.num_envs
        return obs, action, reward, true_next, terminated, truncated

    def collect(self, num_steps: int) -> dict[str, Any]:
        """Off-policy: ``num_steps`` vector steps -> {'chunk', 'episodes', 'env_steps', ...}."""
        start = time.perf_counter()
        chunks = []
        for _ in range(num_steps):
            out = self.encoder.push(*self._step())
            if out is not None:
                chunks.append(out)
        chunk = None
        if chunks:
            chunk = chunks[0] if len(chunks) == 1 else {
                k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        return self._report(chunk, num_steps, start)

    def collect_rollout(self, horizon: int) -> dict[str, Any]:
        """On-policy: ``horizon`` lockstep steps, time-major arrays (see agents.discrete)."""
        start = time.perf_counter()
        obs, act, rew, term, trunc, final = [], [], [], [], [], []
        for _ in range(horizon):
            o, a, r, nxt, te, tr = self._step()
            obs.append(o), act.append(a), rew.append(r), term.append(te), trunc.append(tr)
            done = np.logical_or(te, tr)[(...,) + (None,) * (nxt.ndim - 1)]
            final.append(np.where(done, nxt, 0).astype(nxt.dtype))
        obs.append(self.obs)
        rollout = {
            "obs": np.stack(obs), "action": np.stack(act), "reward": np.stack(rew),
            "terminated": np.stack(term), "truncated": np.stack(trunc),
            "final_obs": np.stack(final),
        }
        return self._report(rollout, horizon, start)

    def _report(self, data: Any, num_steps: int, start: float) -> dict[str, Any]:
        elapsed = time.perf_counter() - start
        return {
            "data": data,
            "episodes": self.episodes.drain(),
            "running_extremes": self.episodes.in_progress_extremes(),
            "env_steps": num_steps * self.num_envs,
            "seconds": elapsed,
            "version": self.weights_version,
            "worker_index": self.worker_index,
        }

    def close(self) -> None:
        self.env.close()
