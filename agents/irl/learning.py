"""Learning cost weights from demonstrations (Ziebart et al. 2008, eq. 6).

Rewards are ``r[a] = -phi[a] @ c`` with per-transition features ``phi`` [m, K] and cost weights
``c`` [K] (``theta = -c``). The objective is the mean negative log-likelihood of the paths,

    NLL(c) = mean_i ( c . f_i + log Z_{o_i}(c; g_i) ),    grad = f_tilde - E_c[f]      (eq. 6)

convex in c. Demonstrations are grouped by destination: one backward pass per destination and a
single forward pass from all of that destination's origins (weights = counts). Batches of
destinations go through ``map_fn`` (serial by default; ``distributed.irl_tasks.ray_map`` spreads
them over Ray tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy.optimize import minimize

from agents.irl.maxent import GraphMDP, visitation

MapFn = Callable[[Callable, Sequence], list]


def serial_map(fn: Callable, items: Sequence) -> list:
    return [fn(it) for it in items]


def path_actions(mdp: GraphMDP, paths: Sequence[np.ndarray]) -> list[np.ndarray]:
    """State paths -> action-index paths (raises on a step that is not a transition)."""
    return [mdp.action_index(p) for p in paths]


def path_features(phi: np.ndarray, actions: Sequence[np.ndarray]) -> np.ndarray:
    """[P, K] feature counts f_zeta = sum of phi over each path's transitions."""
    if len(actions) == 0:
        return np.zeros((0, phi.shape[1]))
    return np.stack([phi[a].sum(axis=0) for a in actions])


def _batch_stats(item, mdp: GraphMDP, reward: np.ndarray, phi: np.ndarray, horizon, space: str,
                 tol: float, max_iter: int, progress: bool) -> tuple[float, np.ndarray]:
    """One destination batch: (sum of log Z over its demos, sum of expected features [K])."""
    dests, rows, cols, counts = item
    w = np.zeros((mdp.n_states, dests.size))  # [n, b] demo counts per origin and destination
    np.add.at(w, (rows, cols), counts)
    back, vis = visitation(mdp, reward, w, dests, horizon, space=space, tol=tol,
                           max_iter=max_iter, progress=progress)
    log_z = float(np.sum(counts * back.log_beta[rows, cols]))
    exp_f = phi.T @ vis.actions.sum(axis=1)  # [K]
    return log_z, exp_f


@dataclass
class MaxEntObjective:
    """Mean NLL of demonstrations and its gradient (eq. 6), batched over destinations."""

    mdp: GraphMDP
    phi: np.ndarray  # [m, K]
    paths: Sequence[np.ndarray]  # state paths [origin, ..., destination]
    horizon: int | None = None
    dest_batch: int = 16
    space: str = "auto"
    tol: float = 1e-9
    max_iter: int = 5000
    map_fn: MapFn = serial_map
    progress: bool = False
    evaluations: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.phi.shape[0] != self.mdp.n_actions:
            raise ValueError(f"phi must have one row per action ({self.mdp.n_actions}), "
                             f"got {self.phi.shape}")
        if len(self.paths) == 0:
            raise ValueError("need at least one demonstration path")
        if self.horizon is not None:  # eq. 2 over paths of <= N steps gives a longer one p = 0
            too_long = [i for i, p in enumerate(self.paths) if len(p) - 1 > self.horizon]
            if too_long:
                i = too_long[0]
                raise ValueError(f"{len(too_long)} demonstration path(s) take more steps than "
                                 f"the horizon {self.horizon} (path {i}: {len(self.paths[i]) - 1}"
                                 " steps) and have probability 0 under it; raise the horizon "
                                 "or drop them")
        acts = path_actions(self.mdp, self.paths)
        self.f_tilde = path_features(self.phi, acts).mean(axis=0)  # [K]
        org = np.array([p[0] for p in self.paths], dtype=np.int64)
        dst = np.array([p[-1] for p in self.paths], dtype=np.int64)
        uniq, inv = np.unique(dst, return_inverse=True)
        self.items = []
        for start in range(0, uniq.size, self.dest_batch):
            sel = (inv >= start) & (inv < start + self.dest_batch)
            key = np.stack([org[sel], inv[sel] - start])
            pairs, cnt = np.unique(key, axis=1, return_counts=True)
            self.items.append((uniq[start:start + self.dest_batch], pairs[0], pairs[1],
                               cnt.astype(np.float64)))
        self.n_paths = len(self.paths)

    def reward(self, cost: np.ndarray) -> np.ndarray:
        return -(self.phi @ cost)  # [m]

    def value_and_grad(self, cost: np.ndarray) -> tuple[float, np.ndarray]:
        """(mean NLL, gradient wrt the cost weights = f_tilde - E[f])."""
        cost = np.asarray(cost, dtype=np.float64)
        fn = partial(_batch_stats, mdp=self.mdp, reward=self.reward(cost), phi=self.phi,
                     horizon=self.horizon, space=self.space, tol=self.tol,
                     max_iter=self.max_iter, progress=self.progress)
        out = self.map_fn(fn, self.items)
        log_z = sum(o[0] for o in out)
        exp_f = sum(o[1] for o in out) / self.n_paths
        self.evaluations += 1
        return float(cost @ self.f_tilde + log_z / self.n_paths), self.f_tilde - exp_f


@dataclass
class TrainResult:
    cost: np.ndarray
    history: list[dict] = field(default_factory=list)


def train_exponentiated_gradient(obj: MaxEntObjective, cost0: np.ndarray, iters: int = 100,
                                 lr: float = 0.5, l1: float = 0.0,
                                 callback: Callable[[dict], None] | None = None) -> TrainResult:
    """Exponentiated gradient (the paper's choice): ``c <- c * exp(-lr * g / f_scale)``.

    Per-feature steps are scaled by ``f_scale = f_tilde + 1e-3 max f_tilde`` since features come
    in different units (miles vs. counts); the exponent is clipped to [-1, 1]; the step halves when
    the NLL goes up (the worse iterate is discarded). ``l1`` adds ``l1 * sum(c)`` (c >= 0).
    """
    c = np.asarray(cost0, dtype=np.float64).copy()
    if (c <= 0).any():
        raise ValueError("exponentiated gradient needs strictly positive initial costs")
    scale = obj.f_tilde + 1e-3 * max(obj.f_tilde.max(), 1e-12)
    res = TrainResult(c)
    f, g = obj.value_and_grad(c)
    f, g = f + l1 * c.sum(), g + l1
    for it in range(iters):
        step = np.clip(-lr * g / scale, -1.0, 1.0)
        c_new = c * np.exp(step)
        f_new, g_new = obj.value_and_grad(c_new)
        f_new, g_new = f_new + l1 * c_new.sum(), g_new + l1
        if f_new <= f:
            c, f, g = c_new, f_new, g_new
        else:
            lr *= 0.5
        rec = {"iter": it, "nll": f, "grad_norm": float(np.linalg.norm(g)), "lr": lr}
        res.history.append(rec)
        if callback:
            callback(rec)
    res.cost = c
    return res


def train_lbfgs(obj: MaxEntObjective, cost0: np.ndarray, iters: int = 100, l1: float = 0.0,
                nonnegative: bool = True, min_cost: float = 1e-6,
                callback: Callable[[dict], None] | None = None) -> TrainResult:
    """L-BFGS(-B) on the convex NLL. With ``nonnegative`` the costs are bounded below by
    ``min_cost`` and ``l1 * sum(c)`` is the (smooth there) l1 penalty."""
    if l1 > 0 and not nonnegative:
        raise ValueError("l1 with L-BFGS needs nonnegative=True (|c| is smooth only on c >= 0)")
    res = TrainResult(np.asarray(cost0, dtype=np.float64).copy())

    last = {"nll": float("nan")}
    # optimise u = c * s: features come in different units (miles vs counts); s = f_tilde makes
    # every coordinate of the gradient a relative feature-count mismatch (better conditioned)
    s = obj.f_tilde + 1e-3 * max(obj.f_tilde.max(), 1e-12)

    def fun(u):
        c = u / s
        f, g = obj.value_and_grad(c)
        last["nll"] = f + l1 * c.sum()
        return last["nll"], (g + l1) / s

    def cb(u):
        rec = {"iter": len(res.history), "nll": last["nll"]}
        res.history.append(rec)
        if callback:
            callback(rec)

    bounds = [(min_cost * sk, None) for sk in s] if nonnegative else None
    out = minimize(fun, res.cost * s, jac=True, method="L-BFGS-B", bounds=bounds, callback=cb,
                   options={"maxiter": iters})
    res.cost = out.x / s
    return res


def feature_null_space(phi: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """[K, r] orthonormal directions d with phi @ d = 0: costs along them never change a path's
    probability, so no demonstration can identify them (e.g. miles-by-type minus miles-by-speed)."""
    G = phi.T @ phi
    val, vec = np.linalg.eigh(G)
    return vec[:, val <= rtol * max(val.max(), 1e-300)]


def identifiable_correlation(a: np.ndarray, b: np.ndarray, null: np.ndarray) -> float:
    """Pearson correlation of two cost vectors after removing their unidentifiable components."""
    P = np.eye(a.size) - null @ null.T
    pa, pb = P @ a, P @ b
    return float(np.corrcoef(pa, pb)[0, 1])
