"""Synthetic drivers on a road graph, and the plain path format.

A path is an int array of segment ids ``[origin, ..., destination]``; consecutive segments must be
joined by a transition. On disk (docs/irl.md): CSV with header ``path_id,segments`` and the ids
space-separated, one path per line.

Drivers follow the MaxEnt policy of a hidden cost vector. This module does not import the IRL
code (``envs`` never imports ``agents``): the caller passes ``policy_fn(cost, destinations)``
returning the local action log-probabilities ``[n_transitions, B]`` (Algorithm 1, step 3).
Variants: ``epsilon`` (imperfect driving: each step is a uniformly random turn with probability
epsilon) and ``driver_sigma`` (noisy drivers: each driver's costs are the true costs times
log-normal noise of that scale).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.atomic_files import atomic_write_text
from envs.road_graph import RoadGraph

PolicyFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (cost [K], dests [B]) -> [m, B]


@dataclass
class DemoSet:
    paths: list[np.ndarray]
    driver: np.ndarray  # [P] driver id of each path

    @property
    def origins(self) -> np.ndarray:
        return np.array([p[0] for p in self.paths], dtype=np.int64)

    @property
    def destinations(self) -> np.ndarray:
        return np.array([p[-1] for p in self.paths], dtype=np.int64)


class PolicyTable:
    """A policy [m, B] laid out for inverse-CDF sampling (rows grouped by source segment)."""

    def __init__(self, graph: RoadGraph, action_logp: np.ndarray):
        n = graph.n_segments
        self.order = np.argsort(graph.src, kind="stable")
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(graph.src, minlength=n))])
        self.deg = np.diff(self.indptr)
        self.cum = np.cumsum(np.exp(action_logp[self.order]), axis=0)  # [m, B]
        zero = np.zeros((1, self.cum.shape[1]))
        self.base = np.vstack([zero, self.cum])[self.indptr[:-1]]  # [n, B] row starts


def sample_paths(graph: RoadGraph, action_logp: np.ndarray | PolicyTable, origins: np.ndarray,
                 column: np.ndarray, destinations: np.ndarray, rng: np.random.Generator,
                 epsilon: float = 0.0, max_steps: int = 5000) -> list[np.ndarray | None]:
    """Walk from each origin with the column's policy until its destination (vectorized over
    walkers). Returns one state path per walker, None if it did not arrive within max_steps.

    Args:
        action_logp: [m, B] log P(a | s) per destination column (or its PolicyTable).
        origins, column: [W] start segment and policy column of each walker.
        destinations: [B] destination segment of each column.
    """
    tab = action_logp if isinstance(action_logp, PolicyTable) else PolicyTable(graph, action_logp)
    order, indptr, deg, cum, base = tab.order, tab.indptr, tab.deg, tab.cum, tab.base
    cur = np.asarray(origins, dtype=np.int64).copy()
    col = np.asarray(column, dtype=np.int64)
    goal = np.asarray(destinations, dtype=np.int64)[col]
    W = cur.size
    trace = [cur.copy()]  # one [W] row per step, -1 once a walker has arrived
    active = cur != goal
    length = np.zeros(W, dtype=np.int64)
    for t in range(1, max_steps + 1):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        s, c = cur[idx], col[idx]
        lo, hi = indptr[s], indptr[s + 1]
        if (hi == lo).any():
            raise ValueError("a walker reached a segment without outgoing transitions")
        u = rng.random(idx.size)
        total = cum[hi - 1, c] - base[s, c]
        # inverse-CDF inside each walker's row of the policy
        target = base[s, c] + u * total
        pick = _row_search(cum, lo, hi, c, target)
        rand = lo + (rng.random(idx.size) * deg[s]).astype(np.int64)
        pick = np.where(rng.random(idx.size) < epsilon, rand, pick)
        nxt = graph.dst[order[pick]]
        cur[idx] = nxt
        row = np.full(W, -1, dtype=np.int64)
        row[idx] = nxt
        trace.append(row)
        length[idx] = t
        active[idx] = nxt != goal[idx]
    T = np.stack(trace, axis=1)  # [W, steps]
    return [None if active[w] else T[w, : length[w] + 1] for w in range(W)]


def _row_search(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray, col: np.ndarray,
                target: np.ndarray) -> np.ndarray:
    """First position p in [lo, hi) with cum[p, col] > target (binary search, vectorized)."""
    a, b = lo.copy(), hi - 1
    while True:
        open_ = a < b
        if not open_.any():
            return a
        mid = (a + b) // 2
        go_right = cum[mid, col] <= target
        a = np.where(open_ & go_right, mid + 1, a)
        b = np.where(open_ & ~go_right, mid, b)


def synthetic_drivers(graph: RoadGraph, true_cost: np.ndarray, policy_fn: PolicyFn,
                      n_paths: int, destinations: np.ndarray, dest_probs: np.ndarray | None = None,
                      seed: int = 0, epsilon: float = 0.0, driver_sigma: float = 0.0,
                      n_drivers: int = 1, min_length: int = 10, max_steps: int = 5000,
                      max_trip_miles: float | None = None) -> DemoSet:
    """Sample ``n_paths`` trips from random origins to the given destinations (drawn with
    ``dest_probs``); trips shorter than ``min_length`` segments are redrawn (as in the paper).
    ``max_trip_miles`` keeps origins within that straight-line distance of the destination."""
    destinations = np.asarray(destinations, dtype=np.int64)
    true_cost = np.asarray(true_cost, dtype=np.float64)
    if n_paths <= 0 or n_drivers <= 0:
        raise ValueError("n_paths and n_drivers must be positive")
    if not 0 <= epsilon < 1:
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
    B = destinations.size
    p = np.full(B, 1.0 / B) if dest_probs is None else np.asarray(dest_probs, dtype=np.float64)
    if p.shape != (B,) or (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError("dest_probs must be a probability vector over destinations")
    rng = np.random.default_rng(seed)
    noise = np.exp(driver_sigma * rng.standard_normal((n_drivers, true_cost.size)))
    paths: list[np.ndarray] = []
    drivers: list[int] = []
    # origin candidates of each destination: every segment, or those within max_trip_miles
    cands = [np.arange(graph.n_segments) if max_trip_miles is None else np.nonzero(
        np.hypot(graph.x - graph.x[g], graph.y - graph.y[g]) <= max_trip_miles)[0]
        for g in destinations]
    for d in range(n_drivers):
        want = n_paths // n_drivers + (d < n_paths % n_drivers)
        table = PolicyTable(graph, policy_fn(true_cost * noise[d], destinations))  # [m, B]
        for _ in range(200):
            if want == 0:
                break
            k = 2 * want + 8
            col = rng.choice(B, size=k, p=p)
            org = np.array([cands[c][rng.integers(cands[c].size)] for c in col], dtype=np.int64)
            for path in sample_paths(graph, table, org, col, destinations, rng, epsilon,
                                     max_steps):
                if path is not None and path.size >= min_length and want > 0:
                    paths.append(path)
                    drivers.append(d)
                    want -= 1
        if want > 0:
            raise RuntimeError(f"could not sample enough trips of >= {min_length} segments")
    perm = rng.permutation(len(paths))
    return DemoSet([paths[i] for i in perm], np.asarray(drivers, dtype=np.int64)[perm])


def save_paths(path: str | Path, paths: list[np.ndarray]) -> Path:
    """Write the path CSV atomically (a crash leaves the previous file whole)."""
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["path_id", "segments"])
    for i, p in enumerate(paths):
        w.writerow([i, " ".join(str(int(s)) for s in p)])
    path = Path(path)
    atomic_write_text(path, text.getvalue())
    return path


def load_paths(path: str | Path, graph: RoadGraph | None = None) -> list[np.ndarray]:
    """Read the path CSV; with ``graph`` also check ids and that each step is a transition."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    out: list[np.ndarray] = []
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:2]] != ["path_id", "segments"]:
            raise ValueError(f"{path}: header must be 'path_id,segments', got {header}")
        for line, row in enumerate(rows, start=2):
            try:
                p = np.array([int(s) for s in row[1].split()], dtype=np.int64)
            except (ValueError, IndexError) as e:
                raise ValueError(f"{path}:{line}: bad segment list ({e})") from e
            if p.size < 2:
                raise ValueError(f"{path}:{line}: a path needs at least 2 segments")
            out.append(p)
    if graph is not None:
        keys = set(zip(graph.src.tolist(), graph.dst.tolist()))
        for i, p in enumerate(out):
            if p.min() < 0 or p.max() >= graph.n_segments:
                bad = int(p.min()) if p.min() < 0 else int(p.max())
                raise ValueError(f"{path}: path {i} has segment id {bad}, outside the graph's "
                                 f"0..{graph.n_segments - 1}")
            for s, s2 in zip(p[:-1].tolist(), p[1:].tolist()):
                if (s, s2) not in keys:
                    raise ValueError(f"{path}: path {i} steps {s} -> {s2}, not a transition")
            # the model's paths stop at their destination's first visit (it absorbs): a path
            # through it and back has probability 0 under eq. 2
            early = np.flatnonzero(p[:-1] == p[-1])
            if early.size:
                raise ValueError(f"{path}: path {i} reaches its destination {p[-1]} at step "
                                 f"{early[0]} before its end; end it there")
    return out
