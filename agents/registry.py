"""Algorithm registry: one entry per algorithm, looked up by the config's ``algo`` key.

Each entry names its hyperparameter dataclass and the two factories the runtime calls. The
runtime (``distributed/``) never imports a concrete algorithm: it asks the registry, so the
same builder serves inline, local-Ray and cluster runs (placement is the only difference).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    config_cls: type
    # make_learner(cfg, observation_space, action_space, device: str, seed: int) -> Learner
    make_learner: Callable[..., Any]
    # make_policy(cfg, observation_space, action_space, seed: int) -> Policy
    make_policy: Callable[..., Any]
    on_policy: bool = False

    def build_policy(self, cfg: Any, observation_space: Any, action_space: Any, seed: int = 0,
                     **context: Any) -> Any:
        """make_policy with only the context keywords (worker_index, num_workers) it accepts."""
        params = inspect.signature(self.make_policy).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        extra = {k: v for k, v in context.items() if takes_all or k in params}
        return self.make_policy(cfg, observation_space, action_space, seed=seed, **extra)


# algo name -> "module:attribute" holding an AlgorithmSpec; imported lazily so that a missing
# optional dependency of one algorithm never breaks the others.
_ALGORITHMS: dict[str, str] = {
    "sql": "agents.sql.spec:SPEC",
    "ddpg": "agents.ddpg.spec:SPEC",
    "dqn": "agents.discrete.spec:DQN_SPEC",
    "a2c": "agents.discrete.spec:A2C_SPEC",
    "soft_q_a2c": "agents.discrete.spec:SOFT_Q_A2C_SPEC",
}


class UnknownAlgorithmError(ValueError):
    """The config names an algorithm the registry does not know."""


def algorithm_names() -> list[str]:
    return sorted(_ALGORITHMS)


def get_algorithm(name: str) -> AlgorithmSpec:
    """A registered name, or "package.module:ATTR" naming an AlgorithmSpec (plug-ins, tests)."""
    if ":" in name and name not in _ALGORITHMS:
        module_name, attr = name.split(":", 1)
        try:
            spec = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownAlgorithmError(f"cannot import algorithm {name!r}: {exc}") from exc
        if not isinstance(spec, AlgorithmSpec):
            raise UnknownAlgorithmError(f"{name!r} is not an AlgorithmSpec")
        return spec
    if name not in _ALGORITHMS:
        known = ", ".join(algorithm_names())
        raise UnknownAlgorithmError(f"unknown algorithm {name!r}; known: {known}")
    module_name, attr = _ALGORITHMS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)
