"""``softq train``: resolve the config, make or reopen the run directory, run a runtime."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from agents.registry import get_algorithm
from distributed.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_replay_shards,
    load_checkpoint,
)
from distributed.driver import DriverHooks
from distributed.inline import train_inline
from distributed.interrupts import signals_as_interrupt
from envs import UnknownEnvError
from launch.arg_types import directory, missing_cuda_device
from launch.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_differences,
    config_from_dict,
    config_to_dict,
    load_preset_dict,
    read_config,
    save_config,
)
from launch.run_checks import (
    RESUME_MAY_CHANGE,
    build_cpu_learner,
    checkpoint_counters,
    load_run_state,
    space_shapes,
)
from launch.run_dir import (
    STOPPED_BEFORE_CHECKPOINT,
    claim_run_dir,
    hold_run_dir,
    new_run_dir,
)

RESUMABLE_LIST = ", ".join(k + "*" if k.endswith(".") else k for k in RESUME_MAY_CHANGE)


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train from a preset (inline, local Ray or a cluster)")
    p.add_argument("preset", nargs="?", help="preset name (see `softq presets`)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="override a config value (repeatable)")
    p.add_argument("--out", type=directory,
                   help="run directory (default runs/<preset>-<timestamp>)")
    p.add_argument("--seed", type=int, help="run.seed")
    p.add_argument("--resume", metavar="RUN_DIR", type=directory,
                   help="continue a run from its checkpoint")
    p.add_argument("--init-from", metavar="RUN_DIR", type=directory,
                   help="start from another run's learned weights (fine-tuning)")
    p.add_argument("--workers", type=int, help="rollout workers (Ray); implies Ray mode")
    p.add_argument("--envs-per-worker", type=int, help="envs per rollout worker")
    p.add_argument("--address", help="Ray address: 'auto' inside a cluster, or HOST:PORT")
    p.add_argument("--inline", action="store_true", help="run every component in one process")
    p.set_defaults(func=run_train)


def resolve_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    if args.workers is not None:
        overrides += [f"runtime.workers={args.workers}", "runtime.inline=false"]
    if args.envs_per_worker is not None:
        overrides.append(f"runtime.envs_per_worker={args.envs_per_worker}")
    if args.address is not None:
        if args.inline:
            raise ConfigError(f"--inline runs in this process and --address {args.address} "
                              f"joins a Ray cluster; give one of them")
        overrides += [f"runtime.address={args.address}", "runtime.inline=false"]
    if args.inline:
        overrides.append("runtime.inline=true")
    if args.resume:
        if args.preset or args.init_from or args.out:
            extra = "PRESET" if args.preset else "--init-from" if args.init_from else "--out"
            raise ConfigError(f"--resume {args.resume} continues that run with its own config, "
                              f"weights and directory; drop the {extra}")
        resumed = read_config(Path(args.resume) / "config.yaml")
        base = config_to_dict(resumed)
    else:
        if not args.preset:
            raise ConfigError("train needs a PRESET (or --resume RUN_DIR)")
        base = load_preset_dict(args.preset)
    cfg = config_from_dict(apply_overrides(base, overrides))
    if args.resume:
        changed = config_differences(resumed, cfg, RESUME_MAY_CHANGE)
        if changed:  # the checkpoint was trained under these; config.yaml would misreport them
            raise ConfigError(f"--resume {args.resume} would change what the run trains with: "
                              f"{'; '.join(changed)}. A resumed run may change only "
                              f"{RESUMABLE_LIST}; start a new run to change more (--init-from "
                              f"{args.resume} keeps its weights)")
        _check_on_policy_envs(resumed, cfg, args.resume)
    check_env(cfg)
    _check_device(cfg, resuming=bool(args.resume))
    _check_shards(cfg)
    return cfg


def _check_on_policy_envs(trained: Config, cfg: Config, run: str) -> None:
    """An on-policy update learns from one rollout of every env of every worker (inline and on
    Ray alike): runtime.workers x runtime.envs_per_worker is the batch size, which a resumed run
    may regroup (2 x 8 for 4 x 4) but not change."""
    if not get_algorithm(cfg.algo).on_policy:
        return
    before, now = (c.runtime.workers * c.runtime.envs_per_worker for c in (trained, cfg))
    if before != now:
        raise ConfigError(
            f"--resume {run} would change the {cfg.algo} batch from {before} envs "
            f"({trained.runtime.workers} workers x {trained.runtime.envs_per_worker}) to {now} "
            f"({cfg.runtime.workers} x {cfg.runtime.envs_per_worker}): each update learns from "
            f"every env's rollout; keep runtime.workers x runtime.envs_per_worker at {before}")


def _check_shards(cfg: Config) -> None:
    """Rollout worker i writes to replay shard i % replay.shards (Ray, off-policy; see
    distributed.replay_server.shard_of_worker): a shard that no worker writes to never receives
    a transition, and its share of replay.capacity stays unused while the learner keeps asking
    it for batches."""
    rt, shards = cfg.runtime, cfg.replay.shards
    if rt.inline or shards <= rt.workers or get_algorithm(cfg.algo).on_policy:
        return
    raise ConfigError(f"replay.shards={shards} exceeds runtime.workers={rt.workers}: each worker "
                      f"writes to one shard, so {shards - rt.workers} of the {shards} shards "
                      f"(and their share of replay.capacity) would never receive a transition; "
                      f"use at least {shards} workers or fewer shards")


def _check_device(cfg: Config, resuming: bool) -> None:
    """An inline run's learner device must exist here (a Ray learner's is checked on its node)."""
    import torch

    device = cfg.runtime.device
    if not cfg.runtime.inline or device == "auto":
        return
    count = missing_cuda_device(torch.device(device))
    if count is not None:
        hint = " (the run was trained there; resuming on this machine's CPU works)" \
            if resuming else ""
        raise ConfigError(f"runtime.device {device!r}: this machine has {count} CUDA device(s)"
                          f"{hint}; use --set runtime.device=cpu or auto")


def check_env(cfg: Config) -> None:
    """Build the configured env and take one step, so that a bad id, constructor kwarg or
    horizon is named before a run directory exists (the runtime would fail only after writing
    config.yaml)."""
    import gymnasium as gym

    from envs import make_env

    try:
        env = make_env(cfg.env.id, seed=0, max_episode_steps=cfg.env.max_episode_steps,
                       **cfg.env.kwargs)
        try:
            env.reset(seed=0)
            env.step(env.action_space.sample())
        finally:
            env.close()
    except UnknownEnvError as exc:
        raise UnknownEnvError(f"config key 'env.id': {exc}") from exc
    except (TypeError, ValueError, gym.error.Error) as exc:
        raise ConfigError(f"config section 'env': {cfg.env.id!r} with kwargs {cfg.env.kwargs} "
                          f"cannot be built or stepped: {exc}") from exc


def check_episode_ends(cfg: Config) -> None:
    """An env without a time limit (neither its registration's nor env.max_episode_steps) is
    refused where episodes must end (evaluations): one runs until the env ends it, forever if
    it never does. Called after check_env and the learner checks: the id is known to resolve, so
    its registration answers without building the env again."""
    import gymnasium as gym

    from envs.factory import is_atari_id, resolve_env_id

    if cfg.env.max_episode_steps is not None or is_atari_id(cfg.env.id):
        return  # ALE ends a game after 108,000 frames itself
    spec = gym.registry.get(resolve_env_id(cfg.env.id))
    horizon = cfg.env.kwargs.get("max_episode_steps", getattr(spec, "max_episode_steps", None))
    if horizon is None:
        raise ConfigError(f"config key 'env.max_episode_steps': {cfg.env.id!r} has no time limit, "
                          f"so an evaluation episode would run until the env ends it (forever "
                          f"if it never does); set env.max_episode_steps (or run.eval_every=0)")


def warn_if_no_updates(cfg: Config) -> None:
    """An off-policy learner updates only on the transitions inserted after the replay holds
    replay.min_size: a budget cut below it (a quick try of a full preset) trains nothing, and
    its evaluation is of the untrained policy."""
    if get_algorithm(cfg.algo).on_policy or cfg.replay.min_size < cfg.run.total_env_steps:
        return
    print(f"softq: warning: replay.min_size {cfg.replay.min_size} >= run.total_env_steps "
          f"{cfg.run.total_env_steps}: the learner waits for min_size transitions, so this run "
          f"makes no update; lower replay.min_size (--set replay.min_size=N)", file=sys.stderr)


def run_train(args: argparse.Namespace) -> int:
    cfg = resolve_config(args)
    with contextlib.ExitStack() as held:
        return _run_train(args, cfg, held)


def _run_train(args: argparse.Namespace, cfg: Config, held: contextlib.ExitStack) -> int:
    """run_train with ``held`` keeping the run directory's lock until the run ends."""
    if args.resume:
        run_dir = Path(args.resume)
        if run_dir.is_dir():
            held.enter_context(hold_run_dir(run_dir))
            if not (run_dir / CHECKPOINT_NAME).exists():
                raise ConfigError(f"--resume {run_dir}: it {STOPPED_BEFORE_CHECKPOINT}")
        state = load_checkpoint(run_dir)  # fail early, before anything is written
        done = checkpoint_counters(state, run_dir).env_steps
        # a budget lowered below the steps taken: config.yaml would record it as not spent. Its
        # own budget may lie below them: the last chunk of envs_per_worker x workers steps can
        # overshoot it, and a resume then makes an evaluation it owes.
        own_budget = read_config(run_dir / "config.yaml").run.total_env_steps
        if cfg.run.total_env_steps < done and cfg.run.total_env_steps != own_budget:
            raise ConfigError(f"--resume {run_dir}: run.total_env_steps "
                              f"{cfg.run.total_env_steps} is below the {done} env steps the run "
                              f"has taken; give a larger budget")
        load_run_state(build_cpu_learner(cfg), state, run_dir)
        spec = get_algorithm(cfg.algo)
        servers = 0 if spec.on_policy else 1 if cfg.runtime.inline else max(1, cfg.replay.shards)
        check_replay_shards(state.get("replay") or [], servers, inline=cfg.runtime.inline)
        del state
        if cfg.run.eval_every > 0:
            check_episode_ends(cfg)
        if cfg.run.total_env_steps <= done:  # resuming a finished run trains nothing: say so
            print(f"note: --resume {run_dir}: the run has taken all {done} env steps of its "
                  f"run.total_env_steps, so there is nothing left to train (an evaluation it "
                  f"owes is made); add --set run.total_env_steps=N (N > {done}) to train on",
                  file=sys.stderr)
    else:
        init_state = None
        if args.init_from:
            init_state = load_checkpoint(Path(args.init_from))
            source = read_config(Path(args.init_from) / "config.yaml")
            if source.algo != cfg.algo:
                raise ConfigError(f"--init-from {args.init_from}: that run trained "
                                  f"{source.algo!r}, this preset is {cfg.algo!r}")
            changed = agent_changes(source.agent, cfg.agent)
            _check_init_fits(cfg, init_state, source, changed)
            if changed:  # expected for the schedules; worth seeing for anything else
                print(f"note: --init-from {args.init_from}: agent settings that differ from the "
                      f"pretraining run's: {', '.join(changed)}", file=sys.stderr)
        else:
            build_cpu_learner(cfg)
        if cfg.run.eval_every > 0:
            check_episode_ends(cfg)
        warn_if_no_updates(cfg)
        run_dir = new_run_dir(cfg.preset or cfg.algo, args.out)
    ray_started = _start_ray(cfg)  # a cluster that cannot be joined fails before any write
    try:
        if args.resume or args.out:
            run_dir.mkdir(parents=True, exist_ok=True)
        else:  # runs/<preset>-<time>: another run may have taken the name meanwhile
            run_dir = claim_run_dir(run_dir)
        if not args.resume:
            held.enter_context(hold_run_dir(run_dir))
            if (run_dir / "config.yaml").exists():  # another run took --out meanwhile
                raise ConfigError(f"run directory {run_dir} already holds a run")
        # signals first, hooks (matplotlib's import) before config.yaml: once that is written,
        # the inline runtime holds a signal until its final checkpoint can be written
        signals = held.enter_context(signals_as_interrupt())
        hooks = make_hooks(cfg, run_dir)
        save_config(cfg, run_dir / "config.yaml")
        print(f"run directory: {run_dir}")
        summary = run_runtime(cfg, run_dir, hooks, resume=bool(args.resume),
                              init_state=None if args.resume else init_state)
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    print(json.dumps(summary, indent=2))
    if summary.get("interrupted"):
        print(f"softq: interrupted at env step {summary.get('env_steps')}; continue with: "
              f"softq train --resume {run_dir}", file=sys.stderr)
        # the shell's code for that signal: a scheduler that preempted it does not read
        return 128 + (signals[-1] if signals else signal.SIGINT)
    return 1 if "diverged_at_step" in summary else 0  # "finished"; diverged: stderr says why


def _start_ray(cfg: Config) -> bool:
    """Start or join Ray for a Ray-mode run (True when this call started it); a cluster address
    that does not answer is a ConfigError naming it."""
    if cfg.runtime.inline:
        return False
    from distributed.ray_runtime import init_ray

    try:
        started = init_ray(cfg)
    except ConnectionError as exc:
        raise ConfigError(f"runtime.address {cfg.runtime.address!r}: "
                          f"{str(exc).splitlines()[0]}") from exc
    want = cfg.runtime.learner_num_gpus
    if want > 0 and not cfg.runtime.address:  # a cluster's autoscaler may still add GPU nodes
        import ray

        have = ray.cluster_resources().get("GPU", 0.0)
        if want > have:  # Ray would keep the learner actor pending forever, without a word
            if started:
                ray.shutdown()
            raise ConfigError(f"runtime.learner_num_gpus={want:g}: this machine's Ray has "
                              f"{have:g} GPU(s), so the learner could never start; use --set "
                              f"runtime.learner_num_gpus=0, or --address for a cluster with GPUs")
    return started


def _check_init_fits(cfg: Config, init_state: dict[str, Any], source: Config,
                     changed: list[str]) -> None:
    """Load the pretrained parameters into a throwaway CPU learner, so that a checkpoint of other
    network shapes is refused before the run directory exists; the refusal names the settings
    of the two runs that differ (``changed``: agent_changes) as the likely cause."""
    import gymnasium as gym

    from distributed.inline import init_from_pretrained
    from distributed.learner import cpu_copy_quietly, probe_spaces

    obs_space, act_space = probe_spaces(cfg)
    runner = build_cpu_learner(cfg)
    try:
        with cpu_copy_quietly():
            init_from_pretrained(runner, init_state)
    except CheckpointError as exc:
        causes = list(changed)
        try:
            theirs = space_shapes(*probe_spaces(source))
        except (UnknownEnvError, TypeError, ValueError, gym.error.Error):
            theirs = "(its env cannot be built here)"  # the refusal itself still stands
        if theirs != space_shapes(obs_space, act_space):  # fine-tuning changes env.id anyway
            causes.insert(0, f"env.id {source.env.id!r} {theirs} -> {cfg.env.id!r} "
                             f"{space_shapes(obs_space, act_space)}")
        if not causes:
            raise
        raise CheckpointError(f"{exc}; settings that differ from the pretraining run's: "
                              f"{', '.join(causes)}") from exc


def agent_changes(pretrained: Any, now: Any) -> list[str]:
    """'name old -> new' for each agent config field whose value differs between two configs."""
    before, after = vars(pretrained), vars(now)
    return [f"{k} {before.get(k)!r} -> {after[k]!r}" for k in after if before.get(k) != after[k]]


def make_hooks(cfg: Config, run_dir: Path) -> DriverHooks:
    hooks = DriverHooks()
    if cfg.env.id == "softq/MultiGoal-v0":
        from launch.plots import make_multigoal_hook

        hooks.image_hook = make_multigoal_hook(run_dir)
    return hooks


def run_runtime(cfg: Config, run_dir: Path, hooks: DriverHooks, resume: bool,
                init_state: dict[str, Any] | None = None) -> dict[str, Any]:
    if cfg.runtime.inline:  # train_inline is imported with this module: importing it here
        # (after config.yaml is written) was a window in which a signal escaped uncheckpointed
        return train_inline(cfg, run_dir, hooks, resume=resume, init_state=init_state)
    from distributed.ray_runtime import train_ray

    return train_ray(cfg, run_dir, hooks, resume=resume, init_state=init_state)
