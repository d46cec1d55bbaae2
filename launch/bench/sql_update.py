"""Benchmark: soft Q-learning updates/s at the paper's settings vs Stable-Baselines3 SAC.

Paper settings (Haarnoja et al. 2017, App. D.1) on HalfCheetah's dimensions: obs 17, act 6,
batch 64, 2 x 200 ReLU nets, K = M = 32 SVGD particles, K_V = 50 value samples. SAC is measured in
the same process on the same thread count with batch 64 and [200, 200] nets, as
``model.train(gradient_steps=N, batch_size=64)`` on a replay buffer filled with random data.
Both wall-clock and process-CPU rates are printed: on a shared machine the CPU-time figure is the
fairer one (it excludes time the thread waited for a core). Under CUDA graphs update() returns
metrics that are read from the device only when looked at; the benchmark reads every
``--metrics-every``-th update's metrics (as a logger would) and, for comparison, also times a run
that reads every update's (one host-device synchronization per update).

    python -m launch.bench.sql_update [--device cuda] [--threads 1] [--updates 300] [--compile]
                                      [--cuda-graphs] [--metrics-every 100]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

from agents.sql.config import VALUE_TARGETS
from launch.arg_types import int_at_least, torch_device

OBS_DIM, ACT_DIM = 17, 6


def _spaces() -> tuple[gym.spaces.Box, gym.spaces.Box]:
    return (gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
            gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32))


def _batches(n: int, batch: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"obs": rng.standard_normal((batch, OBS_DIM)).astype(np.float32),
             "action": rng.uniform(-1, 1, (batch, ACT_DIM)).astype(np.float32),
             "reward": rng.standard_normal(batch).astype(np.float32),
             "next_obs": rng.standard_normal((batch, OBS_DIM)).astype(np.float32),
             "discount": np.full(batch, 0.99, np.float32)} for _ in range(n)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rates(fn, n: int, device: str) -> tuple[float, float]:
    """(updates/s wall clock, updates/s of process CPU time) for ``fn(i)`` called n times."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    _sync(device)
    return n / (time.perf_counter() - wall), n / max(time.process_time() - cpu, 1e-9)


def bench_softq(args: argparse.Namespace, metrics_every: int) -> tuple[float, float]:
    """SQL updates/s; every ``metrics_every``-th update's metrics are read (0: none)."""
    from agents.sql import SQLConfig, SQLLearner

    cfg = SQLConfig(compile=args.compile, cuda_graphs=args.cuda_graphs,
                    value_target=args.value_target, value_particles=args.value_particles)
    learner = SQLLearner(cfg, *_spaces(), device=args.device, seed=0)
    batches = _batches(16, args.batch)
    for i in range(args.warmup):
        learner.update(batches[i % 16])

    def step(i: int) -> None:
        metrics = learner.update(batches[i % 16])
        if metrics_every and i % metrics_every == 0:
            float(metrics["loss/q"])

    return _rates(step, args.updates, args.device)


def bench_matmul_floor(args: argparse.Namespace) -> tuple[float, float]:
    """Updates/s if an update were only its six dense [rows, 200] x [200, 200] products: target Q
    on B K_V rows; Q forward and input-gradient on B P rows; sampler forward, input-gradient and
    weight-gradient on B P rows. Everything else in an update is overhead above this floor."""
    dev = torch.device(args.device)
    w = torch.randn(200, 200, device=dev)
    big = {n: torch.randn(args.batch * n, 200, device=dev) for n in (50, 32)}

    def six(_: int) -> None:
        big[50] @ w
        for _ in range(4):
            big[32] @ w
        big[32].T @ big[32]

    for i in range(args.warmup):
        six(i)
    return _rates(six, args.updates, args.device)


class _RandomEnv(gym.Env):
    """HalfCheetah-shaped placeholder env: SB3 needs an env to build SAC, never steps it here."""

    def __init__(self) -> None:
        self.observation_space, self.action_space = _spaces()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}


def bench_sb3_sac(args: argparse.Namespace) -> tuple[float, float] | None:
    try:
        from stable_baselines3 import SAC
        from stable_baselines3.common.logger import configure
    except ImportError:
        return None
    model = SAC("MlpPolicy", _RandomEnv(), batch_size=args.batch, learning_starts=0,
                buffer_size=20_000, policy_kwargs={"net_arch": [200, 200]}, device=args.device,
                seed=0, verbose=0)
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    for _ in range(5_000):
        model.replay_buffer.add(rng.standard_normal((1, OBS_DIM)).astype(np.float32),
                                rng.standard_normal((1, OBS_DIM)).astype(np.float32),
                                rng.uniform(-1, 1, (1, ACT_DIM)).astype(np.float32),
                                rng.standard_normal(1).astype(np.float32), np.zeros(1), [{}])
    model.train(gradient_steps=args.warmup, batch_size=args.batch)
    n = args.sb3_updates or args.updates
    _sync(args.device)
    wall, cpu = time.perf_counter(), time.process_time()
    model.train(gradient_steps=n, batch_size=args.batch)
    _sync(args.device)
    return n / (time.perf_counter() - wall), n / max(time.process_time() - cpu, 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="softq bench sql-update", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=torch_device, default="cpu",
                        help="'cpu', 'cuda', 'cuda:1', ...")
    parser.add_argument("--threads", type=int_at_least(1), default=1, help="torch intra-op threads")
    parser.add_argument("--updates", type=int_at_least(1), default=300, help="timed updates")
    parser.add_argument("--warmup", type=int_at_least(0), default=20, help="untimed updates first")
    parser.add_argument("--batch", type=int_at_least(1), default=64)
    parser.add_argument("--compile", action="store_true", help="SQLConfig.compile")
    parser.add_argument("--cuda-graphs", action="store_true", help="SQLConfig.cuda_graphs")
    parser.add_argument("--value-target", choices=VALUE_TARGETS, default="importance",
                        help="SQLConfig.value_target (importance: eq. 10)")
    parser.add_argument("--value-particles", type=int_at_least(1), default=50,
                        help="K_V, SQLConfig.value_particles")
    parser.add_argument("--metrics-every", type=int_at_least(0), default=100,
                        help="read every N-th update's metrics (0: never, 1: every update)")
    parser.add_argument("--sb3-updates", type=int_at_least(0), default=0,
                        help="SAC steps (0: --updates)")
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 SAC baseline")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"settings: obs {OBS_DIM}, act {ACT_DIM}, batch {args.batch}, hidden [200, 200], "
          f"K = M = 32, K_V = {args.value_particles} ({args.value_target}), "
          f"device {args.device}, threads {args.threads}, "
          f"compile {args.compile}, cuda_graphs {args.cuda_graphs}")
    sql_wall, sql_cpu = bench_softq(args, args.metrics_every)
    print(f"softq SQL      updates/s: {sql_wall:8.1f} wall   {sql_cpu:8.1f} per CPU-second"
          f"   (metrics read every {args.metrics_every or 'never'})")
    if args.cuda_graphs and args.metrics_every != 1:
        each_wall, each_cpu = bench_softq(args, 1)
        print(f"softq SQL      updates/s: {each_wall:8.1f} wall   {each_cpu:8.1f} per CPU-second"
              "   (metrics read every update: a sync per update)")
    floor_wall, floor_cpu = bench_matmul_floor(args)
    print(f"matmul floor   updates/s: {floor_wall:8.1f} wall   {floor_cpu:8.1f} per CPU-second"
          f"   (softq reaches {sql_cpu / floor_cpu:.0%} of it, CPU time)")
    if args.no_sb3:
        return 0
    sac = bench_sb3_sac(args)
    if sac is None:
        print("SB3 SAC: stable-baselines3 is not installed (pip install softq[bench]); skipped")
        return 0
    print(f"SB3 SAC        updates/s: {sac[0]:8.1f} wall   {sac[1]:8.1f} per CPU-second")
    print(f"ratio softq SQL / SB3 SAC: {sql_wall / sac[0]:.2f} wall   {sql_cpu / sac[1]:.2f} CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
