"""Checks that a config builds its learner, and that a checkpoint fits it, before any write.

``softq train`` and ``softq eval`` build a throwaway CPU copy of the configured learner: an agent
setting the learner or torch refuses (an action space the algorithm cannot act in, an optimizer
setting out of range) or a checkpoint of another algorithm, env or network is one error line
naming it, and no run directory is made or touched (the runtime would fail only after writing
config.yaml).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from distributed.checkpoint import CheckpointError
from distributed.driver import Counters
from distributed.learner import LearnerRunner, cpu_copy_quietly, probe_spaces
from launch.config import Config, ConfigError, config_to_dict, dict_differences

# What a resumed run may change: its budget and bookkeeping (what its checkpoints hold: the
# replay contents from the next one on), and where it runs. Everything else (algorithm, env,
# agent, replay, seed, random warm-up) is what its checkpoint was trained with.
RESUME_MAY_CHANGE = ("run.total_env_steps", "run.eval_every", "run.eval_episodes",
                     "run.log_every", "run.checkpoint_every", "run.image_every",
                     "replay.save_contents", "runtime.")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def space_shapes(obs_space: Any, act_space: Any) -> str:
    """"(obs [3], action [1])"; a space without one shape (Tuple, Dict) is shown whole."""
    def shape(space: Any) -> str:
        dims = getattr(space, "shape", None)
        return str(list(dims)) if dims is not None else str(space)

    return f"(obs {shape(obs_space)}, action {shape(act_space)})"


def build_cpu_learner(cfg: Config) -> LearnerRunner:
    """A throwaway CPU copy of the configured learner; a ConfigError when it cannot be built."""
    obs_space, act_space = probe_spaces(cfg)
    try:
        with cpu_copy_quietly():
            return LearnerRunner(cfg, obs_space, act_space, device="cpu")
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"config section 'agent': the {cfg.algo!r} learner cannot be built for "
                          f"{cfg.env.id!r} {space_shapes(obs_space, act_space)}: "
                          f"{_one_line(exc)}") from exc


def checkpoint_counters(state: dict[str, Any], run_dir: Path) -> Counters:
    """The counters a run resumes from; a CheckpointError names the ones this softq does not know
    (a checkpoint of another version), before anything is written."""
    try:
        return Counters(**state["counters"])
    except TypeError as exc:
        unknown = sorted(set(state["counters"]) - {f.name for f in dataclasses.fields(Counters)})
        raise CheckpointError(f"{run_dir}: its checkpoint holds counters this softq does not "
                              f"know ({', '.join(unknown) or _one_line(exc)}): written by "
                              f"another softq version?") from exc


def load_run_state(runner: LearnerRunner, state: dict[str, Any], run_dir: Path) -> None:
    """Load a run's own checkpoint into ``runner`` (built from its config.yaml); a
    CheckpointError naming the misfit when the two do not belong together: settings the
    checkpoint records it was trained with that config.yaml now says otherwise (checkpoints
    written since 2026-11-27), or tensors of other shapes."""
    trained = state.get("config")
    if isinstance(trained, dict):
        changed = dict_differences(trained, config_to_dict(runner.cfg), RESUME_MAY_CHANGE)
        if changed:
            raise CheckpointError(f"{run_dir}: its config.yaml is not what its checkpoint was "
                                  f"trained with ({'; '.join(changed)}; 'there' is the "
                                  f"checkpoint's). Was config.yaml edited, or copied from "
                                  f"another run?")
    try:
        with cpu_copy_quietly():
            runner.load_state_dict(state["runner"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{run_dir}: its checkpoint does not fit its config.yaml (algo "
                              f"{runner.cfg.algo!r}, env {runner.cfg.env.id!r}): "
                              f"{_one_line(exc)}. Was config.yaml edited, or copied from "
                              f"another run?") from exc
