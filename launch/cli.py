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
from launch.config import ConfigError, load_preset_dict, preset_names
from launch.eval_cmd import add_eval_parser
from launch.irl_cli import add_irl_parser
from launch.reproduce_cmd import add_reproduce_parser
from launch.train_cmd import add_train_parser

USER_ERRORS = (ConfigError, CheckpointError, UnknownEnvError, UnknownAlgorithmError,
               FileNotFoundError)


def _run_presets(args: argparse.Namespace) -> int:
    names = preset_names()
    width = max(map(len, names), default=0)
    for name in names:
        data = load_preset_dict(name)
        env_id = data.get("env", {}).get("id", "?")
        print(f"{name:{width}s}  algo={data.get('algo', 'sql'):12s} env={env_id}")
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
