"""Environment factories, wrappers and the papers' custom tasks.

Importing this package registers the ``softq/...`` Gymnasium ids (entry points are strings, so a
task's module is imported only when that task is made).
"""

from __future__ import annotations

import gymnasium as gym

from envs.factory import UnknownEnvError, is_atari_id, make_env, make_vector_env

# id -> (entry point, default horizon); horizons follow Haarnoja et al. 2017, App. D.2.
_SOFTQ_ENVS: dict[str, tuple[str, int]] = {
    "softq/MultiGoal-v0": ("envs.multigoal:MultiGoalEnv", 20),
    "softq/SwimmerFinishLine-v0": ("envs.swimmer_finish_line:SwimmerFinishLineEnv", 500),
    "softq/AntMaze-v0": ("envs.ant_tasks:AntMazeEnv", 500),
    "softq/AntAnyDirection-v0": ("envs.ant_tasks:AntAnyDirectionEnv", 500),
    "softq/AntHallwayWide-v0": ("envs.ant_tasks:AntHallwayWideEnv", 500),
    "softq/AntHallwayNarrow-v0": ("envs.ant_tasks:AntHallwayNarrowEnv", 500),
    "softq/AntUMaze-v0": ("envs.ant_tasks:AntUMazeEnv", 500),
    # the two mazes at the narrow hallway's size, for the -quick presets (docs/tasks.md)
    "softq/AntMazeCompact-v0": ("envs.ant_tasks:AntMazeCompactEnv", 500),
    "softq/AntUMazeCompact-v0": ("envs.ant_tasks:AntUMazeCompactEnv", 500),
}

for _env_id, (_entry, _horizon) in _SOFTQ_ENVS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=_entry, max_episode_steps=_horizon)

__all__ = ["UnknownEnvError", "is_atari_id", "make_env", "make_vector_env"]
