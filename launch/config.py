"""Typed run configuration: nested dataclasses, YAML presets, ``--set section.key=value``.

Every section is a dataclass; the ``agent`` section's class comes from the algorithm registry
(``algo`` key). Unknown keys and wrong types raise :class:`ConfigError` naming the dotted key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.registry import UnknownAlgorithmError, algorithm_names, get_algorithm
from distributed.replay_server import writers_per_shard
from envs.atomic_files import atomic_write_text
from envs.factory import is_atari_id

PRESET_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A bad preset, key or value; the message names it."""


def _require_at_least(section: str, obj: Any, minimum: float, *names: str, hint: str = "") -> None:
    """Range check for a section's counts and rates; the ValueError names the dotted key."""
    for name in names:
        value = getattr(obj, name)
        if value < minimum:
            raise ValueError(f"{section}.{name} must be >= {minimum}{hint}, got {value!r}")


@dataclass
class EnvConfig:
    id: str = "softq/MultiGoal-v0"
    """Gymnasium id (``softq/...`` for the project's tasks)."""
    kwargs: dict = field(default_factory=dict)
    """Keyword arguments for the env constructor."""
    max_episode_steps: int | None = None
    """Horizon; None keeps the env's registered limit."""

    def __post_init__(self) -> None:
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"env.max_episode_steps must be >= 1 or null, got "
                             f"{self.max_episode_steps}")


@dataclass
class ReplayConfig:
    capacity: int = 1_000_000
    min_size: int = 10_000
    """No updates until the buffer holds this many transitions (paper App. D.1)."""
    batch_size: int = 64
    n_step: int = 1
    updates_per_step: float = 1.0
    """Update-to-data ratio: learner updates per environment step, in every mode."""
    rate_tolerance: float = 0.0
    """Allowed relative drift of samples-per-insert before the fast side waits (Ray runs). A
    run settles at the edge of this band on its bottleneck's side (a learner-bound run does
    (1 - tol) x the updates), so 0, the default, keeps Ray runs on the configured ratio, as
    inline ones are; a slack of one chunk still lets both sides overlap."""
    shards: int = 1
    save_contents: bool = False
    """Also checkpoint the replay contents (distributed mode)."""

    def __post_init__(self) -> None:
        _require_at_least("replay", self, 1, "capacity", "batch_size", "n_step", "shards")
        _require_at_least("replay", self, 0, "min_size", "rate_tolerance")
        if self.updates_per_step <= 0:  # 0 would start a learner that never updates
            raise ValueError(f"replay.updates_per_step must be > 0, got {self.updates_per_step}")
        if self.min_size > self.capacity:
            raise ValueError(f"replay.min_size ({self.min_size}) exceeds replay.capacity "
                             f"({self.capacity}): the buffer never holds that many")


@dataclass
class RunConfig:
    total_env_steps: int = 100_000
    eval_every: int = 10_000
    eval_episodes: int = 10
    log_every: int = 1_000
    checkpoint_every: int = 50_000
    random_steps: int = 0
    """Env steps at the start taken with uniform random actions (spread over the workers), so
    the first replay data covers the whole action space before the policy has learned."""
    image_every: int = 0
    """Env steps between multi-goal pictures in TensorBoard (0: off)."""
    seed: int = 0

    def __post_init__(self) -> None:
        _require_at_least("run", self, 1, "total_env_steps", "eval_episodes")
        _require_at_least("run", self, 0, "eval_every", "log_every", "checkpoint_every",
                          "image_every", hint=" (0 turns it off)")
        _require_at_least("run", self, 0, "random_steps", "seed")


@dataclass
class RuntimeConfig:
    inline: bool = True
    """Call every component in one process (no Ray)."""
    address: str | None = None
    """Ray address: None starts a local Ray, 'auto' joins a cluster."""
    workers: int = 1
    envs_per_worker: int = 1
    device: str = "auto"
    """Learner device: 'auto' (inline: CUDA if present; Ray: CUDA when the learner actor reserved
    a GPU, runtime.learner_num_gpus > 0), 'cpu', 'cuda', 'cuda:1'."""
    learner_num_gpus: float = 0.0
    """GPUs reserved for the learner actor (Ray); 'device' picks CUDA when one is visible."""
    learner_num_cpus: float = 1.0
    worker_num_cpus: float = 1.0
    steps_per_push: int = 16
    """Vector-env steps a worker collects before pushing one chunk to its replay shard."""
    learner_train_s: float = 0.5
    """Seconds per learner train call between driver check-ins (Ray, off-policy)."""
    weight_publish_interval: int = 100
    """Learner updates between weight broadcasts."""
    num_threads: int = 1
    """torch intra-op threads in the learner."""

    def __post_init__(self) -> None:
        _require_at_least("runtime", self, 1, "workers", "envs_per_worker", "steps_per_push",
                          "weight_publish_interval", "num_threads")
        _require_at_least("runtime", self, 0, "learner_num_gpus", "learner_num_cpus",
                          "worker_num_cpus")
        if self.learner_train_s <= 0:
            raise ValueError(f"runtime.learner_train_s must be > 0, got {self.learner_train_s}")
        if self.device != "auto":
            import torch

            try:
                kind = torch.device(self.device).type
            except (RuntimeError, TypeError):
                kind = None
            if kind not in ("cpu", "cuda"):
                raise ValueError(f"runtime.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', "
                                 f"got {self.device!r}")


@dataclass
class Config:
    algo: str = "sql"
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: Any = None
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    run: RunConfig = field(default_factory=RunConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    preset: str = ""
    """Name of the preset this config came from (informational)."""


# ----------------------------------------------------------------------------- building

def _check_type(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to ``tp`` where lossless (int -> float), else raise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key {key!r}: expected {tp}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list (in YAML: [a, b, ...]), got "
                              f"{value!r}")
        (inner,) = typing.get_args(tp)[:1] or (Any,)
        items = [_check_type(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"config key {key!r}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key!r}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}"
                              f"{_integer_hint(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if value is None:  # `--set run=` or an empty `run:` in YAML: not "all defaults"
            raise ConfigError(f"config section {key!r}: expected a mapping, got null "
                              "({} gives the defaults)")
        return build_dataclass(tp, value, key)
    return value


def _integer_hint(value: Any) -> str:
    """' (write 10000)' for a whole number written as a float (1e4, 1.0e4), else ''."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return f" (write {int(number)})" if math.isfinite(number) and number.is_integer() else ""


def build_dataclass(cls: type, data: dict | None, prefix: str = "") -> Any:
    """Instantiate ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix!r}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"unknown config key {where!r}; known: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _check_type(value, hints[key], where)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a dataclass's own __post_init__ validation
        raise ConfigError(f"config section {prefix or 'top level'!r}: {exc}") from exc


def config_from_dict(data: dict) -> Config:
    data = dict(data)
    algo = data.get("algo", "sql")
    if not isinstance(algo, str) or (algo not in algorithm_names() and ":" not in algo):
        raise ConfigError(f"config key 'algo': unknown algorithm {algo!r}; "
                          f"known: {', '.join(algorithm_names())}")
    try:
        agent_cls = get_algorithm(algo).config_cls
    except UnknownAlgorithmError as exc:
        raise ConfigError(f"config key 'algo': {exc}") from exc
    if "agent" in data and data["agent"] is None:
        raise ConfigError("config section 'agent': expected a mapping, got null "
                          "({} gives the defaults)")
    agent_data = data.pop("agent", None)
    cfg = build_dataclass(Config, data)
    cfg.agent = build_dataclass(agent_cls, agent_data, "agent")
    if cfg.replay.n_step > 1 and getattr(agent_cls, "ONE_STEP_TARGETS", False):
        raise ConfigError(f"config key 'replay.n_step': {algo!r} learns from one-step targets "
                          f"only (its soft target has no n-step form), got {cfg.replay.n_step}")
    agent_n = getattr(cfg.agent, "n_step", None)
    if agent_n is not None and agent_n != cfg.replay.n_step:
        raise ConfigError(f"config keys 'agent.n_step' ({agent_n}) and 'replay.n_step' "
                          f"({cfg.replay.n_step}) disagree: the replay folds n-step returns")
    if cfg.replay.n_step > 1 and is_atari_id(cfg.env.id):
        _check_frame_replay_warm_up(cfg)
    return cfg


def _check_frame_replay_warm_up(cfg: Config) -> None:
    """The frame replay counts a step toward min_size when it stores it, before its n-step
    window has closed (each env holds up to n - 1 such steps): a shard's share of min_size must
    leave a complete transition, or its first sample finds none and the run stops."""
    shards = 1 if cfg.runtime.inline else max(1, cfg.replay.shards)
    writers = 1 if cfg.runtime.inline else max(writers_per_shard(cfg.runtime.workers, shards))
    open_steps = writers * cfg.runtime.envs_per_worker * (cfg.replay.n_step - 1)
    need = shards * (open_steps + 1)
    if cfg.replay.min_size < need:
        raise ConfigError(f"config key 'replay.min_size': {cfg.replay.min_size} is too small for "
                          f"{cfg.replay.n_step}-step frame replay; it needs at least {need} "
                          f"(per shard: {open_steps} steps whose n-step window may still be "
                          f"open, plus one complete transition)")


def _flat(data: dict, prefix: str = "") -> dict[str, Any]:
    """{"run": {"seed": 0}} -> {"run.seed": 0}"""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(there: Config, here: Config, allowed: tuple[str, ...] = ()) -> list[str]:
    """"key is X there, Y here" for every dotted key whose value differs, skipping the keys in
    ``allowed`` and those under an ``allowed`` prefix that ends in a dot ("runtime.")."""
    return dict_differences(config_to_dict(there), config_to_dict(here), allowed)


def dict_differences(there: dict, here: dict, allowed: tuple[str, ...] = ()) -> list[str]:
    """config_differences of two plain nested config dicts."""
    a, b = _flat(there), _flat(here)

    def free(key: str) -> bool:
        return any(key == k or (k.endswith(".") and key.startswith(k)) for k in allowed)

    return [f"{k} is {a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(a.keys() | b.keys())
            if not free(k) and a.get(k) != b.get(k)]


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict (YAML-safe) of a config dataclass."""
    out = dataclasses.asdict(cfg)
    return _plain(out)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ----------------------------------------------------------------------------- presets

def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset_dict(name: str, _chain: tuple[str, ...] = ()) -> dict:
    """Preset YAML as a dict, following ``base:`` chains (child keys override the base)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        via = f" (the base of preset {_chain[-1]!r})" if _chain else ""
        raise ConfigError(f"unknown preset {name!r}{via}; run `softq presets` to list them")
    if name in _chain:
        raise ConfigError(f"preset {name!r}: its base: chain loops ({' -> '.join(_chain)} -> "
                          f"{name})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"preset file {path} is not readable YAML: "
                          f"{' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"preset file {path} must hold a mapping of config sections, got "
                          f"{type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:
        data = deep_merge(load_preset_dict(str(base), (*_chain, name)), data)
    data.setdefault("preset", name)
    data["preset"] = name
    return data


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "kwargs":
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings; values are parsed as YAML scalars/lists."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {dotted!r}: cannot parse value {raw!r}") from exc
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = _override_value(dotted.strip(), node.get(parts[-1]), value)
    return data


def _override_value(dotted: str, current: Any, value: Any) -> Any:
    """What ``--set dotted=value`` leaves at a key holding ``current``. A mapping given for a
    section merges into it (``--set 'replay={batch_size: 32}'`` changes one key, not the whole
    section back to its defaults); ``{}`` resets a section to its defaults (switching ``algo``);
    ``env.kwargs`` and other free-form mappings are replaced whole, as in presets."""
    is_section = isinstance(current, dict) and not dotted.endswith("kwargs")
    if is_section and value is None:
        raise ConfigError(f"override {dotted!r}: a section needs a mapping (`--set "
                          f"'{dotted}={{key: value}}'` changes keys, `{dotted}={{}}` resets it)")
    if is_section and isinstance(value, dict) and value:
        return deep_merge(current, value)
    return value


def load_config(preset: str, overrides: list[str] | None = None) -> Config:
    data = apply_overrides(load_preset_dict(preset), overrides or [])
    return config_from_dict(data)


def save_config(cfg: Config, path: Path) -> None:
    """Write config.yaml atomically (a crash leaves the previous one whole)."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def read_config(path: Path, builds_env: bool = True) -> Config:
    """A run directory's config.yaml. ``builds_env``: the caller makes its env (resume, eval,
    --init-from), so a module-qualified env id must be allowed as plug-ins are (softq compare
    only reads the config)."""
    if path.parent.is_file():  # `softq eval RUN/checkpoint.pt`
        raise ConfigError(f"{path.parent} is a file, not a run directory")
    if not path.parent.exists():  # a typo in the run directory's name
        raise ConfigError(f"no run directory {path.parent} (it does not exist)")
    if not path.is_file():
        raise ConfigError(f"no config.yaml in {path.parent}")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())  # YAML errors span lines; one line here
        raise ConfigError(f"{path} is not readable YAML (corrupt?): {detail}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds {type(data).__name__}, not a config mapping (corrupt?)")
    _check_plugin_allowed(data.get("algo"), path)
    env = data.get("env")
    if builds_env and isinstance(env, dict):
        _check_plugin_allowed(env.get("id"), path, what="env id")
    try:
        return config_from_dict(data)
    except ConfigError as exc:  # name the file: the reader's own --set or preset is not at fault
        raise ConfigError(f"{path}: {exc}") from exc


PLUGIN_MODULES_VAR = "SOFTQ_PLUGIN_MODULES"


def _check_plugin_allowed(name: Any, path: Path, what: str = "plug-in algorithm") -> None:
    """A plug-in algorithm ("module:ATTR") or a module-qualified env id ("module:Name-v0") is
    imported, running that module's code. From a preset or ``--set`` the user named it; from a
    run directory's config.yaml (shared, copied, downloaded) only when the module is listed in
    $SOFTQ_PLUGIN_MODULES (comma-separated)."""
    if not isinstance(name, str) or ":" not in name or name in algorithm_names():
        return
    module = name.split(":", 1)[0]
    allowed = {m.strip() for m in os.environ.get(PLUGIN_MODULES_VAR, "").split(",")}
    if module not in allowed:
        raise ConfigError(f"{path} names the {what} {name!r}; softq imports a module "
                          f"named by a run directory only when you allow it: "
                          f"{PLUGIN_MODULES_VAR}={module}")
