"""Learning (eq. 6): gradient checks, recovery of hidden costs, Table 1 order on held-out paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from agents.irl import GraphMDP
from agents.irl.baselines import ActionModelObjective, train_action_model
from agents.irl.evaluation import table1
from agents.irl.inference import log_partition, maxent_policy
from agents.irl.learning import (
    MaxEntObjective,
    feature_null_space,
    identifiable_correlation,
    train_exponentiated_gradient,
    train_lbfgs,
)
from distributed.irl_tasks import ray_map
from envs.city_generator import generate_city
from envs.demonstrations import synthetic_drivers
from launch.irl_cli import TRUE_COST


@pytest.fixture(scope="module")
def city():
    g = generate_city(20, 20, seed=0)
    mdp = GraphMDP(g.n_segments, g.src, g.dst)
    phi = g.action_features()
    dests = np.random.default_rng(0).choice(g.n_segments, 16, replace=False)

    def policy(c, d):
        return maxent_policy(mdp, -(phi @ c), d)[0]

    demos = synthetic_drivers(g, TRUE_COST, policy, 4300, dests, seed=1)
    return g, mdp, phi, demos.paths[:4000], demos.paths[4000:]


def _few_destinations(paths, k=4):
    """The paths ending at the first k destinations (k columns per pass: cheaper checks)."""
    keep = set(list(dict.fromkeys(int(p[-1]) for p in paths))[:k])
    return [p for p in paths if int(p[-1]) in keep]


def _fd_check(obj, c, eps=1e-5):
    f, g = obj.value_and_grad(c)
    fd = np.array([(obj.value_and_grad(c + eps * e)[0] - obj.value_and_grad(c - eps * e)[0])
                   / (2 * eps) for e in np.eye(c.size)])
    np.testing.assert_allclose(g, fd, atol=1e-6 * max(1.0, np.abs(g).max()))
    return f


@pytest.mark.parametrize("horizon", [None, 50])
def test_gradient_matches_finite_differences(city, horizon):
    g, mdp, phi, train, _ = city
    paths = _few_destinations(train)[:100]
    obj = MaxEntObjective(mdp, phi, paths, horizon=horizon)
    c = 0.6 + 0.05 * np.arange(phi.shape[1])
    f = _fd_check(obj, c)
    # the value is the mean NLL: check it against log Z computed independently
    dests = np.array([p[-1] for p in paths])
    r = -(phi @ c)
    uniq, col = np.unique(dests, return_inverse=True)
    if horizon is None:
        lz = log_partition(mdp, r, uniq, np.array([p[0] for p in paths]))
        nll = np.mean([-r[mdp.action_index(p)].sum() + lz[p[0], k]
                       for p, k in zip(paths, col, strict=True)])
        assert f == pytest.approx(nll, rel=1e-9)


def test_action_model_gradient_matches_finite_differences(city):
    g, mdp, phi, train, _ = city
    paths = _few_destinations(train)[:100]
    obj = ActionModelObjective(mdp, phi, [mdp.action_index(p) for p in paths],
                               np.array([p[-1] for p in paths]))
    _fd_check(obj, 0.6 + 0.05 * np.arange(phi.shape[1]), eps=1e-6)


def test_lbfgs_recovers_hidden_costs_and_beats_baselines(city):
    g, mdp, phi, train, test = city
    obj = MaxEntObjective(mdp, phi, train)
    res = train_lbfgs(obj, np.ones(phi.shape[1]), iters=80)
    null = feature_null_space(phi)
    assert null.shape[1] >= 3  # miles by type/speed/lanes and turns vs constant are collinear
    assert identifiable_correlation(res.cost, TRUE_COST, null) >= 0.95
    # the optimum fits the training data at least as well as the hidden costs
    assert obj.value_and_grad(res.cost)[0] <= obj.value_and_grad(TRUE_COST)[0] + 1e-3
    aobj = ActionModelObjective(mdp, phi, [mdp.action_index(p) for p in train[:500]],
                                np.array([p[-1] for p in train[:500]]))
    iterations = []
    c_action = train_action_model(aobj, np.ones(phi.shape[1]), iters=15,
                                  on_iteration=lambda: iterations.append(1))
    assert 1 <= len(iterations) <= 15  # progress: one call per L-BFGS iteration, within iters
    rows = table1(mdp, phi, g.length_miles, g.travel_time_s(), test,
                  {"maxent": res.cost, "action": c_action})
    me, act, tb = rows["MaxEnt paths"], rows["Action"], rows["Time-based"]
    assert me["log_prob"] > act["log_prob"]
    assert me["matching_pct"] > tb["matching_pct"]
    assert me["match90_pct"] > tb["match90_pct"]
    assert me["matching_pct"] >= act["matching_pct"]


def test_exponentiated_gradient_descends_and_l1_shrinks(city):
    g, mdp, phi, train, _ = city
    obj = MaxEntObjective(mdp, phi, _few_destinations(train)[:800])
    c0 = np.ones(phi.shape[1])
    f0 = obj.value_and_grad(c0)[0]
    res = train_exponentiated_gradient(obj, c0, iters=15, lr=0.5)
    nll = [h["nll"] for h in res.history]
    assert all(b <= a + 1e-12 for a, b in zip(nll, nll[1:], strict=False))  # monotone
    assert nll[-1] < f0 - 0.5
    assert (res.cost > 0).all()
    res_l1 = train_lbfgs(obj, c0, iters=15, l1=0.5)
    res_0 = train_lbfgs(obj, c0, iters=15)
    assert res_l1.cost.sum() < res_0.cost.sum()


def test_ray_map_without_ray_equals_serial(city):
    import ray

    assert not ray.is_initialized()  # else ray_map runs its tasks on Ray, not as without it
    g, mdp, phi, train, _ = city
    c = np.ones(phi.shape[1])
    a = MaxEntObjective(mdp, phi, train[:300], dest_batch=4).value_and_grad(c)
    b = MaxEntObjective(mdp, phi, train[:300], dest_batch=4, map_fn=ray_map).value_and_grad(c)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-10)


def test_a_fixed_horizon_refuses_demonstrations_longer_than_it():
    """Under horizon N, eq. 2 spreads probability over paths of at most N steps: a longer
    demonstration has probability 0 and would let the NLL fall without bound."""
    mdp = GraphMDP(4, np.array([0, 1, 2, 0]), np.array([1, 2, 3, 3]))  # chain + shortcut
    phi = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    path = np.array([0, 1, 2, 3])  # 3 steps
    MaxEntObjective(mdp, phi, [path], horizon=3)  # fits
    with pytest.raises(ValueError, match="1 demonstration path.*horizon 2 .*path 0: 3 steps"):
        MaxEntObjective(mdp, phi, [path], horizon=2)


def _two_routes():
    """Routes 0 -> 1 -> 3 (feature 0) and 0 -> 2 -> 3 (feature 1), demonstrated 3 : 1. With
    d = c1 - c0 the mean NLL is 0.75 c0 + 0.25 c1 + log(e^-c0 + e^-c1) = 0.25 d + log(1 + e^-d),
    minimised at d = log 3; f_tilde = (0.75, 0.25)."""
    mdp = GraphMDP(4, np.array([0, 0, 1, 2]), np.array([1, 2, 3, 3]))
    phi = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    paths = [np.array([0, 1, 3])] * 3 + [np.array([0, 2, 3])]
    return MaxEntObjective(mdp, phi, paths)


def _two_routes_nll(c):
    d = c[1] - c[0]
    return 0.25 * d + np.log1p(np.exp(-d))


def test_exponentiated_gradient_rejects_a_step_that_raises_the_nll_and_halves_lr():
    """From c = (3, 3) (d = 0, gradient (0.25, -0.25)) a step at lr 8, 4, 2 or 1 overshoots the
    optimum d = log 3 (the clipped exponent takes d to 7.05, ..., 5.98): each is rejected (the
    NLL stays log 2, the cost stays put) and lr halves; at lr 0.5 the unclipped step
    c * exp(-0.5 g / f_scale) lowers the NLL and is taken."""
    obj = _two_routes()
    c0 = np.array([3.0, 3.0])
    res = train_exponentiated_gradient(obj, c0, iters=5, lr=8.0)
    assert [h["lr"] for h in res.history] == [4.0, 2.0, 1.0, 0.5, 0.5]
    np.testing.assert_allclose([h["nll"] for h in res.history[:4]], np.log(2.0), rtol=1e-12)
    scale = np.array([0.75, 0.25]) + 0.75e-3
    c_new = c0 * np.exp(-0.5 * np.array([0.25, -0.25]) / scale)
    np.testing.assert_allclose(res.cost, c_new, rtol=1e-10)
    assert res.history[4]["nll"] == pytest.approx(_two_routes_nll(c_new), rel=1e-10)
    assert res.history[4]["nll"] < np.log(2.0)


def test_exponentiated_gradient_with_l1_steps_on_the_penalised_gradient():
    """With l1 every step, the first one included, follows the gradient of NLL + l1 sum(c):
    c <- c exp(-lr (f_tilde - E[f] + l1) / f_scale), E[f] = (p, 1 - p), p = 1 / (1 + e^-d);
    both steps lower NLL + l1 sum(c) and are taken."""
    obj, l1, lr = _two_routes(), 0.1, 0.5
    scale = np.array([0.75, 0.25]) + 0.75e-3
    res = train_exponentiated_gradient(obj, np.array([3.0, 3.0]), iters=2, lr=lr, l1=l1)
    c = np.array([3.0, 3.0])
    for h in res.history:
        p = 1.0 / (1.0 + np.exp(-(c[1] - c[0])))
        c = c * np.exp(np.clip(-lr * (np.array([0.75 - p, p - 0.75]) + l1) / scale, -1, 1))
        assert h["nll"] == pytest.approx(_two_routes_nll(c) + l1 * c.sum(), rel=1e-10)
    np.testing.assert_allclose(res.cost, c, rtol=1e-10)
    assert [h["lr"] for h in res.history] == [lr, lr]


def test_lbfgs_l1_reaches_both_the_objective_and_the_gradient_it_optimises(monkeypatch):
    """train_lbfgs hands L-BFGS-B a function of u = c * s; with l1 its value must be
    NLL(c) + l1 sum(c) and its gradient the derivative of exactly that value (else the line
    search fights the gradient). Checked on the function actually handed to the optimiser
    (analytic value, central differences), and on the optimum, by hand: with d = c1 - c0 the
    c1 condition 0.25 - 1 / (1 + e^d) + l1 = 0 gives d = log(1 / (0.25 + l1) - 1), and c0 rests
    on its bound (its gradient there is 2 l1 > 0)."""
    from agents.irl import learning

    captured = {}

    def spy(fun, x0, **kw):
        captured["fun"] = fun
        return minimize(fun, x0, **kw)

    monkeypatch.setattr(learning, "minimize", spy)
    obj = _two_routes()
    l1 = 0.1
    res = train_lbfgs(obj, np.array([1.0, 2.0]), iters=200, l1=l1)
    s = obj.f_tilde + 1e-3 * obj.f_tilde.max()
    fun = captured["fun"]
    for c in (np.array([1.0, 2.0]), np.array([0.3, 1.7]), np.array([2.0, 0.5])):
        u = c * s
        val, grad = fun(u)
        assert val == pytest.approx(_two_routes_nll(c) + l1 * c.sum(), rel=1e-10)
        eps = 1e-6
        fd = [(fun(u + eps * e)[0] - fun(u - eps * e)[0]) / (2 * eps) for e in np.eye(2)]
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    d = np.log(1 / (0.25 + l1) - 1)
    np.testing.assert_allclose(res.cost, [1e-6, 1e-6 + d], atol=1e-6)
    assert res.history[-1]["nll"] == pytest.approx(_two_routes_nll(res.cost) + l1 * res.cost.sum(),
                                                   abs=1e-8)
