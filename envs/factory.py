"""``make_env``: one factory for the project's tasks, Gymnasium MuJoCo tasks and Atari.

Continuous action spaces are rescaled to [-1, 1]^d so every agent sees the same box (its tanh
squash matches it); discrete ones are numbered from 0 (``Discrete(n, start=k)`` -> ``Discrete(n)``,
the env receives action + k), as the agents index Q-values and logits by action; discrete
observations reach the agents one-hot.
Atari ids (``ALE/...``) get the DQN preprocessing of ``envs.atari``.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np


class UnknownEnvError(ValueError):
    """The env id is not registered with Gymnasium."""


class UnitBoxActions(gym.ActionWrapper):
    """``Box(low, high)`` seen as [-1, 1]^d: a -> low + (a + 1) / 2 (high - low), computed in
    float64 and clipped to [low, high], so a = -1 / +1 reach the env as exactly low / high; an
    integer box gets the nearest integer (the agents see a float box).
    (Gymnasium's RescaleAction computes in the box's float32 and lands one ulp outside the
    bounds for about half of all boxes, which an env checking its actions refuses.)"""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        self._low = space.low.astype(np.float64)  # [d]
        self._high = space.high.astype(np.float64)  # [d]
        self._dtype = space.dtype
        self._integer = np.issubdtype(space.dtype, np.integer)  # rounded to the nearest
        self.action_space = gym.spaces.Box(-1.0, 1.0, space.shape,
                                           np.float32 if self._integer else space.dtype)

    def action(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        x = self._low + (a + 1.0) * 0.5 * (self._high - self._low)
        if self._integer:
            x = np.rint(x)
        return np.clip(x, self._low, self._high).astype(self._dtype)


class ZeroStartDiscrete(gym.ActionWrapper):
    """``Discrete(n, start=k)`` seen as ``Discrete(n)``: the agent's action i reaches the env as
    i + k (agents index Q-values and policy logits 0..n-1)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.start = int(env.action_space.start)
        self.action_space = gym.spaces.Discrete(int(env.action_space.n))

    def action(self, action: Any) -> Any:
        return np.int64(int(action) + self.start)


class OneHotObservations(gym.ObservationWrapper):
    """``Discrete(n, start=k)`` observations (FrozenLake, Taxi, CliffWalking) as float32 one-hot
    vectors [n]: state s -> e_{s - k}, what every agent's networks read."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self._start, self._n = int(space.start), int(space.n)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self._n,), np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        out = np.zeros(self._n, np.float32)  # [n]
        out[int(observation) - self._start] = 1.0
        return out


def is_atari_id(env_id: str) -> bool:
    """An ``ALE/<Game>-v5`` id (also module-qualified, ``ale_py:ALE/Pong-v5``): softq's Atari
    preprocessing, frame replay and raw full-game evaluation."""
    return env_id.split(":", 1)[-1].startswith("ALE/")


def _atari_hint(env_id: str) -> str:
    """For an ALE id of the older kinds (``PongNoFrameskip-v4``, ``Pong-v0``): the id to use."""
    try:
        import ale_py
    except ImportError:
        return ""
    known = gym.registry.get(env_id) or (
        gym.register_envs(ale_py) or gym.registry.get(env_id))  # registers every ALE id
    entry = getattr(known, "entry_point", "")
    if not (isinstance(entry, str) and entry.startswith("ale_py")):
        return ""
    game = known.kwargs.get("game", "")
    name = "".join(part.capitalize() for part in str(game).split("_")) or "<Game>"
    return (f"Atari games train as ALE/<Game>-v5 ids, with softq's DQN preprocessing "
            f"(envs.atari): ALE/{name}-v5")


def resolve_env_id(env_id: str) -> str:
    """The registry id of ``env_id``. A module-qualified id ``"package.module:Name-v0"`` (as
    ``gymnasium.make`` takes it: a researcher's own env, registered when its module is imported)
    imports that module first and returns ``"Name-v0"``."""
    if ":" not in env_id:
        return env_id
    module, name = env_id.split(":", 1)
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise UnknownEnvError(f"env id {env_id!r}: cannot import module {module!r} that should "
                              f"register {name!r} ({exc})") from exc
    return name


def make_env(env_id: str, seed: int | None = None, max_episode_steps: int | None = None,
             **kwargs: Any) -> gym.Env:
    """Build one environment.

    Args:
        env_id: a registered id (``softq/MultiGoal-v0``, ``HalfCheetah-v5``, ``ALE/Pong-v5``...),
            or ``"package.module:Name-v0"``: the module is imported first (it registers Name-v0).
        seed: seeds the first reset and the action space.
        max_episode_steps: horizon override (None keeps the registered one).
        kwargs: passed to the env constructor (Atari: to ``envs.atari.make_atari``).
    """
    import envs  # noqa: F401  (registers softq/ ids)

    env_id = resolve_env_id(env_id)
    if is_atari_id(env_id):
        import ale_py

        gym.register_envs(ale_py)
        from envs.atari import make_atari

        env = make_atari(env_id, max_episode_steps=max_episode_steps, **kwargs)
    else:
        spec = gym.registry.get(env_id)
        if spec is None or str(spec.entry_point).startswith("ale_py"):
            atari = _atari_hint(env_id)  # older ALE ids: raw screens, not softq's preprocessing
            if atari:
                raise UnknownEnvError(f"env id {env_id!r} is one of ALE's older ids; {atari}")
            if spec is None:
                raise UnknownEnvError(f"unknown env id {env_id!r} (not registered with "
                                      f"Gymnasium)")
        make_kwargs: dict[str, Any] = dict(kwargs)
        if max_episode_steps is not None:
            make_kwargs["max_episode_steps"] = max_episode_steps
        env = gym.make(env_id, **make_kwargs)
        if isinstance(env.action_space, gym.spaces.Box):
            low, high = env.action_space.low, env.action_space.high
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                env.close()
                unbounded = np.flatnonzero(~(np.isfinite(low) & np.isfinite(high))).tolist()
                raise ValueError(f"{env_id}: action space {env.action_space} is unbounded in "
                                 f"dimension(s) {unbounded}; softq's continuous agents act in "
                                 f"a bounded box (rescaled to [-1, 1]^d): give the env finite "
                                 f"action bounds")
            integer = np.issubdtype(env.action_space.dtype, np.integer)
            if integer or not (np.all(low == -1.0) and np.all(high == 1.0)):
                env = UnitBoxActions(env)
        elif isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.start != 0:
            env = ZeroStartDiscrete(env)
        if isinstance(env.observation_space, gym.spaces.Discrete):
            env = OneHotObservations(env)
    if seed is not None:
        env.action_space.seed(seed)
        env.reset(seed=seed)
    return env


def make_vector_env(env_id: str, num_envs: int, seed: int,
                    max_episode_steps: int | None = None, **kwargs: Any) -> gym.vector.VectorEnv:
    """Synchronous vector env; ``info['final_obs']`` carries the last obs of finished episodes
    (same-step autoreset), so transitions at episode ends are exact."""
    fns = [
        (lambda i=i: make_env(env_id, seed=seed + i, max_episode_steps=max_episode_steps,
                              **kwargs))
        for i in range(num_envs)
    ]
    venv = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return venv
