"""Benchmark: env steps/s of softq's DDPG training vs Stable-Baselines3 DDPG on HalfCheetah-v5.

Both learn with the paper's shared settings (Haarnoja et al. 2017, App. D.1): 2 x 200 ReLU
networks, batch 64, OU exploration noise (theta 0.15, sigma 0.3), one gradient update per
environment step, one torch thread, learner on the CPU. Both first collect ``--warmup`` steps
without updates (``replay.min_size`` / SB3 ``learning_starts``), excluded from the timing; the
rate is ``--steps`` timed env steps (each followed by one update) over their wall-clock time.

softq runs the real training loop (``softq train``'s runtime: rollout worker, replay server,
learner, driver with TensorBoard logging; no evaluation, no checkpoints until the end), inline
(1 worker) and, with ``--workers N [M ...]``, in Ray with N (and M, ...) rollout-worker actors.
Its rate comes from the driver's ``rollout/env_steps_per_s`` logs after the warm-up. SB3 keeps
its own target update (Polyak, tau = 0.005 every step), its design. With ``--repeats R`` every
system runs once per round, R rounds interleaved, so a drift in the machine's speed lands in
every system alike.
Printed: each system's median env steps/s over the rounds and the median of the per-round
softq / SB3 ratios (with their range).

    softq bench ddpg [--steps 3000] [--warmup 1000] [--workers 1 2] [--repeats 3] [--no-sb3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from launch.arg_types import int_at_least
from launch.bench import require_sb3
from launch.bench.rounds import round_ratios, run_rounds, spread
from launch.config import RuntimeConfig

ENV_ID = "HalfCheetah-v5"
SB3 = "stable-baselines3 DDPG"


def _softq_config(warmup: int, steps: int, workers: int | None):  # noqa: ANN202 - Config
    from launch.config import config_from_dict

    # the learner on the CPU, as SB3's (device="cpu"): 'auto' would pick CUDA inline where a GPU is
    runtime = {"inline": True, "device": "cpu"} if workers is None else {
        "inline": False, "workers": workers, "learner_num_cpus": 1.0, "num_threads": 1,
        "device": "cpu"}
    return config_from_dict({
        "algo": "ddpg", "preset": "bench-ddpg", "env": {"id": ENV_ID},
        "agent": {"hidden_sizes": [200, 200], "ou_theta": 0.15, "ou_sigma": 0.3},
        "replay": {"capacity": 100_000, "min_size": warmup, "batch_size": 64,
                   "updates_per_step": 1.0},
        "run": {"total_env_steps": warmup + steps, "eval_every": 0, "log_every": warmup,
                "checkpoint_every": 0, "seed": 0},
        "runtime": runtime,
    })


def timed_rate(steps: np.ndarray, rates: np.ndarray, warmup: int) -> float:
    """Env steps/s after the warm-up. Log i's rate covers the steps since log i - 1, so the
    timed intervals are those that start at a log at or past ``warmup``: total steps over the
    summed interval times."""
    start = np.flatnonzero(steps >= warmup)
    if start.size < 2:
        raise RuntimeError("fewer than two driver logs after the warm-up: run more --steps")
    idx = start[1:]  # [L]
    intervals = steps[idx] - steps[idx - 1]  # [L]
    return float(intervals.sum() / (intervals / rates[idx]).sum())


def bench_softq(warmup: int, steps: int, workers: int | None) -> float:
    from distributed.driver import DriverHooks
    from launch.compare_cmd import read_scalars
    from launch.train_cmd import run_runtime

    cfg = _softq_config(warmup, steps, workers)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        run_runtime(cfg, run_dir, DriverHooks(), resume=False)
        log_steps, rates = read_scalars(run_dir, "rollout/env_steps_per_s")
    return timed_rate(log_steps, rates, warmup)


def _sb3_ou_noise(act_dim: int):  # noqa: ANN202 - SB3's OrnsteinUhlenbeckActionNoise
    """softq's OU process (agents/noise.py): theta 0.15, sigma 0.3, dt = 1 env step. SB3's
    default dt = 0.01 would step x += 0.0015 (0 - x) + 0.03 eps: 667-step correlations, not 6.7."""
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    return OrnsteinUhlenbeckActionNoise(np.zeros(act_dim), 0.3 * np.ones(act_dim), theta=0.15,
                                        dt=1.0)


def bench_sb3(warmup: int, steps: int) -> float:
    import gymnasium as gym
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback

    class _Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0: float | None = None

        def _on_step(self) -> bool:
            if self.num_timesteps == warmup:
                self.t0 = time.perf_counter()
            return True

    env = gym.make(ENV_ID)
    model = DDPG("MlpPolicy", env, learning_starts=warmup, batch_size=64, train_freq=1,
                 gradient_steps=1, buffer_size=100_000,
                 action_noise=_sb3_ou_noise(env.action_space.shape[0]), device="cpu",
                 policy_kwargs={"net_arch": [200, 200]}, seed=0, verbose=0)
    clock = _Clock()
    model.learn(total_timesteps=warmup + steps, callback=clock)
    elapsed = time.perf_counter() - clock.t0
    env.close()
    return steps / elapsed


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="softq bench ddpg", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int_at_least(1), default=3000,
                   help="timed env steps (after warm-up)")
    p.add_argument("--warmup", type=int_at_least(1), default=1000,
                   help="untimed steps before updates")
    p.add_argument("--workers", type=int_at_least(0), nargs="+", default=[0],
                   help="also run the Ray runtime with each of these rollout-worker counts, "
                        "e.g. --workers 1 2 (0: skip)")
    p.add_argument("--repeats", type=int_at_least(1), default=3,
                   help="interleaved rounds; figures are medians over them (default 3)")
    p.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3")
    args = p.parse_args(argv)
    ray_workers = sorted({n for n in args.workers if n > 0})
    chunk = RuntimeConfig().steps_per_push  # env steps per Ray worker report (1 env each)
    if ray_workers and args.steps < chunk:
        # the driver logs at the warm-up's end and at the end: under Ray, one report apart
        p.error(f"argument --steps: must be >= {chunk} with --workers (a Ray worker reports "
                f"{chunk} env steps at a time; the rate needs two driver logs after the "
                f"warm-up), got {args.steps}")
    if not args.no_sb3:
        require_sb3(p, "--no-sb3")
    torch.set_num_threads(1)
    print(f"{ENV_ID}: 2x200 nets, batch 64, OU(0.15, 0.3), 1 update per env step, 1 thread; "
          f"{args.warmup} warm-up steps untimed, {args.steps} timed; {args.repeats} round(s)")
    systems = {"softq inline (1 worker)": lambda: bench_softq(args.warmup, args.steps, None)}
    for n in ray_workers:
        systems[f"softq Ray ({n} worker{'s' if n > 1 else ''})"] = (
            lambda n=n: bench_softq(args.warmup, args.steps, n))
    if not args.no_sb3:
        systems[SB3] = lambda: bench_sb3(args.warmup, args.steps)
    rates = run_rounds(systems, args.repeats)
    for name, rate in rates.items():
        line = f"{name:28s} {np.median(rate):8.1f} env steps/s"
        if name != SB3 and SB3 in rates:
            line += f"   {spread(round_ratios(rate, rates[SB3]), 'x SB3')}"
        print(line)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
