"""``softq bench atari``: Pong throughput of softq against Stable-Baselines3, in one run.

Prints, all measured in this run:
  * frame replay memory: bytes per stored transition (a buffer filled with K transitions, its
    arrays' nbytes / K), the 1M-transition extrapolation in GB, and the ratio to a naive buffer
    that stores obs and next_obs stacks per transition;
  * softq ``dqn`` (preset pong-dqn): steady-state env steps/s and learner updates/s inline (one
    process, 1 env) and on local Ray with 1..N rollout workers, after a warm-up of
    ``replay.min_size`` steps;
  * SB3 DQN on the same settings (CnnPolicy = Nature CNN, batch 32, train_freq 4 -> 0.25
    updates per env step, 1 env, same warm-up), and the ratios softq / SB3;
  * softq ``a2c`` (preset pong-a2c-naive, n_steps 5) inline and on Ray, against SB3 A2C with
    the same number of envs and n_steps, and the ratios;
  * with ``--presets``, a short Ray run of each named preset (e.g. the seven ``pong-*`` methods):
    the rates every method trains at on this machine.
Throughput is measured between the first driver log after the warm-up and the last one (softq)
and between the corresponding timesteps of a callback (SB3), so start-up costs are excluded.
SB3's AtariWrapper needs OpenCV for its resize; when cv2 is absent the wrapper's two cv2 calls
are served by NumPy (the same area resize softq's envs use), which the output says.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from launch.arg_types import int_at_least, torch_device
from launch.bench import require_sb3
from launch.config import load_config, preset_names

COMMON = ["run.eval_every=0", "run.image_every=0", "run.checkpoint_every=1000000000",
          "run.log_every=250"]


# ----------------------------------------------------------------------------- replay memory

def replay_bytes_per_transition(k: int, seed: int = 0) -> dict[str, float]:
    """Fill a FrameReplayBuffer of capacity k with k Pong-shaped transitions (random frames,
    episodes of ~800 steps over 4 env streams); nbytes / k."""
    from distributed.frame_replay import FrameChunkEncoder, FrameReplayBuffer

    rng = np.random.default_rng(seed)
    n_envs, stack, hw = 4, 4, (84, 84)
    buf = FrameReplayBuffer(k, n_step=1, gamma=0.99, stack=stack, seed=seed)
    enc = FrameChunkEncoder(n_envs, seed=seed)
    obs = rng.integers(0, 256, (n_envs, stack, *hw), dtype=np.uint8)
    while buf.total_inserted < k:
        new = rng.integers(0, 256, (n_envs, 1, *hw), dtype=np.uint8)
        nxt = np.concatenate([obs[:, 1:], new], axis=1)
        done = rng.random(n_envs) < 1 / 800
        buf.add(enc.push(obs, rng.integers(0, 6, n_envs), np.zeros(n_envs), nxt, done,
                         np.zeros(n_envs, bool)))
        obs = nxt.copy()
        obs[done] = rng.integers(0, 256, (int(done.sum()), stack, *hw), dtype=np.uint8)
    per = buf.nbytes() / k
    naive = 2 * stack * hw[0] * hw[1] + 8 + 4 + 4  # obs + next_obs + action, reward, discount
    return {"k": k, "bytes_per_transition": per, "gb_per_1m": per * 1e6 / 1e9,
            "naive_bytes_per_transition": naive, "saving": naive / per}


# ----------------------------------------------------------------------------- softq

@contextlib.contextmanager
def _recording_driver_logs(timeline: list[tuple[float, int, float]]) -> Iterator[None]:
    """Record (time, env_steps, learner updates) at every driver log (inline and Ray)."""
    from distributed.driver import Driver

    original = Driver.log

    def log(self: Driver, metrics: dict[str, float]) -> None:
        timeline.append((time.perf_counter(), self.counters.env_steps,
                         float(metrics.get("train/updates", 0.0))))
        original(self, metrics)

    Driver.log = log  # type: ignore[method-assign]
    try:
        yield
    finally:
        Driver.log = original  # type: ignore[method-assign]


def softq_rates(preset: str, overrides: list[str], warmup: int) -> dict[str, float]:
    """Steady-state env steps/s and updates/s of one softq run (after ``warmup`` env steps)."""
    from distributed.driver import DriverHooks
    from launch.train_cmd import run_runtime

    cfg = load_config(preset, [*COMMON, *overrides])
    timeline: list[tuple[float, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp, _recording_driver_logs(timeline):
        run_runtime(cfg, Path(tmp), DriverHooks(), resume=False)
    after = [row for row in timeline if row[1] >= warmup]
    if len(after) < 2:
        raise RuntimeError(f"too few driver logs after the warm-up: {timeline}")
    (t0, s0, u0), (t1, s1, u1) = after[0], after[-1]
    return {"env_steps_per_s": (s1 - s0) / (t1 - t0), "updates_per_s": (u1 - u0) / (t1 - t0),
            "measured_steps": s1 - s0}


# ----------------------------------------------------------------------------- SB3

class _NumpyCV2:
    """The two OpenCV calls of SB3's WarpFrame, in NumPy (used only when cv2 is absent)."""

    COLOR_RGB2GRAY, INTER_AREA = 7, 3

    def __init__(self) -> None:
        self._taps: dict[tuple[int, int, int, int], Any] = {}

    def cvtColor(self, frame: np.ndarray, code: int) -> np.ndarray:  # noqa: N802 (cv2's name)
        gray = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)

    def resize(self, frame: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
        from envs.atari import area_resize, area_taps

        key = (*frame.shape[:2], *size)
        if key not in self._taps:
            self._taps[key] = (area_taps(frame.shape[0], size[1]),
                               area_taps(frame.shape[1], size[0]))
        return area_resize(frame, *self._taps[key])


def _sb3_env(n_envs: int, seed: int) -> tuple[Any, bool]:
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common import atari_wrappers
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    gym.register_envs(ale_py)
    if atari_wrappers.cv2 is None:
        atari_wrappers.cv2 = _NumpyCV2()
    shimmed = isinstance(atari_wrappers.cv2, _NumpyCV2)

    def make(i: int) -> Any:
        def thunk() -> Any:
            env = gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0)
            env = atari_wrappers.AtariWrapper(env, frame_skip=4, terminal_on_life_loss=True)
            env.reset(seed=seed + i)
            return env
        return thunk

    return VecFrameStack(DummyVecEnv([make(i) for i in range(n_envs)]), n_stack=4), shimmed


class _Timeline:
    """SB3 callback factory: time of every env-step count, for the steady-state window."""

    def __init__(self) -> None:
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self
        self.rows: list[tuple[float, int, int]] = []

        class CB(BaseCallback):
            def _on_step(self) -> bool:
                model = self.model
                updates = int(getattr(model, "_n_updates", 0))
                outer.rows.append((time.perf_counter(), model.num_timesteps, updates))
                return True

        self.callback = CB()

    def rates(self, warmup: int) -> dict[str, float]:
        after = [r for r in self.rows if r[1] >= warmup]
        (t0, s0, u0), (t1, s1, u1) = after[0], after[-1]
        return {"env_steps_per_s": (s1 - s0) / (t1 - t0), "updates_per_s": (u1 - u0) / (t1 - t0),
                "measured_steps": s1 - s0}


def sb3_dqn_rates(steps: int, warmup: int, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    from stable_baselines3 import DQN

    env, shimmed = _sb3_env(1, seed)
    model = DQN("CnnPolicy", env, learning_rate=1e-4, buffer_size=warmup + steps + 100,
                learning_starts=warmup, batch_size=32, train_freq=4, gradient_steps=1,
                target_update_interval=10_000, exploration_fraction=0.1, device=device, seed=seed,
                verbose=0)
    timeline = _Timeline()
    model.learn(total_timesteps=warmup + steps, callback=timeline.callback)
    env.close()
    return {**timeline.rates(warmup), "numpy_cv2": shimmed}


def sb3_a2c_rates(steps: int, warmup: int, n_envs: int, seed: int = 0,
                  device: str = "cpu") -> dict[str, Any]:
    from stable_baselines3 import A2C

    env, shimmed = _sb3_env(n_envs, seed)
    model = A2C("CnnPolicy", env, learning_rate=7e-4, n_steps=5, ent_coef=0.01, vf_coef=0.5,
                max_grad_norm=0.5, device=device, seed=seed, verbose=0)
    timeline = _Timeline()
    model.learn(total_timesteps=warmup + steps, callback=timeline.callback)
    env.close()
    return {**timeline.rates(warmup), "numpy_cv2": shimmed}


def preset_rates(presets: list[str], steps: int, warmup: int, workers: int, on_policy_envs: int,
                 overrides: list[str]) -> dict[str, dict[str, float]]:
    """Each preset on local Ray: off-policy ones with 2 envs per worker after a ``warmup``-step
    replay fill, on-policy ones (A2C family) with ``on_policy_envs`` envs over the workers."""
    from agents.registry import get_algorithm

    out: dict[str, dict[str, float]] = {}
    for preset in presets:
        on_policy = get_algorithm(load_config(preset, []).algo).on_policy
        envs = max(1, on_policy_envs // workers) if on_policy else 2
        sets = [f"run.total_env_steps={warmup + steps}", "runtime.inline=false",
                f"runtime.workers={workers}", f"runtime.envs_per_worker={envs}", *overrides]
        if not on_policy:
            sets += [f"replay.min_size={warmup}", "replay.capacity=200000"]
        out[f"{preset} ({workers}w x {envs})"] = softq_rates(preset, sets, warmup)
    return out


# ----------------------------------------------------------------------------- main

def _row(name: str, r: dict[str, float], base: dict[str, float] | None) -> str:
    ratio = f"{r['env_steps_per_s'] / base['env_steps_per_s']:9.2f}x" if base else f"{'':>10s}"
    return (f"  {name:34s} {r['env_steps_per_s']:10.1f} {r['updates_per_s']:10.2f} "
            f"{int(r['measured_steps']):9d} {ratio}")


def _softq_presets(args: argparse.Namespace) -> list[str]:
    """The presets that ``main`` will train (softq_rates), given --skip and --presets."""
    used = []
    if "dqn" not in args.skip and not {"inline", "ray"} <= set(args.skip):
        used.append("pong-dqn")
    if "a2c" not in args.skip and ("inline" not in args.skip or
                                   ("ray" not in args.skip and args.a2c_envs % 2 == 0)):
        used.append("pong-a2c-naive")
    return [*used, *args.presets]


def _check_before_running(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before the first benchmark, what would fail only once its run came up: an
    unknown --presets name, a bad --set, and --steps too few for two driver logs after the
    warm-up (softq_rates measures between the first and the last of them)."""
    known = set(preset_names())
    unknown = [name for name in args.presets if name not in known]
    if unknown:
        parser.error(f"argument --presets: unknown preset(s) {', '.join(map(repr, unknown))}; "
                     "run `softq presets` to list them")
    used = _softq_presets(args)
    if not used:
        return
    log_every = max(load_config(name, [*COMMON, *args.overrides]).run.log_every for name in used)
    if log_every == 0:
        parser.error("--set run.log_every=0 turns off the driver's logs, which the softq rates "
                     "are read from; keep it >= 1")
    if args.steps < 2 * log_every:
        parser.error(f"argument --steps: must be >= {2 * log_every} (two driver logs, every "
                     f"run.log_every={log_every} env steps, must follow the warm-up), "
                     f"got {args.steps}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="softq bench atari")
    parser.add_argument("--steps", type=int_at_least(1), default=3000,
                        help="measured env steps per run")
    parser.add_argument("--warmup", type=int_at_least(1), default=1000,
                        help="env steps before measuring (DQN: replay.min_size)")
    parser.add_argument("--workers", type=int_at_least(1), nargs="+", default=[1, 2],
                        help="Ray rollout-worker counts for the softq DQN runs")
    parser.add_argument("--a2c-envs", type=int_at_least(1), default=8,
                        help="envs of the A2C comparison")
    parser.add_argument("--replay-k", type=int_at_least(1), default=20_000,
                        help="transitions for the replay memory measurement")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["replay", "dqn", "a2c", "sb3", "inline", "ray"])
    parser.add_argument("--presets", nargs="*", default=[],
                        help="also run each of these presets (e.g. every pong-* method) for "
                             "--steps on Ray with --workers[-1] workers and report its rates")
    parser.add_argument("--sb3-threads", type=int_at_least(1), default=1,
                        help="torch threads for the SB3 runs (softq's learner uses "
                             "runtime.num_threads, 1 by default)")
    parser.add_argument("--device", type=torch_device, default="cpu",
                        help="learner device of softq (runtime.device) and of SB3, e.g. cuda")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra config override for every softq run")
    args = parser.parse_args(argv)
    args.overrides = [f"runtime.device={args.device}", *args.overrides]
    _check_before_running(parser, args)
    if "sb3" not in args.skip and not {"dqn", "a2c"} <= set(args.skip):
        require_sb3(parser, "--skip sb3")
    torch.set_num_threads(1)
    total = args.warmup + args.steps
    results: dict[str, Any] = {}
    if "replay" not in args.skip:
        mem = replay_bytes_per_transition(args.replay_k)
        results["replay"] = mem
        print(f"frame replay: {mem['bytes_per_transition']:.1f} bytes/transition "
              f"(K={args.replay_k}); 1M transitions = {mem['gb_per_1m']:.2f} GB; naive stacked "
              f"buffer {mem['naive_bytes_per_transition']} bytes -> {mem['saving']:.1f}x smaller",
              flush=True)

    header = f"  {'run':34s} {'env st/s':>10s} {'updates/s':>10s} {'measured':>9s} {'vs SB3':>10s}"
    if "dqn" not in args.skip:
        dqn: dict[str, dict] = {}
        base = [f"run.total_env_steps={total}", f"replay.min_size={args.warmup}",
                "replay.capacity=200000", *args.overrides]
        if "sb3" not in args.skip:
            torch.set_num_threads(args.sb3_threads)
            dqn["sb3 DQN (1 env)"] = sb3_dqn_rates(args.steps, args.warmup, device=args.device)
            torch.set_num_threads(1)
        if "inline" not in args.skip:
            dqn["softq dqn inline (1 env)"] = softq_rates(
                "pong-dqn", [*base, "runtime.inline=true", "runtime.envs_per_worker=1"],
                args.warmup)
        if "ray" not in args.skip:
            for n in args.workers:
                dqn[f"softq dqn ray {n}w x 2 envs"] = softq_rates(
                    "pong-dqn", [*base, "runtime.inline=false", f"runtime.workers={n}",
                                 "runtime.envs_per_worker=2"], args.warmup)
        ref = dqn.get("sb3 DQN (1 env)")
        print(f"DQN on Pong (batch 32, 0.25 updates/env step, Nature CNN, {args.device}; SB3 with "
              f"{args.sb3_threads} torch thread(s)):")
        print(header)
        for name, r in dqn.items():
            print(_row(name, r, ref if name.startswith("softq") else None), flush=True)
        results["dqn"] = dqn

    if "a2c" not in args.skip:
        a2c: dict[str, dict] = {}
        n = args.a2c_envs
        base = [f"run.total_env_steps={total}", "agent.n_steps=5", *args.overrides]
        if "sb3" not in args.skip:
            torch.set_num_threads(args.sb3_threads)
            a2c[f"sb3 A2C ({n} envs)"] = sb3_a2c_rates(args.steps, args.warmup, n,
                                                        device=args.device)
            torch.set_num_threads(1)
        if "inline" not in args.skip:
            a2c[f"softq a2c inline (1w x {n})"] = softq_rates(
                "pong-a2c-naive", [*base, "runtime.inline=true", "runtime.workers=1",
                                   f"runtime.envs_per_worker={n}"],
                args.warmup)
        if "ray" not in args.skip and n % 2 == 0:
            a2c[f"softq a2c ray (2w x {n // 2})"] = softq_rates(
                "pong-a2c-naive", [*base, "runtime.inline=false", "runtime.workers=2",
                                   f"runtime.envs_per_worker={n // 2}"], args.warmup)
        ref = a2c.get(f"sb3 A2C ({n} envs)")
        print(f"A2C on Pong (n_steps 5, {n} envs, Nature CNN, {args.device}):")
        print(header)
        for name, r in a2c.items():
            print(_row(name, r, ref if name.startswith("softq") else None), flush=True)
        results["a2c"] = a2c
    if args.presets:
        results["presets"] = preset_rates(args.presets, args.steps, args.warmup, args.workers[-1],
                                          args.a2c_envs, args.overrides)
        print(f"Short Ray runs, {args.workers[-1]} rollout workers (env steps/s and learner "
              "updates/s after the warm-up):")
        print(header)
        for name, r in results["presets"].items():
            print(_row(name, r, None), flush=True)
    print(json.dumps(results))
    return 0
