"""MaxEnt IRL passes on a deterministic graph MDP (Ziebart et al. 2008, Algorithm 1, re-derived).

Model. States are road segments, action ``a`` moves ``src[a] -> dst[a]`` and earns reward ``r[a]``
(``r = -cost``; eq. 2 with the reward of the entered segment and of the turn put on the transition).
A path from origin ``o`` to the absorbing destination ``g`` is ``o = s_0 -a_0-> s_1 ... -> s_T = g``
with ``s_t != g`` for ``t < T`` and has probability ``exp(sum_t r[a_t]) / Z_o`` (eq. 2). With a
fixed ``horizon`` N only paths with ``T <= N`` exist; with ``horizon=None`` every length counts
(the limit N -> inf). Without a destination, paths have exactly N transitions (finite-horizon MCE).

Backward pass (soft value iteration). ``beta_k(s)`` is the total weight of the suffixes from ``s``
that reach ``g`` in at most ``k`` steps (the reward of ``s`` itself excluded):
    beta_0 = 1[s = g],  beta_{k+1}(s) = sum_{a in A(s)} exp(r[a]) beta_k(dst[a]),  beta(g) = 1.
``log Z_o = log beta_N(o)`` (soft value); local action probabilities (Algorithm 1, step 3):
``P(a | s) = exp(r[a]) beta(dst[a]) / beta(s)``.

Forward pass (the recursion the paper misprints). ``alpha_t(s)`` is the weight of length-t prefixes
from the origins to ``s`` that did not stop at ``g`` earlier, started at ``alpha_0 = w / beta_N``
(w: demonstration counts per origin, so that each origin is normalised by its own Z):
    alpha_{t+1}(s') = sum_{a: dst[a] = s', src[a] != g} alpha_t(src[a]) exp(r[a]).
Every path visiting ``s`` at step ``t`` splits into a prefix and a suffix of at most N - t steps, so
    D_s = sum_{t=0}^{N} alpha_t(s) beta_{N-t}(s),
    D_a = sum_{t=0}^{N-1} alpha_t(src[a]) exp(r[a]) beta_{N-t-1}(dst[a])      (eq. 6 uses these),
which equals path enumeration exactly (the stationary-policy version of Algorithm 1 does not for
finite N). With ``horizon=None`` beta converges to beta_inf and
``D_s = beta_inf(s) sum_t alpha_t(s)``.

Everything is batched over B destinations (columns). Two numerically equivalent engines:
``space="log"`` (segment logsumexp, any range) and ``space="linear"`` (sparse mat-vec on values
rescaled by a per-column log scale each step; fast, but ranges beyond ~1e300 inside one column
underflow). ``space="auto"`` runs linear and re-runs the columns failing a mass check in log space.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from agents.irl.engines import LinearEngine, LogEngine, make_engine, segment_logsumexp


class GraphMDP:
    """A deterministic MDP: parallel arrays ``src, dst`` of length n_actions (states 0..n-1).

    Precomputes the CSR layouts (actions grouped by source and by target) that the passes reuse.
    """

    def __init__(self, n_states: int, src: np.ndarray, dst: np.ndarray):
        src = np.asarray(src)
        dst = np.asarray(dst)
        if src.ndim != 1 or dst.ndim != 1 or src.shape != dst.shape:
            raise ValueError(f"src and dst must be 1-D of equal length, got {src.shape}, "
                             f"{dst.shape}")
        if not (np.issubdtype(src.dtype, np.integer) and np.issubdtype(dst.dtype, np.integer)):
            raise TypeError("src and dst must be integer arrays of state indices")
        if n_states <= 0:
            raise ValueError(f"n_states must be positive, got {n_states}")
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n_states):
            raise ValueError(f"action endpoints must lie in [0, {n_states})")
        self.n_states = int(n_states)
        self.n_actions = int(src.size)
        self.src = src.astype(np.int64)
        self.dst = dst.astype(np.int64)
        # actions grouped by source state (rows of the successor matrix)
        self.out_order = np.argsort(self.src, kind="stable")
        counts = np.bincount(self.src, minlength=n_states)
        self.out_indptr = np.concatenate([[0], np.cumsum(counts)])
        # actions grouped by target state (rows of the predecessor matrix)
        self.in_order = np.argsort(self.dst, kind="stable")
        self.in_indptr = np.concatenate([[0], np.cumsum(np.bincount(self.dst, minlength=n_states))])
        self._key_order: np.ndarray | None = None  # built on first action_index call
        self._keys = np.empty(0, dtype=np.int64)

    def out_matrix(self, weight: np.ndarray) -> sp.csr_matrix:
        """[n, n] matrix ``M[s, s'] = sum of weight[a] over actions s -> s'``."""
        o = self.out_order
        return sp.csr_matrix((weight[o], self.dst[o], self.out_indptr),
                             shape=(self.n_states, self.n_states))

    def in_matrix(self, weight: np.ndarray) -> sp.csr_matrix:
        """[n, n] transpose layout ``M^T[s', s] = sum of weight[a] over actions s -> s'``."""
        o = self.in_order
        return sp.csr_matrix((weight[o], self.src[o], self.in_indptr),
                             shape=(self.n_states, self.n_states))

    def action_index(self, states: np.ndarray) -> np.ndarray:
        """Action ids of a state path ``[s_0, ..., s_T]`` -> ``[T]`` (first matching action)."""
        states = np.asarray(states, dtype=np.int64)
        if states.ndim != 1 or states.size < 1:
            raise ValueError("a path needs at least one state")
        if states.min() < 0 or states.max() >= self.n_states:
            raise ValueError(f"path has a state outside [0, {self.n_states})")
        if self._key_order is None:
            keys = self.src * self.n_states + self.dst
            self._key_order = np.argsort(keys, kind="stable")
            self._keys = keys[self._key_order]
        want = states[:-1] * self.n_states + states[1:]
        pos = np.minimum(np.searchsorted(self._keys, want), max(self._keys.size - 1, 0))
        bad = np.nonzero(self._keys[pos] != want)[0] if want.size else np.array([], int)
        if bad.size:
            t = int(bad[0])
            raise ValueError(f"path step {t}: no action from state {states[t]} to {states[t + 1]}")
        return self._key_order[pos]


@dataclass
class Backward:
    """Result of the backward pass for B destinations."""

    log_beta: np.ndarray
    """[n, B] log beta_N (= log Z_s, the soft value of s; -inf where g is unreachable)."""
    destinations: np.ndarray | None
    """[B] destination states, or None for the destination-free finite-horizon model."""
    horizon: int | None
    """N, or None when iterated to convergence."""
    iterations: int
    converged: bool
    space: str
    history: list | None = None
    """Engine values beta_0..beta_N (finite horizon only)."""
    engine: LinearEngine | LogEngine | None = None


@dataclass
class Visitation:
    states: np.ndarray
    """[n, B] expected visits D_s (summed over the origins' weights)."""
    actions: np.ndarray | None
    """[n_actions, B] expected action counts D_a."""
    mass: np.ndarray
    """[B] total origin weight that reached the destination (check: equals the weights)."""


def _as_dest(destinations, n: int) -> np.ndarray | None:
    if destinations is None:
        return None
    d = np.atleast_1d(np.asarray(destinations, dtype=np.int64))
    if d.ndim != 1 or d.size == 0:
        raise ValueError("destinations must be a non-empty 1-D array of state ids")
    if d.min() < 0 or d.max() >= n:
        raise ValueError(f"destination out of range [0, {n})")
    return d


def _check_reward(mdp: GraphMDP, reward: np.ndarray) -> np.ndarray:
    reward = np.asarray(reward, dtype=np.float64)
    if reward.shape != (mdp.n_actions,):
        raise ValueError(f"reward must have shape [n_actions]=({mdp.n_actions},), "
                         f"got {reward.shape}")
    if np.isnan(reward).any() or np.isposinf(reward).any():
        raise ValueError("reward contains NaN or +inf")
    return reward


# log of the smallest normal double (-708.4): a linear-engine value more than this far below its
# column's maximum is subnormal and has lost digits
LOG_TINY = float(np.log(np.finfo(np.float64).tiny))


def held_normal(log_beta: np.ndarray) -> np.ndarray:
    """[n, B] whether the linear engine holds each log Z as a normal double: it stores
    m * exp(max of the column) with m <= 1, and an m below the smallest normal double (log Z
    more than ~708 below its column's maximum) is subnormal, with digits lost."""
    with np.errstate(invalid="ignore"):
        return log_beta - log_beta.max(axis=0) > LOG_TINY

# Iterations over which an infinite-horizon backward pass must change the watched log Z by less
# than tol: the path lengths from one origin may skip up to SETTLE_STEPS - 1 values in a row
# (a street grid's parity skips one) without stopping the pass early.
SETTLE_STEPS = 4


def backward_pass(mdp: GraphMDP, reward: np.ndarray, destinations=None, horizon: int | None = None,
                  *, space: str = "linear", tol: float = 1e-10, max_iter: int = 5000,
                  watch: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
                  progress: bool = False) -> Backward:
    """Soft value iteration (Algorithm 1, steps 1-2) for a batch of destinations.

    Args:
        reward: [n_actions] r[a] = theta^T phi_a.
        destinations: [B] absorbing destination states; None: no destination (paths of exactly
            ``horizon`` steps, one column).
        horizon: N, or None to iterate until log beta at ``watch`` states changes by < tol.
        watch: states whose values decide convergence (e.g. the origins), in every column, or a
            tuple (rows, cols) of (state, column) pairs; default all states.
    """
    reward = _check_reward(mdp, reward)
    n = mdp.n_states
    dest = _as_dest(destinations, n)
    if horizon is None and dest is None:
        raise ValueError("horizon=None (iterate to convergence) needs destinations")
    if horizon is not None and (int(horizon) != horizon or horizon < 0):
        raise ValueError(f"horizon must be a non-negative int or None, got {horizon!r}")
    eng = make_engine(space, mdp, reward)
    B = 1 if dest is None else dest.size
    cols = np.arange(B)
    if dest is None:
        V = eng.from_log(np.zeros((n, 1)))
    else:
        L0 = np.full((n, B), -np.inf)
        L0[dest, cols] = 0.0
        V = eng.from_log(L0)

    def step(V):
        V = eng.back(V)
        return V if dest is None else eng.set_log(V, dest, cols, 0.0)

    bar = _bar(progress, horizon or max_iter, "backward")
    if horizon is not None:
        history = [V]
        for _ in range(int(horizon)):
            V = step(V)
            history.append(V)
            bar.update(1)
        bar.close()
        return Backward(eng.to_log(V), dest, int(horizon), int(horizon), True, eng.name,
                        history, eng)
    if watch is None:
        rows, wcols = np.arange(n), slice(None)
    elif isinstance(watch, tuple):  # (rows, cols) pairs: watch state rows[i] in column cols[i]
        rows, wcols = np.asarray(watch[0], dtype=np.int64), np.asarray(watch[1], dtype=np.int64)
    else:
        rows, wcols = np.unique(np.asarray(watch, dtype=np.int64)), slice(None)

    def watched(V):
        L = eng.to_log_rows(V, rows)
        return L if isinstance(wcols, slice) else L[np.arange(rows.size), wcols]

    recent = deque([watched(V)], maxlen=SETTLE_STEPS)  # watched values of the last iterations
    prev_reach = eng.n_reached(V)
    converged = False
    it = 0
    while it < max_iter:
        V = step(V)
        it += 1
        bar.update(1)
        cur = watched(V)
        fin = np.isfinite(cur)
        if fin.all():  # every watched state reached: stop once their values settle
            # log Z_t only grows with t (more paths); on a bipartite street grid no path is one
            # step longer than another from the same origin, so log Z_t can stand still for a
            # step before it grows again: settled means < tol over SETTLE_STEPS steps
            old = recent[0]
            if (len(recent) == SETTLE_STEPS and np.isfinite(old).all()
                    and np.max(np.abs(cur - old)) < tol):
                converged = True
                break
        elif it % 16 == 0:  # some watched state unreached: stop once nothing new is reached
            # and the reached ones settled, over SETTLE_STEPS steps as above (parity)
            reach = eng.n_reached(V)
            old = recent[0]
            if reach == prev_reach and np.array_equal(fin, np.isfinite(old)):
                if not fin.any() or np.max(np.abs(cur[fin] - old[fin])) < tol:
                    converged = True
                    break
            prev_reach = reach
        recent.append(cur)
    bar.close()
    if not converged:
        warnings.warn(f"MaxEnt backward pass: log Z has not settled after max_iter={max_iter} "
                      f"iterations (costs near zero on a cycle let paths grow without end); "
                      f"what follows treats paths as at most {max_iter} steps long",
                      RuntimeWarning, stacklevel=2)
    return Backward(eng.to_log(V), dest, None, it, converged, eng.name, None, eng)


def forward_pass(mdp: GraphMDP, reward: np.ndarray, back: Backward, origin_weights: np.ndarray,
                 *, with_actions: bool = True, tol: float = 1e-12, max_iter: int = 5000,
                 progress: bool = False) -> Visitation:
    """Expected state/action visitation (Algorithm 1, steps 4-6, corrected; see module doc).

    Args:
        origin_weights: [n, B] non-negative weight of each origin per destination column (e.g. the
            number of demonstrations from ``o`` to the column's destination).
    """
    reward = _check_reward(mdp, reward)
    n = mdp.n_states
    B = back.log_beta.shape[1]
    w = np.asarray(origin_weights, dtype=np.float64)
    if w.shape != (n, B):
        raise ValueError(f"origin_weights must have shape [n, B]=({n}, {B}), got {w.shape}")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("origin_weights must be finite and non-negative")
    bad = (w > 0) & ~np.isfinite(back.log_beta)
    if bad.any():
        s, b = np.argwhere(bad)[0]
        raise ValueError(f"origin {s} cannot reach destination column {b} "
                         f"(Z = 0 within the horizon); drop that path")
    eng = back.engine
    with np.errstate(divide="ignore"):
        L_alpha = np.where(w > 0, np.log(np.where(w > 0, w, 1.0)) - back.log_beta, -np.inf)
    A = eng.from_log(L_alpha)
    dest, cols = back.destinations, np.arange(B)
    acc_s = eng.from_log(np.full((n, B), -np.inf))
    if back.horizon is not None:
        N = back.horizon
        hist = back.history
        acc_a = eng.from_log(np.full((mdp.n_actions, B), -np.inf)) if with_actions else None
        bar = _bar(progress, N + 1, "forward")
        for t in range(N + 1):
            acc_s = eng.acc(acc_s, A, hist[N - t])
            if t < N:
                if dest is not None:
                    A = eng.zero(A, dest, cols)  # paths stop at g
                if with_actions:
                    acc_a = eng.acc_actions(acc_a, A, hist[N - t - 1])
                A = eng.fwd(A)
            bar.update(1)
        bar.close()
        L_s = eng.to_log(acc_s)
        L_a = None if acc_a is None else eng.to_log(acc_a) + reward[:, None]
    else:
        total = eng.from_log(np.full((n, B), -np.inf))  # sum_t alpha_t
        beta = eng.from_log(back.log_beta)
        w_tot = w.sum(axis=0)
        bar = _bar(progress, max_iter, "forward")
        for t in range(max_iter):
            total = eng.acc(total, A, None)
            A = eng.zero(A, dest, cols)
            bar.update(1)
            if t % 4 == 0:
                # mass still travelling: sum_s alpha_t(s) beta(s) = P(path longer than t) * w
                left = np.exp(eng.log_dot(A, beta))
                if np.all(left <= tol * np.maximum(w_tot, 1e-300)):
                    break
            A = eng.fwd(A)
        else:
            warnings.warn(f"MaxEnt forward pass: visitation mass still travelling after "
                          f"max_iter={max_iter} steps; the expected counts miss the longer paths",
                          RuntimeWarning, stacklevel=2)
        bar.close()
        L_tot = eng.to_log(total)
        L_s = L_tot + back.log_beta
        L_a = None
        if with_actions:
            L_src = L_tot[mdp.src].copy()
            for b, g in enumerate(dest):  # no action leaves the column's own destination
                L_src[mdp.out_order[mdp.out_indptr[g]:mdp.out_indptr[g + 1]], b] = -np.inf
            L_a = L_src + reward[:, None] + back.log_beta[mdp.dst]
    states = np.exp(L_s)
    actions = None if L_a is None else np.exp(L_a)
    if dest is not None:
        mass = states[dest, cols]
    else:
        mass = np.exp(_logsumexp0(eng.to_log(A))) if back.horizon is not None else w.sum(axis=0)
    return Visitation(states, actions, mass)


def visitation(mdp: GraphMDP, reward: np.ndarray, origin_weights: np.ndarray, destinations=None,
               horizon: int | None = None, *, space: str = "auto", with_actions: bool = True,
               tol: float = 1e-10, max_iter: int = 5000, progress: bool = False,
               ) -> tuple[Backward, Visitation]:
    """Backward then forward pass. ``space='auto'``: linear engine, columns whose absorbed mass
    differs from the origin weight by > 1e-6 (underflow) are recomputed in log space."""
    w = np.asarray(origin_weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    watch = tuple(np.nonzero(w > 0)) if horizon is None else None  # each column's origins
    first = "linear" if space == "auto" else space
    back = backward_pass(mdp, reward, destinations, horizon, space=first, tol=tol,
                         max_iter=max_iter, watch=watch, progress=progress)
    if space == "auto" and back.engine.underflow:
        first = "log"
        back = backward_pass(mdp, reward, destinations, horizon, space="log", tol=tol,
                             max_iter=max_iter, watch=watch, progress=progress)
    try:
        vis = forward_pass(mdp, reward, back, w, with_actions=with_actions, tol=tol * 1e-2,
                           max_iter=max_iter, progress=progress)
        ok = np.abs(vis.mass - w.sum(axis=0)) <= 1e-6 * np.maximum(w.sum(axis=0), 1.0)
        ok &= _normal_origins(back.log_beta, w)  # the mass can come out right regardless
    except ValueError:
        if space != "auto" or first == "log":
            raise
        ok = np.zeros(w.shape[1], dtype=bool)
        vis = None
    if space != "auto" or first == "log" or ok.all():
        return back, vis
    # recompute the failing columns in log space
    bad = np.nonzero(~ok)[0]
    dest_bad = None if back.destinations is None else back.destinations[bad]
    watch2 = tuple(np.nonzero(w[:, bad] > 0)) if horizon is None else None
    back2 = backward_pass(mdp, reward, dest_bad, horizon, space="log", tol=tol, max_iter=max_iter,
                          watch=watch2, progress=progress)
    vis2 = forward_pass(mdp, reward, back2, w[:, bad], with_actions=with_actions,
                        tol=tol * 1e-2, max_iter=max_iter, progress=progress)
    if vis is None:
        if bad.size == w.shape[1]:
            return back2, vis2
        raise RuntimeError("linear pass failed on a subset of columns; rerun with space='log'")
    back.log_beta[:, bad] = back2.log_beta
    vis.states[:, bad] = vis2.states
    if vis.actions is not None:
        vis.actions[:, bad] = vis2.actions
    vis.mass[bad] = vis2.mass
    back.history, back.space = None, "linear+log"
    return back, vis


def _normal_origins(log_beta: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[B] whether every origin's log Z is held as a normal double (:func:`held_normal`).
    Otherwise beta(o) (and the forward sum of alpha = w / beta(o) ... w) lost digits:
    visitation off by ~20% at log Z = -744."""
    return np.all((w <= 0) | held_normal(log_beta), axis=0)


def action_log_probs(mdp: GraphMDP, reward: np.ndarray, log_beta: np.ndarray) -> np.ndarray:
    """Local action log-probabilities (Algorithm 1, step 3): [n_actions, B]
    ``log P(a|s) = r[a] + log beta(dst[a]) - log sum_{a' in A(s)} exp(r[a']) beta(dst[a'])``,
    i.e. ``Z_a / Z_s``; normalised over A(s) even where beta has not fully converged (-inf where
    s cannot reach g)."""
    reward = _check_reward(mdp, reward)
    q = reward[:, None] + log_beta[mdp.dst]  # [m, B] log Z_a
    log_zs = segment_logsumexp(q[mdp.out_order], mdp.out_indptr)  # [n, B]
    with np.errstate(invalid="ignore"):
        out = q - log_zs[mdp.src]
    return np.where(np.isfinite(log_zs[mdp.src]), out, -np.inf)


def _logsumexp0(L: np.ndarray) -> np.ndarray:
    m = np.max(L, axis=0)
    ms = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(L - ms), axis=0)) + ms


def _bar(enabled: bool, total: int, desc: str):
    if enabled:
        from tqdm import tqdm

        # disable=None: no bar without a terminal (a log file kept its remains before the
        # next line)
        return tqdm(total=total, desc=desc, leave=False, disable=None)
    return _NoBar()


class _NoBar:
    def update(self, k: int) -> None:
        pass

    def close(self) -> None:
        pass
