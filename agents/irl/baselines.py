"""Table 1's baselines: action-based model (eq. 7), time-based fastest route, max margin planning.

* Action-based (Ramachandran & Amir 2007; Neu & Szepesvari 2007):
  ``P(a | s) ∝ exp(Q*(s, a))`` with ``Q*(s, a) = -cost[a] - dist*(dst[a] -> g)`` (eq. 7): a locally
  normalised model. Fitted by L-BFGS on the (non-convex) action log-likelihood; the gradient
  uses the feature counts along the optimal path from each successor.
* Time-based: cost of a transition = travel time of the entered segment; predict the fastest path.
* Maximum margin planning (Ratliff, Bagnell & Zinkevich 2006): minimise
  ``lam/2 |c|^2 + mean_i [c.f_i - min_zeta (c.f_zeta - loss_i(zeta))]`` by projected subgradient,
  where ``loss_i`` counts the miles of zeta off demonstration i (loss-augmented Dijkstra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from agents.irl.engines import segment_logsumexp
from agents.irl.inference import shortest_to
from agents.irl.maxent import GraphMDP


def action_model_log_probs(mdp: GraphMDP, cost: np.ndarray, destinations,
                           limit: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 7 for each destination: (log P(a|s) [m, G], dist [G, n], next action [G, n]).
    States farther than ``limit`` from the destination count as unreachable."""
    dist, nxt = shortest_to(mdp, cost, destinations, limit)
    Q = -cost[:, None] - dist.T[mdp.dst]  # [m, G], -inf where dst cannot reach g
    o = mdp.out_order
    lse = segment_logsumexp(Q[o], mdp.out_indptr)  # [n, G]
    with np.errstate(invalid="ignore"):
        logp = Q - lse[mdp.src]
    return np.where(np.isfinite(Q), logp, -np.inf), dist, nxt


def _tree_features(mdp: GraphMDP, phi: np.ndarray, nxt: np.ndarray, states: np.ndarray
                   ) -> np.ndarray:
    """[Q, K] feature counts along the optimal-path tree from each query state to its root."""
    F = np.zeros((states.size, phi.shape[1]))
    cur = states.copy()
    alive = nxt[cur] >= 0
    while alive.any():
        a = nxt[cur[alive]]
        F[alive] += phi[a]
        cur[alive] = mdp.dst[a]
        alive &= nxt[cur] >= 0
    return F


class ActionModelObjective:
    """Mean negative action log-likelihood of eq. 7 over demonstrated steps, and its gradient."""

    def __init__(self, mdp: GraphMDP, phi: np.ndarray, actions: Sequence[np.ndarray],
                 destinations: np.ndarray):
        self.mdp, self.phi = mdp, phi
        self.dests, inv = np.unique(np.asarray(destinations), return_inverse=True)
        self.acts = [np.concatenate([actions[i] for i in np.nonzero(inv == g)[0]])
                     for g in range(self.dests.size)]
        self.n_steps = sum(a.size for a in self.acts)
        self.path_feats = [np.stack([phi[actions[i]].sum(axis=0) for i in np.nonzero(inv == g)[0]])
                           for g in range(self.dests.size)]

    def value_and_grad(self, cost: np.ndarray) -> tuple[float, np.ndarray]:
        mdp, phi = self.mdp, self.phi
        c_a = phi @ cost  # [m]
        nll, grad = 0.0, np.zeros_like(cost)
        # Dijkstra pruned at twice the costliest demonstration (+ slack): successors beyond it
        # have exp(Q*) negligible against the demonstrated action
        limit = 2.0 * max(float((f @ cost).max()) for f in self.path_feats) + 10.0
        logp, _, nxt = action_model_log_probs(mdp, c_a, self.dests, limit)
        for g, acts in enumerate(self.acts):
            s = mdp.src[acts]
            # every action available at the demonstrated states: [sum deg] flattened
            lo, deg = mdp.out_indptr[s], mdp.out_indptr[s + 1] - mdp.out_indptr[s]
            rep = np.repeat(np.arange(s.size), deg)
            pos = np.repeat(lo, deg) + np.arange(rep.size) - np.repeat(np.cumsum(deg) - deg, deg)
            alt = mdp.out_order[pos]
            p_alt = np.exp(logp[alt, g])  # [sum deg]
            ok = p_alt > 0
            # dQ/dc = -(phi_a + F*(dst a)), F* = features along the optimal path to g
            q = np.concatenate([acts, alt[ok]])
            dq = -(phi[q] + _tree_features(mdp, phi, nxt[g], mdp.dst[q]))
            dq_act = dq[: acts.size]
            expect = np.zeros((s.size, phi.shape[1]))
            np.add.at(expect, rep[ok], p_alt[ok, None] * dq[acts.size:])
            nll -= logp[acts, g].sum()
            grad -= (dq_act - expect).sum(axis=0)
        return nll / self.n_steps, grad / self.n_steps


def train_action_model(obj: ActionModelObjective, cost0: np.ndarray, iters: int = 50,
                       min_cost: float = 1e-6, on_iteration: Callable[[], None] | None = None
                       ) -> np.ndarray:
    """L-BFGS-B (costs >= min_cost) on the action log-likelihood; returns the cost weights.
    ``on_iteration`` is called after each L-BFGS iteration (progress)."""
    out = minimize(obj.value_and_grad, np.asarray(cost0, float), jac=True, method="L-BFGS-B",
                   bounds=[(min_cost, None)] * len(cost0), options={"maxiter": iters},
                   callback=(lambda xk: on_iteration()) if on_iteration else None)
    return out.x


def action_model_path_log_prob(logp: np.ndarray, actions: Sequence[np.ndarray],
                               columns: np.ndarray) -> np.ndarray:
    """[P] log probability of each path under eq. 7 (sum of local action log-probabilities)."""
    return np.array([logp[a, c].sum() for a, c in zip(actions, columns)])


def time_cost(travel_time_s: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Per-transition cost of the time-based model: seconds to drive the entered segment."""
    return np.asarray(travel_time_s, dtype=np.float64)[dst]


def train_mmp(mdp: GraphMDP, phi: np.ndarray, paths: Sequence[np.ndarray],
              segment_loss: np.ndarray, iters: int = 30, lr: float = 0.5, reg: float = 1e-2,
              batch: int | None = None, cost0: np.ndarray | None = None, seed: int = 0,
              min_cost: float = 1e-6, on_iteration: Callable[[], None] | None = None
              ) -> np.ndarray:
    """Maximum margin planning by projected (stochastic) subgradient descent, steps lr/sqrt(t);
    ``on_iteration`` is called after each step (progress).

    ``segment_loss`` [n]: loss of entering a segment off the demonstration (e.g. its miles).
    Loss-augmented costs are clipped at ``min_cost`` so Dijkstra applies."""
    rng = np.random.default_rng(seed)
    K = phi.shape[1]
    c = np.ones(K) if cost0 is None else np.asarray(cost0, float).copy()
    acts = [mdp.action_index(p) for p in paths]
    f_demo = np.stack([phi[a].sum(axis=0) for a in acts])  # [P, K]
    scale = f_demo.mean(axis=0) + 1e-3 * f_demo.mean(axis=0).max()
    # one graph entry per (src, dst) pair, the cheapest of its parallel actions (a sparse
    # matrix built from the actions would add them up)
    n = mdp.n_states
    o = np.lexsort((mdp.dst, mdp.src))  # actions grouped by (src, dst), CSR order
    pair = mdp.src[o] * n + mdp.dst[o]
    first = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])  # [pairs] group starts
    ends = np.r_[first[1:], o.size]
    indptr = np.r_[0, np.cumsum(np.bincount(mdp.src[o][first], minlength=n))]
    for t in range(1, iters + 1):
        idx = rng.choice(len(paths), batch, replace=False) if batch else np.arange(len(paths))
        c_a = phi @ c
        g = reg * c
        for i in idx:
            p = paths[i]
            on = np.zeros(mdp.n_states, dtype=bool)
            on[p] = True
            aug = np.maximum(c_a - np.where(on[mdp.dst], 0.0, segment_loss[mdp.dst]), min_cost)
            G = csr_matrix((np.minimum.reduceat(aug[o], first), mdp.dst[o][first], indptr),
                           shape=(n, n))
            limit = aug[acts[i]].sum() * (1 + 1e-9) + 1e-12  # the demo itself bounds the optimum
            dist, pred = dijkstra(G, indices=int(p[0]), return_predecessors=True, limit=limit)
            if pred[p[-1]] < 0:  # limit rounding: the demonstration itself is optimal
                continue
            zeta = [int(p[-1])]
            while zeta[-1] != p[0]:
                zeta.append(int(pred[zeta[-1]]))
            zeta = np.array(zeta[::-1])
            j = np.searchsorted(pair[first], zeta[:-1] * n + zeta[1:])  # pair of each step
            best = [o[a + np.argmin(aug[o[a:b]])] for a, b in zip(first[j], ends[j])]
            g += (f_demo[i] - phi[best].sum(axis=0)) / idx.size
        c = np.maximum(c - lr / np.sqrt(t) * g / scale, min_cost)
        if on_iteration is not None:
            on_iteration()
    return c
