"""Benchmarks (``softq bench NAME``): each prints figures and ratios measured in one run."""

from __future__ import annotations

import argparse
import importlib

from launch.config import ConfigError

BENCHMARKS: dict[str, str] = {
    "sql-update": "launch.bench.sql_update",
    "ddpg": "launch.bench.ddpg",
    "atari": "launch.bench.atari",
    "irl": "launch.bench.irl",
    "runtime": "launch.bench.runtime",
}


def run_benchmark(name: str | None, argv: list[str]) -> int:
    if name is None:
        raise ConfigError(f"bench needs a NAME: {', '.join(sorted(BENCHMARKS))}")
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    return importlib.import_module(BENCHMARKS[name]).main(argv)


def require_sb3(parser: argparse.ArgumentParser, skip: str) -> None:
    """Refuse, before the first run, an SB3 comparison without SB3 (it failed at SB3's turn,
    after softq's runs). ``skip``: the flag that leaves SB3 out."""
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        parser.error(f"stable-baselines3 is not installed: pip install -e '.[bench]', or "
                     f"{skip} to measure softq alone")
