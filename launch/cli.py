"""The ``softq`` command line: train, eval, presets, compare, reproduce, bench, irl.

Bad input (unknown preset/key/env id/algorithm, wrong type, missing or corrupt checkpoint) ends
with one line on stderr naming the problem and exit code 2; nothing already written is touched.
"""

from __future__ import annotations

import argparse
import os
import sys

from agents.registry import UnknownAlgorithmError
from distributed.checkpoint import CheckpointError
from envs import UnknownEnvError
from launch.compare_cmd import add_compare_parser, attach_threshold_values
from launch.config import ConfigError, RunConfig, RuntimeConfig, load_preset_dict, preset_names
from launch.eval_cmd import add_eval_parser
from launch.irl_cli import add_irl_parser
from launch.reproduce_cmd import add_reproduce_parser
from launch.train_cmd import add_train_parser

USER_ERRORS = (ConfigError, CheckpointError, UnknownEnvError, UnknownAlgorithmError,
               FileNotFoundError)


def _run_presets(args: argparse.Namespace) -> int:
    """One line per preset: algorithm, env, budget and where it runs (inline or Ray workers)."""
    names = preset_names()
    rows = []
    for name in names:
        data = load_preset_dict(name)
        run, runtime = data.get("run") or {}, data.get("runtime") or {}
        steps = run.get("total_env_steps", RunConfig.total_env_steps)
        where = ("inline" if runtime.get("inline", RuntimeConfig.inline)
                 else f"ray, {runtime.get('workers', RuntimeConfig.workers)} workers")
        rows.append((name, data.get("algo", "sql"), data.get("env", {}).get("id", "?"),
                     steps, where))
    width = max(map(len, names), default=0)
    env_width = max((len(r[2]) for r in rows), default=0)
    for name, algo, env_id, steps, where in rows:
        print(f"{name:{width}s}  algo={algo:12s} env={env_id:{env_width}s}  "
              f"steps={steps:<10,d} {where}")
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from launch.bench import run_benchmark

    return run_benchmark(args.name, args.bench_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softq", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_eval_parser(sub)
    p = sub.add_parser("presets", help="list the config presets")
    p.set_defaults(func=_run_presets)
    add_compare_parser(sub)
    add_reproduce_parser(sub)
    p = sub.add_parser("bench", help="benchmarks: sql-update, ddpg, atari, irl, runtime")
    p.add_argument("name", nargs="?", help="which benchmark: atari, ddpg, irl, runtime, sql-update")
    p.add_argument("bench_args", nargs=argparse.REMAINDER,
                   help="the benchmark's own options (softq bench NAME --help)")
    p.set_defaults(func=_run_bench)
    add_irl_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(attach_threshold_values(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"softq: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`softq presets | head`): stop quietly, as Unix tools do. Point
        # stdout at /dev/null so the interpreter's final flush does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal


if __name__ == "__main__":
    sys.exit(main())
