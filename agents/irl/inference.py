"""Inference with a learned cost: policies, path probabilities, most likely paths, segment use,
destination posteriors (Ziebart et al. 2008, "Applications").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from agents.irl.maxent import (
    GraphMDP,
    action_log_probs,
    backward_pass,
    held_normal,
    visitation,
)


def maxent_policy(mdp: GraphMDP, reward: np.ndarray, destinations, horizon: int | None = None,
                  watch: np.ndarray | None = None, space: str = "linear", max_iter: int = 5000,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Stationary MaxEnt policy for each destination: (log P(a|s) [m, B], log Z [n, B]).
    With a finite horizon this is the first step's policy (beta_{N-1})."""
    back = backward_pass(mdp, reward, destinations, horizon, space=space, watch=watch,
                         max_iter=max_iter, progress=progress)
    log_beta = back.log_beta
    if horizon is not None and horizon > 0:
        log_beta = back.engine.to_log(back.history[horizon - 1])
    return action_log_probs(mdp, reward, log_beta), back.log_beta


def log_partition(mdp: GraphMDP, reward: np.ndarray, destinations, watch,
                  horizon: int | None = None, max_iter: int = 5000, progress: bool = False
                  ) -> np.ndarray:
    """[n, B] log Z toward each destination, exact at the ``watch`` states (an index array for
    every column, or (rows, cols) pairs): linear engine, redone in log space if it underflowed
    there."""
    back = backward_pass(mdp, reward, destinations, horizon, space="linear", watch=watch,
                         max_iter=max_iter, progress=progress)
    normal = held_normal(back.log_beta)  # [n, B]
    needed = normal[watch] if isinstance(watch, tuple) else normal[watch, :]
    if back.engine.underflow or not needed.all():
        back = backward_pass(mdp, reward, destinations, horizon, space="log", watch=watch,
                             max_iter=max_iter, progress=progress)
    return back.log_beta


def path_log_prob(reward: np.ndarray, log_z: np.ndarray, actions: Sequence[np.ndarray],
                  origins: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """[P] log P(path) = sum_t r[a_t] - log Z_origin (eq. 2), with ``log_z`` [n, B] from the
    backward pass and ``columns`` [P] the destination column of each path."""
    ret = np.array([reward[a].sum() for a in actions])
    return ret - log_z[np.asarray(origins), np.asarray(columns)]


def _tree_graph(mdp: GraphMDP, cost: np.ndarray) -> csr_matrix:
    """Reversed graph R[dst, src] = min cost over parallel actions (for trees toward a goal)."""
    if cost.shape != (mdp.n_actions,):
        raise ValueError(f"cost must have shape ({mdp.n_actions},), got {cost.shape}")
    if not np.isfinite(cost).all() or (cost < 0).any():
        raise ValueError("shortest paths need finite non-negative action costs")
    c = np.maximum(cost, 1e-12)  # explicit zeros would vanish from the sparse graph
    order = np.lexsort((c, mdp.src, mdp.dst))
    keep = np.ones(order.size, dtype=bool)
    d, s = mdp.dst[order], mdp.src[order]
    keep[1:] = (d[1:] != d[:-1]) | (s[1:] != s[:-1])
    o = order[keep]
    return csr_matrix((c[o], (mdp.dst[o], mdp.src[o])), shape=(mdp.n_states, mdp.n_states))


def shortest_to(mdp: GraphMDP, cost: np.ndarray, destinations, limit: float = np.inf
                ) -> tuple[np.ndarray, np.ndarray]:
    """Dijkstra toward each destination: (dist [G, n] (inf if unreachable or beyond ``limit``),
    next action [G, n] (-1 at the destination or where unreachable))."""
    dests = np.atleast_1d(np.asarray(destinations, dtype=np.int64))
    dist, pred = dijkstra(_tree_graph(mdp, cost), directed=True, indices=dests,
                          return_predecessors=True, limit=limit)
    nxt = np.full(pred.shape, -1, dtype=np.int64)
    ok = pred >= 0
    g, s = np.nonzero(ok)
    # action s -> pred[g, s] with the smallest cost
    keys = mdp.src * mdp.n_states + mdp.dst
    order = np.lexsort((cost, keys))
    ks = keys[order]
    want = s * mdp.n_states + pred[g, s]
    nxt[g, s] = order[np.searchsorted(ks, want)]
    return dist, nxt


def follow(mdp: GraphMDP, nxt: np.ndarray, origins: np.ndarray, max_len: int | None = None
           ) -> list[np.ndarray]:
    """Follow next-action pointers [n] from each origin to the end of the tree (vectorized)."""
    cur = np.asarray(origins, dtype=np.int64).copy()
    max_len = max_len or mdp.n_states
    steps = [cur.copy()]
    alive = nxt[cur] >= 0
    for _ in range(max_len):
        if not alive.any():
            break
        a = nxt[cur[alive]]
        cur[alive] = mdp.dst[a]
        steps.append(np.where(alive, cur, -1))
        alive &= nxt[cur] >= 0
    T = np.stack(steps)  # [L, P]
    return [T[T[:, p] >= 0, p] for p in range(cur.size)]


def most_likely_paths(mdp: GraphMDP, cost: np.ndarray, origins, destinations) -> list[np.ndarray]:
    """Lowest-cost (= most likely under eq. 2) path for each (origin, destination) pair.
    Raises if an origin cannot reach its destination."""
    origins = np.asarray(origins, dtype=np.int64)
    destinations = np.asarray(destinations, dtype=np.int64)
    uniq, inv = np.unique(destinations, return_inverse=True)
    dist, nxt = shortest_to(mdp, cost, uniq)
    if not np.isfinite(dist[inv, origins]).all():
        i = int(np.nonzero(~np.isfinite(dist[inv, origins]))[0][0])
        raise ValueError(f"origin {origins[i]} cannot reach destination {destinations[i]}")
    out: list[np.ndarray] = [np.empty(0, np.int64)] * origins.size
    for gi in range(uniq.size):
        idx = np.nonzero(inv == gi)[0]
        for i, p in zip(idx, follow(mdp, nxt[gi], origins[idx])):
            out[i] = p
    return out


def segment_use(mdp: GraphMDP, reward: np.ndarray, origin: int, destination: int,
                horizon: int | None = None) -> np.ndarray:
    """[n] expected number of times each segment is used on the way from origin to destination.
    Equals P(segment used) whenever paths cannot revisit a segment; an upper bound otherwise."""
    w = np.zeros((mdp.n_states, 1))
    w[origin, 0] = 1.0
    _, vis = visitation(mdp, reward, w, [destination], horizon, with_actions=False)
    return vis.states[:, 0]


def destination_prior(train_destinations: np.ndarray, candidates: np.ndarray,
                      smoothing: float = 1.0) -> np.ndarray:
    """[G] P(dest) from training-path destination counts, Laplace smoothed."""
    cnt = np.array([(np.asarray(train_destinations) == g).sum() for g in candidates], float)
    p = cnt + smoothing
    return p / p.sum()


def destination_posterior(log_z: np.ndarray, prior: np.ndarray, candidates: np.ndarray,
                          partial: np.ndarray) -> np.ndarray:
    """P(dest | partial path A -> B) (Applications section, Bayes rule):

        P(dest | zeta_AB) ∝ P(dest) * Z_{B -> dest} / Z_{A -> dest},

    the reward of the observed prefix cancelling. ``log_z`` [n, G] is log Z toward each candidate.
    A destination the prefix already passed through has likelihood 0 (paths stop there)."""
    partial = np.asarray(partial, dtype=np.int64)
    a, b = partial[0], partial[-1]
    with np.errstate(invalid="ignore"):
        logp = np.log(prior) + log_z[b] - log_z[a]
    passed = np.isin(np.asarray(candidates), partial[:-1])
    logp = np.where(passed | ~np.isfinite(logp), -np.inf, logp)
    if not np.isfinite(logp).any():
        raise ValueError("the partial path is impossible under every candidate destination")
    p = np.exp(logp - logp.max())
    return p / p.sum()


def distance_match(demo: np.ndarray, predicted: np.ndarray, length: np.ndarray) -> float:
    """Share of the demonstrated path's distance that the predicted path also covers (Table 1)."""
    shared = np.isin(demo, predicted)
    return float(length[demo[shared]].sum() / length[demo].sum())
