"""``softq bench runtime``: throughput of the same preset inline and on local Ray with 1..N
workers (env steps/s, learner updates/s, samples per insert), measured in one run."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from launch.arg_types import int_at_least
from launch.config import load_config


def _run(preset: str, steps: int, overrides: list[str]) -> dict:
    """Rates after the first quarter of the run (the driver logs every quarter), so that actor
    start-up (Ray) and the replay warm-up count in neither mode."""
    from distributed.checkpoint import load_checkpoint
    from distributed.driver import DriverHooks
    from launch.bench.ddpg import timed_rate
    from launch.compare_cmd import read_scalars
    from launch.train_cmd import run_runtime

    cfg = load_config(preset, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_runtime(cfg, Path(tmp), DriverHooks(), resume=False)
        log_steps, env_rates = read_scalars(Path(tmp), "rollout/env_steps_per_s")
        _, updates = read_scalars(Path(tmp), "train/updates")  # cumulative, at each log
        state = load_checkpoint(Path(tmp))
    warmup = cfg.run.log_every
    late = np.flatnonzero(log_steps >= warmup)  # logs from the end of the first quarter on
    seconds = ((log_steps[late[1:]] - log_steps[late[:-1]]) / env_rates[late[1:]]).sum()
    return {"env_steps_per_s": timed_rate(log_steps, env_rates, warmup),
            "updates_per_s": float((updates[late[-1]] - updates[late[0]]) / seconds),
            "env_steps_per_s_incl_startup": summary["env_steps_per_s"],
            "updates": state["runner"]["updates"], "env_steps": summary["env_steps"]}


def _min_steps(preset: str, overrides: list[str], envs_per_worker: int, workers: int) -> int:
    """Fewest --steps for which ``_run`` sees two driver logs after the first quarter in every
    mode: a quarter (``run.log_every``) must hold the env steps of one worker report under Ray
    (off-policy: one push; on-policy: one rollout of every worker). Also checks --preset and
    --set before anything runs."""
    from agents.registry import get_algorithm

    cfg = load_config(preset, [*overrides, f"runtime.envs_per_worker={envs_per_worker}"])
    if get_algorithm(cfg.algo).on_policy:
        report = cfg.agent.n_steps * envs_per_worker * workers
    else:
        report = cfg.runtime.steps_per_push * envs_per_worker
    return 4 * report


def _common_overrides(steps: int, envs_per_worker: int, overrides: list[str]) -> list[str]:
    """--set for every mode. The learner device is pinned (CPU unless --set): 'auto' is CUDA
    inline where a GPU is but CPU under Ray (no GPU reserved), which would compare devices."""
    return [f"run.total_env_steps={steps}", "run.eval_every=0", "run.image_every=0",
            f"run.log_every={max(1, steps // 4)}", "run.checkpoint_every=100000000",
            f"replay.min_size={min(1000, steps // 4)}", "runtime.device=cpu",
            f"runtime.envs_per_worker={envs_per_worker}", *overrides]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="softq bench runtime")
    parser.add_argument("--preset", default="halfcheetah")
    parser.add_argument("--steps", type=int_at_least(1), default=4000,
                        help="env steps per measurement")
    parser.add_argument("--workers", type=int_at_least(1), nargs="+", default=[1, 2])
    parser.add_argument("--envs-per-worker", type=int_at_least(1), default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    minimum = _min_steps(args.preset, args.overrides, args.envs_per_worker, max(args.workers))
    if args.steps < minimum:
        parser.error(f"argument --steps: must be >= {minimum} for preset {args.preset!r} (a "
                     "quarter of the run, the driver's log interval, must hold one worker "
                     f"report, so that two logs follow the first quarter), got {args.steps}")
    common = _common_overrides(args.steps, args.envs_per_worker, args.overrides)
    results = {"inline": _run(args.preset, args.steps, [*common, "runtime.inline=true"])}
    for n in args.workers:
        results[f"ray-{n}w"] = _run(args.preset, args.steps,
                                    [*common, "runtime.inline=false", f"runtime.workers={n}"])
    base = results["inline"]["env_steps_per_s"]
    print(f"{'mode':10s} {'env steps/s':>12s} {'updates/s':>10s} {'vs inline':>10s}")
    for mode, r in results.items():
        print(f"{mode:10s} {r['env_steps_per_s']:12.1f} {r['updates_per_s']:10.1f} "
              f"{r['env_steps_per_s'] / base:9.2f}x")
    print(json.dumps(results))
    return 0
