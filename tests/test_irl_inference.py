"""Inference and baselines against brute-force enumeration on small graphs."""

from __future__ import annotations

import numpy as np
import pytest

from agents.irl import GraphMDP, backward_pass
from agents.irl.baselines import action_model_log_probs, train_mmp
from agents.irl.inference import (
    destination_posterior,
    destination_prior,
    distance_match,
    maxent_policy,
    most_likely_paths,
    path_log_prob,
    segment_use,
    shortest_to,
)
from tests.test_irl_maxent import brute_force, enumerate_paths, figure2_mdp, random_graph


def test_figure2_action_model_gives_half_quarter_quarter():
    mdp, reward = figure2_mdp()
    logp, dist, _ = action_model_log_probs(mdp, -reward, [6])
    p = np.exp(logp[:, 0])
    probs = sorted(np.prod(p[list(path)]) for path in [(0, 2, 4), (0, 3, 5), (1, 6, 7)])
    np.testing.assert_allclose(probs, [0.25, 0.25, 0.5], atol=1e-12)
    assert dist[0, 0] == pytest.approx(3.0)


def test_path_log_prob_matches_enumeration():
    n = 9
    src, dst, reward = random_graph(n, 3, 21)
    reward -= 0.5
    mdp = GraphMDP(n, src, dst)
    _, _, _, probs = brute_force(n, src, dst, reward, 0, 8, 6)
    back = backward_pass(mdp, reward, [8], 6)
    paths = list(probs)[:20]
    lp = path_log_prob(reward, back.log_beta, [np.array(p) for p in paths],
                       np.zeros(len(paths), int), np.zeros(len(paths), int))
    np.testing.assert_allclose(lp, np.log([probs[p] for p in paths]), atol=1e-10)
    # the stationary policy of a converged pass: products of local probabilities (eq. 5)
    r2 = reward - 1.5  # sum_a exp(r) < 1 per state: Z converges for the infinite horizon
    logp, log_z = maxent_policy(mdp, r2, [8], None)
    _, _, _, probs_inf = brute_force(n, src, dst, r2, 0, 8, 14)
    top = max(probs_inf, key=probs_inf.get)
    assert np.exp(logp[list(top), 0].sum()) == pytest.approx(probs_inf[top], rel=1e-3)


def test_most_likely_path_is_the_brute_force_argmax():
    n = 10
    src, dst, reward = random_graph(n, 3, 4)
    mdp = GraphMDP(n, src, dst)
    for o, g in [(0, 9), (3, 7), (5, 1)]:
        paths = enumerate_paths(n, src, dst, o, g, 10)
        best = max(paths, key=lambda p: reward[p].sum())
        pred = most_likely_paths(mdp, -reward, [o], [g])[0]
        np.testing.assert_array_equal(pred, np.concatenate([[o], dst[best]]))


def test_segment_use_matches_enumeration():
    n = 8
    src, dst, reward = random_graph(n, 2, 11, dag=True)
    mdp = GraphMDP(n, src, dst)
    paths = enumerate_paths(n, src, dst, 0, n - 1, n)
    _, _, _, probs = brute_force(n, src, dst, reward, 0, n - 1, n)
    used = np.zeros(n)
    for p in paths:  # on a DAG a path uses a segment at most once
        used[np.unique(np.concatenate([[0], dst[p]]))] += probs[tuple(p)]
    np.testing.assert_allclose(segment_use(mdp, reward, 0, n - 1), used, atol=1e-10)


def test_segment_use_on_a_street_grid_reaches_the_destination_once():
    """A generated city is nearly bipartite: from origin 519 no path to segment 100 is one step
    longer than the shortest, and a pass that stopped at that standstill put 5.7 expected
    visits on the destination (probability > 1). Every path ends there exactly once."""
    from envs.city_generator import generate_city
    from launch.irl_cli import TRUE_COST, _mdp

    mdp, phi = _mdp(generate_city(12, 12, seed=0))
    use = segment_use(mdp, -(phi @ TRUE_COST), 519, 100)
    assert use[100] == pytest.approx(1.0, abs=1e-8)  # (the origin may be passed again: >= 1)


def test_destination_posterior_is_bayes_rule_over_enumerated_paths():
    n = 8
    src, dst, reward = random_graph(n, 3, 2)
    reward -= 0.3
    mdp = GraphMDP(n, src, dst)
    cands = np.array([5, 6, 7])
    prior = np.array([0.5, 0.3, 0.2])
    N = 7
    back = backward_pass(mdp, reward, cands, N)
    # an observed prefix 0 -> ... of two steps that avoids the candidates
    pre = next(p for p in enumerate_paths(n, src, dst, 0, None, 2)
               if not np.isin(dst[p], cands).any())
    states = np.concatenate([[0], dst[pre]])
    # P(prefix | g) = sum over paths to g that start with the prefix (within N steps) / Z
    like = []
    for g in cands:
        _, _, _, probs = brute_force(n, src, dst, reward, 0, g, N)
        like.append(sum(pr for p, pr in probs.items() if list(p[:2]) == list(pre)))
    expect = prior * np.array(like)
    # the suffix after the prefix has N - 2 steps left: compare with the N - 2 step values
    back_rest = backward_pass(mdp, reward, cands, N - 2)
    lz = back.log_beta.copy()
    lz[states[-1]] = back_rest.log_beta[states[-1]]
    post = destination_posterior(lz, prior, cands, states)
    np.testing.assert_allclose(post, expect / expect.sum(), atol=1e-10)
    # a destination the prefix already passed through is impossible
    post2 = destination_posterior(lz, prior, cands, np.array([5, 0, 1]))
    assert post2[0] == 0.0


def test_destination_prior_and_distance_match():
    prior = destination_prior(np.array([3, 3, 4, 9]), np.array([3, 4, 5]), smoothing=1.0)
    np.testing.assert_allclose(prior, np.array([3, 2, 1]) / 6)
    length = np.array([1.0, 2.0, 3.0, 4.0])
    assert distance_match(np.array([0, 1, 3]), np.array([0, 2, 3]), length) == pytest.approx(5 / 7)


def test_mmp_makes_the_demonstrated_route_the_cheapest():
    # two routes 0 -> 3: via 1 (feature 0) or via 2 (feature 1); the demo takes the route via 2
    mdp = GraphMDP(4, np.array([0, 0, 1, 2]), np.array([1, 2, 3, 3]))
    phi = np.array([[1.0, 0, 0.1], [0, 1.0, 0.1], [0, 0, 0.1], [0, 0, 0.1]])
    demo = [np.array([0, 2, 3])]
    c = train_mmp(mdp, phi, demo, np.ones(4), iters=50, lr=0.5, reg=1e-3,
                  cost0=np.array([1.0, 1.0, 1.0]))
    assert c[1] + 1.0 < c[0]  # the demonstrated route wins by at least the margin
    pred = most_likely_paths(mdp, phi @ c, [0], [3])[0]
    np.testing.assert_array_equal(pred, demo[0])


def test_shortest_path_needs_non_negative_costs():
    mdp, reward = figure2_mdp()
    with pytest.raises(ValueError, match="non-negative"):
        most_likely_paths(mdp, reward, [0], [6])
    with pytest.raises(ValueError, match="cannot reach"):
        most_likely_paths(mdp, -reward, [6], [0])


def test_shortest_paths_take_the_cheaper_of_parallel_actions():
    """Two parallel actions 0 -> 1 (costs 5 and 1, the costly one first) and 1 -> 2: the tree
    toward 2 uses the cheaper (not their sum: the sparse graph would add duplicates)."""
    mdp = GraphMDP(3, np.array([0, 0, 1]), np.array([1, 1, 2]))
    dist, nxt = shortest_to(mdp, np.array([5.0, 1.0, 2.0]), [2])
    np.testing.assert_allclose(dist[0], [3.0, 2.0, 0.0])
    assert nxt[0].tolist() == [1, 2, -1]
