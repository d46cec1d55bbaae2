"""``softq bench irl``: MaxEnt IRL backward + forward pass speed, and a public reference.

1. A synthetic Pittsburgh-sized city (280 x 280 grid: > 300k segments, > 900k transitions): one
   backward plus forward pass (state and action visitation) for one destination, with a fixed
   horizon and iterated to convergence, and for a batch of destinations.
2. The same computation by `imitation` (1.0.1: ``mce_partition_fh`` + ``mce_occupancy_measures``,
   dense transition tensor) on random tabular MDPs small enough for it, run in a subprocess with
   ``--reference-python`` (or $SOFTQ_IMITATION_PYTHON; imitation pins gymnasium 0.29, so it lives
   in its own venv). Our pass runs on the identical MDP (same seeded builder, embedded below);
   the occupancies are compared (max abs diff) and the time ratio printed. Both sides are
   timed as the best of ``--repeats`` passes, excluding imports and the MDP's construction.

Targets: the full pass in <= 1 s on one core; >= 100x the reference at 5,000 states.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from launch.arg_types import int_at_least, int_list_at_least

BUILD_SRC = '''
import numpy as np


def build(n, n_actions, seed):
    """Random deterministic tabular MDP: successor table, state rewards, initial distribution."""
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, n, size=(n, n_actions))
    reward = -rng.uniform(0.0, 1.0, size=n)
    p0 = rng.dirichlet(np.ones(n))
    return succ, reward, p0
'''

REFERENCE_SRC = BUILD_SRC + '''
import sys
import time
import types

from imitation.algorithms.mce_irl import mce_occupancy_measures, mce_partition_fh

n, A, H, seed, repeats, out = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                               int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
succ, reward, p0 = build(n, A, seed)
T = np.zeros((n, A, n))
T[np.arange(n)[:, None], np.arange(A)[None, :], succ] = 1.0
env = types.SimpleNamespace(horizon=H, state_dim=n, action_dim=A, transition_matrix=T,
                            reward_matrix=reward, initial_state_dist=p0)
best = float("inf")
for _ in range(repeats):  # best of repeats, as our side is timed
    t0 = time.perf_counter()
    _, _, pi = mce_partition_fh(env)
    D, _ = mce_occupancy_measures(env, pi=pi)
    best = min(best, time.perf_counter() - t0)
np.savez(out, D=D, seconds=best)
'''


def _build(n: int, n_actions: int, seed: int):
    ns: dict = {}
    exec(BUILD_SRC, ns)  # the very code the reference subprocess runs
    return ns["build"](n, n_actions, seed)


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_city(rows: int, cols: int, horizon: int, batch: int, repeats: int, seed: int) -> None:
    from agents.irl import GraphMDP, backward_pass, forward_pass
    from envs.city_generator import generate_city
    from launch.irl_cli import TRUE_COST

    t0 = time.perf_counter()
    g = generate_city(rows, cols, seed=seed)
    t_gen = time.perf_counter() - t0
    mdp = GraphMDP(g.n_segments, g.src, g.dst)
    reward = -(g.action_features() @ TRUE_COST)
    print(f"city {rows}x{cols}: {g.n_segments} states, {g.n_transitions} actions "
          f"(generated in {t_gen:.2f} s)")
    rng = np.random.default_rng(seed)
    dests = rng.choice(g.n_segments, batch, replace=False)
    origins = []
    for d in dests:  # one ~3.5-mile trip per destination (a small city: its farthest half)
        dist = np.hypot(g.x - g.x[d], g.y - g.y[d])
        band = np.nonzero((dist > 3.0) & (dist < 4.0))[0]
        if band.size == 0:
            band = np.nonzero(dist >= np.median(dist))[0]
        origins.append(int(rng.choice(band)))
    origin = origins[0]
    w = np.zeros((g.n_segments, 1))
    w[origin, 0] = 1.0

    def full(h, d, wt, space="linear", watch=None, actions=True):
        back = backward_pass(mdp, reward, d, h, space=space, watch=watch)
        return back, forward_pass(mdp, reward, back, wt, with_actions=actions)

    print("  one backward + forward pass, 1 destination, linear engine (target <= 1 s):")
    t_inf, (b, v) = _best(lambda: full(None, dests[:1], w, watch=[origin]), repeats)
    print(f"    to convergence (infinite horizon; {b.iterations} backward iterations), "
          f"state+action visitation: {t_inf:.3f} s  (mass {v.mass[0]:.6f}, "
          f"log Z {b.log_beta[origin, 0]:.3f})")
    t_fs, (b, v) = _best(lambda: full(horizon, dests[:1], w, actions=False), repeats)
    print(f"    fixed horizon {horizon} (exact, time-dependent), state visitation: {t_fs:.3f} s")
    t_fa, (b, v) = _best(lambda: full(horizon, dests[:1], w), repeats)
    print(f"    fixed horizon {horizon} (exact, time-dependent), state+action visitation: "
          f"{t_fa:.3f} s")
    wb = np.zeros((g.n_segments, batch))
    wb[origins, np.arange(batch)] = 1.0
    t_b, (b, v) = _best(lambda: full(None, dests, wb, watch=tuple(np.nonzero(wb > 0))), 1)
    print(f"    to convergence, batch of {batch} destinations ({b.iterations} iterations): "
          f"{t_b:.3f} s ({t_b / batch:.3f} s per destination)")
    t_log, _ = _best(lambda: full(None, dests[:1], w, space="log", watch=[origin]), 1)
    print(f"    to convergence, log-space engine (the underflow fallback): {t_log:.3f} s")


def bench_reference(sizes: list[int], horizon: int, n_actions: int, python: str | None,
                    repeats: int, seed: int) -> None:
    from agents.irl import GraphMDP, visitation

    print(f"tabular MDP, {n_actions} actions, horizon {horizon} (imitation's semantics)")
    for n in sizes:
        succ, r_s, p0 = _build(n, n_actions, seed)
        mdp = GraphMDP(n, np.repeat(np.arange(n), n_actions), succ.ravel())
        r_a = r_s[succ.ravel()]  # reward of the entered state; the origin's cancels in P(path|o)
        t_ours, (_, vis) = _best(lambda: visitation(mdp, r_a, p0, None, horizon - 1,  # noqa: B023
                                                    space="linear"), repeats)
        line = f"  {n:>6} states: ours {t_ours * 1e3:8.2f} ms"
        if python is None:
            print(line + "   reference skipped (no --reference-python / SOFTQ_IMITATION_PYTHON)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            script, out = Path(tmp) / "ref.py", Path(tmp) / "ref.npz"
            script.write_text(REFERENCE_SRC)
            env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                       MKL_NUM_THREADS="1")
            res = subprocess.run([python, str(script), str(n), str(n_actions), str(horizon),
                                  str(seed), str(repeats), str(out)], env=env,
                                 capture_output=True, text=True)
            if res.returncode != 0:
                print(line + f"   reference failed: {res.stderr.strip().splitlines()[-1:]}")
                continue
            z = np.load(out)
            D_ref, t_ref = z["D"], float(z["seconds"])
        # imitation's D has H + 1 rows; rows 0..H-1 are the states whose rewards count
        diff = np.abs(D_ref[:horizon].sum(axis=0) - vis.states[:, 0]).max()
        print(line + f"   imitation {t_ref:8.3f} s   ratio {t_ref / t_ours:8.1f}x   "
                     f"max |D_ref - D_ours| {diff:.2e}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="softq bench irl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int_at_least(2), default=280)
    p.add_argument("--cols", type=int_at_least(2), default=280)
    p.add_argument("--horizon", type=int_at_least(1), default=100)
    p.add_argument("--batch", type=int_at_least(1), default=8)
    p.add_argument("--ref-sizes", type=int_list_at_least(1), default="1000,5000",
                   help="states of each reference MDP, comma-separated")
    p.add_argument("--ref-actions", type=int_at_least(1), default=3)
    p.add_argument("--reference-python", default=os.environ.get("SOFTQ_IMITATION_PYTHON"))
    p.add_argument("--repeats", type=int_at_least(1), default=3)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--skip-city", action="store_true")
    args = p.parse_args(argv)
    if args.reference_python and args.ref_sizes and shutil.which(args.reference_python) is None:
        p.error(f"--reference-python {args.reference_python!r} (or $SOFTQ_IMITATION_PYTHON): "
                "no such executable")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, one core (SciPy CSR)")
    if not args.skip_city:
        bench_city(args.rows, args.cols, args.horizon, args.batch, args.repeats, args.seed)
    bench_reference(args.ref_sizes, args.horizon, args.ref_actions, args.reference_python,
                    args.repeats, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
