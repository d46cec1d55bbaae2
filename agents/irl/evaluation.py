"""Table 1 (path matching and log-probability of held-out paths) and Figure 5 (destination
posterior accuracy against the observed fraction of the route)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.irl.baselines import action_model_log_probs, action_model_path_log_prob
from agents.irl.inference import (
    destination_posterior,
    distance_match,
    follow,
    log_partition,
    most_likely_paths,
    path_log_prob,
    shortest_to,
)
from agents.irl.maxent import GraphMDP


def _match_stats(test: Sequence[np.ndarray], pred: Sequence[np.ndarray], length: np.ndarray
                 ) -> dict[str, float]:
    m = np.array([distance_match(t, p, length) for t, p in zip(test, pred)])
    return {"matching_pct": 100 * float(m.mean()), "match90_pct": 100 * float((m >= 0.9).mean())}


def table1(mdp: GraphMDP, phi: np.ndarray, length: np.ndarray, travel_time_s: np.ndarray,
           test_paths: Sequence[np.ndarray], costs: dict[str, np.ndarray],
           progress: bool = False) -> dict[str, dict[str, float]]:
    """Rows of Table 1. ``costs`` maps 'maxent' / 'action' / 'mmp' to learned cost weights (any
    subset); the time-based row needs only travel times."""
    origins = np.array([p[0] for p in test_paths])
    dests = np.array([p[-1] for p in test_paths])
    uniq, col = np.unique(dests, return_inverse=True)
    acts = [mdp.action_index(p) for p in test_paths]
    rows: dict[str, dict[str, float]] = {}
    t_cost = np.asarray(travel_time_s, float)[mdp.dst]
    rows["Time-based"] = {**_match_stats(test_paths, most_likely_paths(mdp, t_cost, origins,
                                                                       dests), length),
                          "log_prob": float("nan")}
    if "mmp" in costs:
        pred = most_likely_paths(mdp, phi @ costs["mmp"], origins, dests)
        rows["Max Margin"] = {**_match_stats(test_paths, pred, length), "log_prob": float("nan")}
    if "action" in costs:
        c_a = phi @ costs["action"]
        logp, _, _ = action_model_log_probs(mdp, c_a, uniq)
        lp = action_model_path_log_prob(logp, acts, col)
        pred: list[np.ndarray] = [np.empty(0, np.int64)] * len(test_paths)
        for g in range(uniq.size):  # most likely path of a locally normalised model: -log P
            w = np.where(np.isfinite(logp[:, g]), -logp[:, g], 1e12)
            _, nxt = shortest_to(mdp, w, uniq[g:g + 1])
            idx = np.nonzero(col == g)[0]
            for i, p in zip(idx, follow(mdp, nxt[0], origins[idx])):
                pred[i] = p
        rows["Action"] = {**_match_stats(test_paths, pred, length), "log_prob": float(lp.mean())}
        rows["Action (costs)"] = {**_match_stats(test_paths, most_likely_paths(
            mdp, c_a, origins, dests), length), "log_prob": float("nan")}
    if "maxent" in costs:
        c_a = phi @ costs["maxent"]
        log_z = log_partition(mdp, -c_a, uniq, (origins, col), progress=progress)
        lp = path_log_prob(-c_a, log_z, acts, origins, col)
        rows["MaxEnt paths"] = {**_match_stats(test_paths, most_likely_paths(
            mdp, c_a, origins, dests), length), "log_prob": float(lp.mean())}
    return rows


def destination_accuracy(mdp: GraphMDP, reward: np.ndarray, candidates: np.ndarray,
                         prior: np.ndarray, test_paths: Sequence[np.ndarray],
                         fractions: np.ndarray, progress: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Figure 5: (posterior accuracy [F], prior-only accuracy [F]) over the test paths (each must
    end at a candidate) after observing ``ceil(f * len)`` of its segments."""
    candidates = np.asarray(candidates)
    truth = np.array([int(np.nonzero(candidates == p[-1])[0][0]) for p in test_paths])
    watch = np.unique(np.concatenate(list(test_paths)))
    log_z = log_partition(mdp, reward, candidates, watch, progress=progress)  # [n, G]
    acc = np.zeros(len(fractions))
    for j, f in enumerate(fractions):
        hits = 0
        for p, t in zip(test_paths, truth):
            k = min(max(1, int(np.ceil(f * p.size))), p.size - 1)  # never the destination itself
            post = destination_posterior(log_z, prior, candidates, p[:k])
            hits += int(np.argmax(post) == t)
        acc[j] = hits / len(test_paths)
    base = np.full(len(fractions), float(np.mean(truth == np.argmax(prior))))
    return acc, base
