"""Inference and baselines against brute-force enumeration on small graphs."""

from __future__ import annotations

import numpy as np
import pytest

from agents.irl import GraphMDP, backward_pass
from agents.irl.baselines import action_model_log_probs, time_cost, train_mmp
from agents.irl.inference import (
    destination_posterior,
    destination_prior,
    distance_match,
    log_partition,
    maxent_policy,
    most_likely_paths,
    path_log_prob,
    segment_use,
    shortest_to,
)
from tests.test_irl_maxent import (
    brute_force,
    enumerate_paths,
    figure2_mdp,
    random_graph,
    wide_range_mdp,
)


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
    steps = []
    c = train_mmp(mdp, phi, demo, np.ones(4), iters=50, lr=0.5, reg=1e-3,
                  cost0=np.array([1.0, 1.0, 1.0]), on_iteration=lambda: steps.append(1))
    assert len(steps) == 50  # progress: one call per subgradient step
    assert c[1] + 1.0 < c[0]  # the demonstrated route wins by at least the margin
    pred = most_likely_paths(mdp, phi @ c, [0], [3])[0]
    np.testing.assert_array_equal(pred, demo[0])


def test_mmp_loss_augmented_path_takes_the_cheaper_of_parallel_actions():
    """Demo 0 -> 3 -> 4 (cost 5); route A 0 -> 1 -> 4 over parallel actions 0 -> 1 of costs 3
    (listed first) and 1, then 1 (cost 2); route B 0 -> 2 -> 4 (cost 3.5). One subgradient step
    (loss 0, reg 0, lr 1) moves c by -(f_demo - f_A) / scale with f_A using the cheaper parallel
    action (feature 2, not the first listed). Summing the parallel actions in the graph made B
    the optimum (c[3] = 701)."""
    src, dst = np.array([0, 3, 0, 0, 1, 0, 2]), np.array([3, 4, 1, 1, 4, 2, 4])
    phi = np.array([[4.0, 0, 0, 0], [1, 0, 0, 0], [0, 3, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0],
                    [0, 0, 0, 2.5], [0, 0, 0, 1]])
    c = train_mmp(GraphMDP(5, src, dst), phi, [np.array([0, 3, 4])], np.zeros(5), iters=1,
                  lr=1.0, reg=0.0, cost0=np.ones(4))
    scale = np.array([5.0, 0, 0, 0]) + 5e-3  # f_demo + 1e-3 max f_demo
    expect = np.ones(4) - (np.array([5.0, 0, 0, 0]) - np.array([0, 0, 2.0, 0])) / scale
    np.testing.assert_allclose(c, expect, rtol=1e-12)


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


def test_shortest_paths_keep_costs_below_one():
    """Costs are used as given down to the 1e-12 floor: 0 -> 1 -> 2 (0.2 + 0.3) beats the
    direct 0 -> 2 (0.9)."""
    mdp = GraphMDP(3, np.array([0, 1, 0]), np.array([1, 2, 2]))
    dist, nxt = shortest_to(mdp, np.array([0.2, 0.3, 0.9]), [2])
    np.testing.assert_allclose(dist[0], [0.5, 0.3, 0.0])
    assert nxt[0].tolist() == [0, 1, -1]


def test_time_cost_is_the_entered_segments_travel_time():
    np.testing.assert_array_equal(time_cost(np.array([10.0, 20.0, 30.0]), np.array([2, 0, 2])),
                                  [30.0, 10.0, 30.0])


def test_destination_posterior_survives_log_z_far_from_zero():
    """Long routes have log Z in the hundreds: Bayes' rule must be formed in log space. With a
    uniform prior and Z_B / Z_A = e^1000 and e^1001 the posterior is (1, e) / (1 + e)."""
    log_z = np.zeros((3, 2))
    log_z[0] = [-1000.0, -1001.0]  # A -> each candidate
    post = destination_posterior(log_z, np.array([0.5, 0.5]), np.array([7, 8]), np.array([0, 1]))
    np.testing.assert_allclose(post, np.array([1.0, np.e]) / (1.0 + np.e), rtol=1e-12)


def test_finite_horizon_policy_is_the_first_step_of_enumerated_paths():
    """maxent_policy(horizon=N): P(a | s) is eq. 5 over the paths of at most N steps, i.e. the
    share of Z_N(s) carried by the paths starting with a, which is exp(r[a]) beta_{N-1}(dst[a]) /
    beta_N(s). Pins the beta_{N-1} choice (beta_N, or beta_N at N = 1, gives other numbers on a
    cyclic graph) and that the second output is log Z_N, both against brute-force enumeration."""
    n = 6
    src, dst, reward = random_graph(n, 2, 1)
    mdp = GraphMDP(n, src, dst)
    g = 5
    checked = 0
    for N in (1, 2, 4):
        logp, log_z = maxent_policy(mdp, reward, [g], horizon=N)
        for o in range(n):
            paths = enumerate_paths(n, src, dst, o, g, N)
            if o == g or not paths:
                assert o == g or log_z[o, 0] == -np.inf
                continue
            logw = np.array([reward[p].sum() for p in paths])
            assert log_z[o, 0] == pytest.approx(np.logaddexp.reduce(logw), abs=1e-12)
            first = np.array([p[0] for p in paths])
            for a in np.nonzero(src == o)[0]:
                expect = np.exp(logw[first == a]).sum() / np.exp(logw).sum()
                assert np.exp(logp[a, 0]) == pytest.approx(expect, abs=1e-12), (N, o, a)
                checked += 1
    assert checked >= 10
    # by hand: 0 -> 2 (r = -1), 0 -> 1 (-0.5), 1 -> 2 (-0.2), 1 -> 0 (-0.3), destination 2.
    # N = 1: only the direct step reaches 2; N = 2 adds 0 -> 1 -> 2 and 1 -> 0 -> 2
    mdp = GraphMDP(3, np.array([0, 0, 1, 1]), np.array([2, 1, 2, 0]))
    r = np.array([-1.0, -0.5, -0.2, -0.3])
    p1 = np.exp(maxent_policy(mdp, r, [2], horizon=1)[0][:, 0])
    np.testing.assert_allclose(p1, [1.0, 0.0, 1.0, 0.0], atol=1e-15)
    p2 = np.exp(maxent_policy(mdp, r, [2], horizon=2)[0][:, 0])
    via1, via0 = np.exp(-0.7) / (np.exp(-0.7) + np.exp(-1.0)), np.exp(-1.3) / (np.exp(-1.3)
                                                                              + np.exp(-0.2))
    np.testing.assert_allclose(p2, [1 - via1, via1, 1 - via0, via0], rtol=1e-12)


def test_destination_posterior_when_the_prefix_just_reached_a_candidate():
    """A prefix A -> ... -> B that ends ON a candidate g has not passed g: the trip may end there
    (likelihood exp(r(prefix)) Z_{g->g} / Z_{A->g} with Z_{g->g} = 1, the empty suffix) or go on
    to another candidate through g. Only candidates strictly before B are excluded. Checked
    against Bayes rule over the enumerated paths of a DAG (state prefixes: parallel actions sum)."""
    n = 8
    src, dst, reward = random_graph(n, 2, 11, dag=True)
    mdp = GraphMDP(n, src, dst)
    cands = np.array([4, 5, 7])
    prior = np.array([0.5, 0.3, 0.2])
    prefix = [0, 1, 3, 4]  # ends at candidate 4; 4 -> 5 -> ... -> 7 goes on
    like = []
    for g in cands:
        _, _, _, probs = brute_force(n, src, dst, reward, 0, g, n)
        like.append(sum(pr for p, pr in probs.items()
                        if [0, *dst[list(p)]][:len(prefix)] == prefix))
    expect = prior * np.array(like)
    assert (expect > 0).all()  # every candidate is still possible
    back = backward_pass(mdp, reward, cands, None)
    post = destination_posterior(back.log_beta, prior, cands, np.array(prefix))
    np.testing.assert_allclose(post, expect / expect.sum(), rtol=1e-10)
    # one step on (4 -> 5): candidate 4 is now passed and impossible, 5 just reached
    post2 = destination_posterior(back.log_beta, prior, cands, np.array([*prefix, 5]))
    assert post2[0] == 0.0 and post2[1] > 0.0 and post2[2] > 0.0
    # a cycle 1 <-> 2 (all rewards -1), candidates 1 and 3 (2 -> 3): at 0 -> 1 the trip may end
    # at 1 (1 / Z_{0->1} = e) or go on (Z_{1->3} / Z_{0->3} = e): the posterior is the prior; at
    # 0 -> 1 -> 2 candidate 1 was passed, although 2 leads back to it
    cyc = GraphMDP(4, np.array([0, 1, 2, 2]), np.array([1, 2, 1, 3]))
    lz = backward_pass(cyc, -np.ones(4), [1, 3], None).log_beta
    np.testing.assert_allclose(destination_posterior(lz, np.array([0.4, 0.6]), np.array([1, 3]),
                                                     np.array([0, 1])), [0.4, 0.6], rtol=1e-9)
    np.testing.assert_array_equal(destination_posterior(lz, np.array([0.4, 0.6]),
                                                        np.array([1, 3]), np.array([0, 1, 2])),
                                  [0.0, 1.0])


def test_figure5_prefix_is_ceil_of_the_fraction_and_stops_before_the_destination(monkeypatch):
    """destination_accuracy observes ceil(f * len) states of each test path, at least the origin
    and never the destination itself (observing it would give the answer away).

    Chain 0 -> 1 -> 2 -> 3 -> 4 with candidates 3 and 4, prior 0.7 / 0.3: every prefix that has
    not passed 3 leaves the posterior at the prior (the chain offers each the same routes), so
    the path to 4 is missed until 3 is passed, which only the destination itself would reveal:
    with the cap, the path to 4 is always missed and the one to 3 always hit (accuracy 1/2)."""
    from agents.irl import evaluation

    mdp = GraphMDP(5, np.arange(4), np.arange(1, 5))
    seen = []

    def spy(log_z, prior, candidates, partial):
        seen.append(len(partial))
        return destination_posterior(log_z, prior, candidates, partial)

    monkeypatch.setattr(evaluation, "destination_posterior", spy)
    paths = [np.arange(5), np.arange(4)]
    fr = np.array([0.0, 0.3, 0.5, 0.8, 0.81, 1.0])
    acc, base = evaluation.destination_accuracy(mdp, -np.ones(4), np.array([3, 4]),
                                                np.array([0.7, 0.3]), paths, fr)
    # size 5: ceil(0, 1.5, 2.5, 4, 4.05, 5) -> 1, 2, 3, 4, 4 (cap), 4 (cap)
    # size 4: ceil(0, 1.2, 2, 3.2, 3.24, 4) -> 1, 2, 2, 3 (cap), 3 (cap), 3 (cap)
    np.testing.assert_allclose(acc, 0.5)  # observing state 4 would make the last two 1.0
    np.testing.assert_allclose(base, 0.5)
    assert seen == [1, 1, 2, 2, 3, 2, 4, 3, 4, 3, 4, 3]


def test_log_partition_redoes_in_log_space_exactly_when_linear_space_fails(monkeypatch):
    """log_partition has no mass check to fall back on: it must redo the pass in log space when
    the linear engine flags an underflowing weight, even though the watched value came out
    finite (wide_range_mdp: linear gives log Z_0 = 600, the exact value is logaddexp(650, 600)),
    and when a watched value underflowed without any weight doing so (a 100-state chain at
    r = -10: Z_0 = e^-990 is below the smallest double). Otherwise the one linear pass stands."""
    from agents.irl import inference

    spaces = []

    def spy(*args, space, **kw):
        spaces.append(space)
        return backward_pass(*args, space=space, **kw)

    monkeypatch.setattr(inference, "backward_pass", spy)
    mdp, reward, _, log_z, _ = wide_range_mdp(1.0)
    lz = inference.log_partition(mdp, reward, [3], np.array([0]))
    assert lz[0, 0] == pytest.approx(log_z, abs=1e-9)
    assert spaces == ["linear", "log"]
    spaces.clear()
    chain = GraphMDP(100, np.arange(99), np.arange(1, 100))
    lz = inference.log_partition(chain, np.full(99, -10.0), [99], np.array([50, 0]))
    np.testing.assert_allclose(lz[[0, 50], 0], [-990.0, -490.0], rtol=1e-12)
    assert spaces == ["linear", "log"]
    spaces.clear()
    # nothing underflows: the linear values are exact and returned without a second pass
    mdp, reward, _, log_z, _ = wide_range_mdp(0.1)
    lz = inference.log_partition(mdp, reward, [3], np.array([0]))
    assert lz[0, 0] == pytest.approx(log_z, abs=1e-12)
    assert spaces == ["linear"]


def test_log_partition_redoes_in_log_space_a_subnormal_linear_value():
    """A 100-step chain at r = -7.44: Z_0 = e^-744 is a subnormal double (below e^-708) but not 0.
    The linear pass keeps it finite with most digits lost (log Z_0 = -743.75); it must be redone
    in log space rather than returned."""
    chain = GraphMDP(101, np.arange(100), np.arange(1, 101))
    lz = log_partition(chain, np.full(100, -7.44), [100], np.array([0]))
    assert lz[0, 0] == pytest.approx(-744.0, abs=1e-9)
    lz = log_partition(chain, np.full(100, -7.44), [100], (np.array([0]), np.array([0])))
    assert lz[0, 0] == pytest.approx(-744.0, abs=1e-9)
