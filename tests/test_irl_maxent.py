"""MaxEnt passes (agents/irl/maxent.py) against brute-force path enumeration under eq. 2."""

from __future__ import annotations

import numpy as np
import pytest

from agents.irl import GraphMDP, action_log_probs, backward_pass, forward_pass, visitation


def enumerate_paths(n, src, dst, origin, dest, horizon):
    """All action sequences from origin: ending at the first visit of dest within horizon steps
    (dest given) or of exactly horizon steps (dest None)."""
    out = [[] for _ in range(n)]
    for a, s in enumerate(src):
        out[s].append(a)
    paths = []

    def rec(s, acts):
        if dest is not None and s == dest:
            paths.append(list(acts))
            return
        if len(acts) == horizon:
            if dest is None:
                paths.append(list(acts))
            return
        for a in out[s]:
            acts.append(a)
            rec(dst[a], acts)
            acts.pop()

    rec(origin, [])
    return paths


def brute_force(n, src, dst, reward, origin, dest, horizon):
    """(log Z, D_states [n], D_actions [m], {path tuple: prob}) by enumerating eq. 2."""
    paths = enumerate_paths(n, src, dst, origin, dest, horizon)
    logw = np.array([reward[p].sum() if p else 0.0 for p in paths])
    log_z = np.logaddexp.reduce(logw)
    prob = np.exp(logw - log_z)
    Ds, Da = np.zeros(n), np.zeros(len(src))
    for p, pr in zip(paths, prob, strict=True):
        Ds[origin] += pr
        for a in p:
            Ds[dst[a]] += pr
            Da[a] += pr
    return log_z, Ds, Da, {tuple(p): pr for p, pr in zip(paths, prob, strict=True)}


def random_graph(n, deg, seed, dag=False):
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n), deg)
    if dag:  # edges only to higher ids; last state absorbs
        dst = np.minimum(src + rng.integers(1, 3, src.size), n - 1)
        keep = src < n - 1
        src, dst = src[keep], dst[keep]
    else:
        dst = rng.integers(0, n, src.size)
    reward = -rng.uniform(0.2, 1.5, src.size)
    return src, dst, reward


@pytest.mark.parametrize("space", ["linear", "log"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finite_horizon_matches_enumeration(space, seed):
    n = 6
    src, dst, reward = random_graph(n, 2, seed)
    mdp = GraphMDP(n, src, dst)
    dests = np.array([3, 5])
    w = np.zeros((n, 2))
    w[0, 0], w[1, 1] = 1.0, 1.0
    back = backward_pass(mdp, reward, dests, 7, space=space)
    vis = forward_pass(mdp, reward, back, w)
    for b, (o, g) in enumerate([(0, 3), (1, 5)]):
        log_z, Ds, Da, _ = brute_force(n, src, dst, reward, o, g, 7)
        assert back.log_beta[o, b] == pytest.approx(log_z, abs=1e-10)
        np.testing.assert_allclose(vis.states[:, b], Ds, atol=1e-8)
        np.testing.assert_allclose(vis.actions[:, b], Da, atol=1e-8)
        assert vis.mass[b] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("space", ["linear", "log"])
def test_no_destination_matches_enumeration(space):
    n = 5
    src, dst, reward = random_graph(n, 3, 7)
    mdp = GraphMDP(n, src, dst)
    w = np.zeros((n, 1))
    w[2, 0] = 1.0
    back, vis = visitation(mdp, reward, w, None, 5, space=space)
    log_z, Ds, Da, _ = brute_force(n, src, dst, reward, 2, None, 5)
    assert back.log_beta[2, 0] == pytest.approx(log_z, abs=1e-10)
    np.testing.assert_allclose(vis.states[:, 0], Ds, atol=1e-8)
    np.testing.assert_allclose(vis.actions[:, 0], Da, atol=1e-8)
    assert vis.states[:, 0].sum() == pytest.approx(6.0)  # N + 1 states per path


def test_mce_recursion_of_imitation_semantics():
    """Destination-free mode equals the finite-horizon MCE recursion of Ziebart (2010) as written
    in `imitation` (dense T[s, a, s'], V_{H-1} = logsumexp_a r, D_0 = p0), a dense re-derivation."""
    rng = np.random.default_rng(3)
    n, A, H = 7, 3, 6
    succ = rng.integers(0, n, (n, A))
    r_s = -rng.uniform(0, 1, n)
    p0 = rng.dirichlet(np.ones(n))
    T = np.zeros((n, A, n))
    T[np.arange(n)[:, None], np.arange(A)[None], succ] = 1.0
    V = np.zeros((H, n))
    Q = np.zeros((H, n, A))
    Q[H - 1] = r_s[:, None]
    V[H - 1] = np.logaddexp.reduce(Q[H - 1], axis=1)
    for t in reversed(range(H - 1)):
        Q[t] = r_s[:, None] + T @ V[t + 1]
        V[t] = np.logaddexp.reduce(Q[t], axis=1)
    pi = np.exp(Q - V[:, :, None])
    D = np.zeros((H + 1, n))
    D[0] = p0
    for t in range(H):
        D[t + 1] = np.einsum("s,sa,sax->x", D[t], pi[t], T)
    mdp = GraphMDP(n, np.repeat(np.arange(n), A), succ.ravel())
    _, vis = visitation(mdp, r_s[succ.ravel()], p0, None, H - 1)
    np.testing.assert_allclose(vis.states[:, 0], D[:H].sum(axis=0), atol=1e-12)


@pytest.mark.parametrize("space", ["linear", "log"])
def test_converged_pass_matches_enumeration_on_dag(space):
    n = 8
    src, dst, reward = random_graph(n, 2, 11, dag=True)
    mdp = GraphMDP(n, src, dst)
    w = np.zeros((n, 1))
    w[0, 0] = 1.0
    back, vis = visitation(mdp, reward, w, [n - 1], None, space=space)
    log_z, Ds, Da, _ = brute_force(n, src, dst, reward, 0, n - 1, n)  # all paths have < n steps
    assert back.converged
    assert back.log_beta[0, 0] == pytest.approx(log_z, abs=1e-10)
    np.testing.assert_allclose(vis.states[:, 0], Ds, atol=1e-8)
    np.testing.assert_allclose(vis.actions[:, 0], Da, atol=1e-8)


@pytest.mark.parametrize("space", ["linear", "log"])
@pytest.mark.parametrize("gap", [1, 3])
def test_converged_pass_waits_out_path_lengths_that_do_not_occur(space, gap):
    """A shortcut of one step beside a chain of 2 + gap steps: no path has 2 ... gap + 1 steps,
    so log Z stands still for gap iterations before the chain adds its paths (a street grid's
    parity does this with gap 1). Watching the origin, the pass must not stop in the gap."""
    n = gap + 3  # chain 0 -> 1 -> ... -> n - 1, shortcut 0 -> n - 1
    src = np.array([*range(n - 1), 0])
    dst = np.array([*range(1, n), n - 1])
    reward = np.array([-1.0] * (n - 1) + [-3.0])
    mdp = GraphMDP(n, src, dst)
    w = np.zeros((n, 1))
    w[0, 0] = 1.0
    back, vis = visitation(mdp, reward, w, [n - 1], None, space=space)  # watches the origin
    log_z, Ds, Da, _ = brute_force(n, src, dst, reward, 0, n - 1, n)
    assert back.converged
    assert back.log_beta[0, 0] == pytest.approx(log_z, abs=1e-10)
    assert vis.states[n - 1, 0] == pytest.approx(1.0, abs=1e-9)  # every path ends at the goal
    np.testing.assert_allclose(vis.actions[:, 0], Da, atol=1e-8)


def test_converged_equals_long_horizon_on_cyclic_graph():
    n = 30
    src, dst, reward = random_graph(n, 3, 5)
    reward -= 1.0  # costly enough that Z converges
    mdp = GraphMDP(n, src, dst)
    w = np.zeros((n, 3))
    w[[0, 4, 9], [0, 1, 2]] = [1.0, 2.0, 1.0]
    dests = [7, 12, 20]
    b_inf, v_inf = visitation(mdp, reward, w, dests, None, tol=1e-13)
    b_fin, v_fin = visitation(mdp, reward, w, dests, 300, space="log")
    np.testing.assert_allclose(b_inf.log_beta[[0, 4, 9], [0, 1, 2]],
                               b_fin.log_beta[[0, 4, 9], [0, 1, 2]], atol=1e-9)
    np.testing.assert_allclose(v_inf.states, v_fin.states, atol=1e-8)
    np.testing.assert_allclose(v_inf.actions, v_fin.actions, atol=1e-8)


def test_batch_equals_single_destinations():
    n = 25
    src, dst, reward = random_graph(n, 3, 9)
    mdp = GraphMDP(n, src, dst)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 3, (n, 4)).astype(float)
    dests = [1, 2, 3, 4]
    w[dests, range(4)] = 0
    _, vb = visitation(mdp, reward - 0.5, w, dests, 40)
    for b, g in enumerate(dests):
        _, vs = visitation(mdp, reward - 0.5, w[:, b], [g], 40)
        np.testing.assert_allclose(vb.actions[:, b], vs.actions[:, 0], rtol=1e-12, atol=1e-14)


def figure2_mdp():
    """A=0 -> X=1 -> {Y1=2, Y2=3} -> B=6 and A -> D=4 -> E=5 -> B: three 3-step paths."""
    src = np.array([0, 0, 1, 1, 2, 3, 4, 5])
    dst = np.array([1, 4, 2, 3, 6, 6, 5, 6])
    return GraphMDP(7, src, dst), -np.ones(8)


def test_figure2_maxent_gives_each_path_one_third():
    mdp, reward = figure2_mdp()
    back = backward_pass(mdp, reward, [6], None)
    logp = action_log_probs(mdp, reward, back.log_beta)[:, 0]
    path_prob = {p: np.exp(logp[list(p)].sum()) for p in [(0, 2, 4), (0, 3, 5), (1, 6, 7)]}
    for pr in path_prob.values():
        assert pr == pytest.approx(1 / 3, abs=1e-12)


def test_local_action_probabilities_are_normalised_before_convergence():
    n = 20
    src, dst, reward = random_graph(n, 3, 8)
    mdp = GraphMDP(n, src, dst)
    back = backward_pass(mdp, reward, [3, 7], 4)  # far from converged after 4 steps
    p = np.exp(action_log_probs(mdp, reward, back.log_beta))  # [m, 2]
    sums = np.stack([np.bincount(src, p[:, b], minlength=n) for b in range(2)], axis=1)
    reach = np.isfinite(back.log_beta) & (np.bincount(src, minlength=n) > 0)[:, None]
    np.testing.assert_allclose(sums[reach], 1.0, atol=1e-12)
    assert reach.sum() > 5


def test_log_space_finite_where_linear_z_overflows():
    # complete graph with 3 self-similar choices and reward +40 per step: Z = (3 e^40)^N
    n, N = 4, 25
    src = np.repeat(np.arange(n), 3)
    dst = (src + np.tile([0, 1, 2], n)) % n
    reward = np.full(src.size, 40.0)
    with np.errstate(over="ignore"):
        z_lin = np.ones(n)
        for _ in range(N):  # plain linear-space recursion: overflows
            z_lin = np.bincount(src, np.exp(reward) * z_lin[dst], minlength=n)
    assert not np.isfinite(z_lin).all()
    exact = N * (40.0 + np.log(3.0))
    mdp = GraphMDP(n, src, dst)
    for space in ("log", "linear"):
        back = backward_pass(mdp, reward, None, N, space=space)
        np.testing.assert_allclose(back.log_beta[:, 0], exact, rtol=1e-13)


def test_auto_falls_back_to_log_when_linear_underflows():
    # a chain whose values span ~e^-2000 within one column: linear underflows, log does not
    n = 200
    src = np.concatenate([np.arange(n - 1), np.arange(1, n)])
    dst = np.concatenate([np.arange(1, n), np.arange(n - 1)])
    reward = np.full(src.size, -10.0)
    mdp = GraphMDP(n, src, dst)
    w = np.zeros((n, 1))
    w[0, 0] = 1.0
    back_lin = backward_pass(mdp, reward, [n - 1], 400, space="linear")
    assert not np.isfinite(back_lin.log_beta[0, 0])  # underflowed to zero
    back, vis = visitation(mdp, reward, w, [n - 1], 400, space="auto")
    back_log, vis_log = visitation(mdp, reward, w, [n - 1], 400, space="log")
    assert np.isfinite(back.log_beta[0, 0]) and back.log_beta[0, 0] < -1900
    np.testing.assert_allclose(vis.states, vis_log.states, atol=1e-10)
    assert vis.states[n - 1, 0] == pytest.approx(1.0)


def test_bad_inputs_raise_named_errors():
    mdp, reward = figure2_mdp()
    with pytest.raises(ValueError, match="reward must have shape"):
        backward_pass(mdp, reward[:3], [6], 5)
    with pytest.raises(ValueError, match="destination out of range"):
        backward_pass(mdp, reward, [99], 5)
    with pytest.raises(ValueError, match="needs destinations"):
        backward_pass(mdp, reward, None, None)
    with pytest.raises(ValueError, match="cannot reach"):
        visitation(mdp, reward, np.eye(7)[:, [4]], [0], 5, space="log")  # 4 never reaches 0
    with pytest.raises(ValueError, match="equal length"):
        GraphMDP(3, np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match="no action from state"):
        mdp.action_index(np.array([0, 2]))




def wide_range_mdp(scale):
    """Two routes 0 -> 3: through 1 (r = +700, then 1 -> 3: -50) and through 2 (+5, +595), all
    rewards times ``scale``; destination 3. Exact: log Z_0 = logaddexp(650 scale, 600 scale), the
    route through 1 carries the share 1 / (1 + e^(-50 scale)) of the mass: [m = 4] D_a."""
    src, dst = np.array([1, 0, 0, 2]), np.array([3, 1, 2, 3])
    reward = scale * np.array([-50.0, 700.0, 5.0, 595.0])
    w = np.zeros((4, 1))
    w[0, 0] = 1.0
    p, q = 1.0 / (1.0 + np.exp(-50.0 * scale)), 1.0 / (1.0 + np.exp(50.0 * scale))  # q = 1 - p
    return (GraphMDP(4, src, dst), reward, w, np.logaddexp(650.0 * scale, 600.0 * scale),
            np.array([p, p, q, q]))


@pytest.mark.parametrize("space", ["linear", "log"])
def test_mass_is_what_reached_the_destination_when_the_forward_pass_stops_early(space):
    """On the chain 0 -> 1 -> ... -> 5 the only path takes 5 steps: a forward pass cut at
    max_iter = 3 steps reports mass 0 at the destination (and warns), at 10 the full weight 2."""
    mdp = GraphMDP(6, np.arange(5), np.arange(1, 6))
    reward = np.zeros(5)
    back = backward_pass(mdp, reward, [5], None, space=space)
    w = np.zeros((6, 1))
    w[0, 0] = 2.0
    with pytest.warns(RuntimeWarning, match="still travelling"):
        cut = forward_pass(mdp, reward, back, w, max_iter=3)
    np.testing.assert_array_equal(cut.mass, [0.0])
    np.testing.assert_allclose(forward_pass(mdp, reward, back, w, max_iter=10).mass, [2.0])


@pytest.mark.parametrize("horizon", [None, 2, 5])
def test_auto_redoes_in_log_space_a_reward_range_whose_weights_underflow(horizon):
    """At scale 1 (rewards -50 ... +700, e^700 near the float64 limit) the linear engine's
    weight exp(r - max r) of the step 1 -> 3 is e^-750 = 0: linear space loses the likely route
    (log Z_0 = 600 instead of 650, every value finite). The engine's underflow flag must send
    space='auto' straight to log space (the whole pass, not a linear forward pass and a column
    redone after it: space 'log', not 'linear+log'). At scale 0.1 nothing underflows (a
    forbidden action, r = -inf, is no underflow either): the fast linear result is kept, and
    is exact."""
    mdp, reward, w, log_z, d_a = wide_range_mdp(1.0)
    lin = backward_pass(mdp, reward, [3], horizon, space="linear", watch=[0])
    assert lin.engine.underflow
    assert lin.log_beta[0, 0] == pytest.approx(600.0, abs=1e-9)  # linear space alone: wrong
    back, vis = visitation(mdp, reward, w, [3], horizon, space="auto")
    assert back.space == "log"
    assert back.log_beta[0, 0] == pytest.approx(log_z, abs=1e-9)
    np.testing.assert_allclose(vis.actions[:, 0], d_a, rtol=1e-9, atol=0)
    # no underflow: linear space is kept (a forbidden extra action 0 -> 3 changes nothing)
    mdp, reward, w, log_z, d_a = wide_range_mdp(0.1)
    mdp = GraphMDP(4, np.append(mdp.src, 0), np.append(mdp.dst, 3))
    back, vis = visitation(mdp, np.append(reward, -np.inf), w, [3], horizon, space="auto")
    assert back.space == "linear"
    assert back.log_beta[0, 0] == pytest.approx(log_z, abs=1e-12)
    np.testing.assert_allclose(vis.actions[:, 0], [*d_a, 0.0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("horizon", [10, 800])
def test_linear_space_matches_log_space_with_positive_rewards_over_long_horizons(horizon):
    """Reward +1 per step on the chain 0 -> 1 -> 2 (destination 2): the linear engine's columns
    that are all zero (every path already absorbed; a destination nothing leads to) kept adding
    the +1 shift to their scale, ~745 steps later it swamped the visitation accumulator (counts
    and mass 0) and turned a lone destination's log beta from 0 into -inf. Linear and log space
    must agree at any horizon: one visit to each state, mass 1; beta(0 -> 0) = 1."""
    mdp = GraphMDP(3, np.array([0, 1]), np.array([1, 2]))
    reward, origin = np.array([1.0, 1.0]), np.array([1.0, 0.0, 0.0])
    for space in ("linear", "log"):
        _, vis = visitation(mdp, reward, origin, [2], horizon, space=space)
        np.testing.assert_allclose(vis.states[:, 0], [1.0, 1.0, 1.0], rtol=1e-12)
        assert vis.mass[0] == pytest.approx(1.0, rel=1e-12)
    lone = GraphMDP(2, np.array([0]), np.array([1]))  # nothing leads to state 0
    for space in ("linear", "log"):
        assert backward_pass(lone, np.array([1.0]), [0], horizon, space=space).log_beta[0, 0] == 0.0


@pytest.mark.parametrize("space", ["linear", "log"])
def test_converged_pass_with_an_unreachable_watched_state_waits_out_parity(space):
    """0 <-> 1 cycle and 0 -> goal 2: paths from 0 have odd lengths only, so log Z_0 stands still
    every other step. Watching also state 3, which cannot reach the goal, must not let the pass
    stop on such a step (it stopped at iteration 32 with log Z_0 = 0.666, 0.042 short)."""
    mdp = GraphMDP(4, np.array([0, 1, 0]), np.array([1, 0, 2]))
    reward = np.array([-0.1, -0.1, -1.0])
    exact = -1.0 - np.log1p(-np.exp(-0.2))  # e^-1 sum_k e^-0.2k
    back = backward_pass(mdp, reward, [2], None, space=space, watch=np.array([0, 3]))
    assert back.converged
    assert back.log_beta[0, 0] == pytest.approx(exact, abs=1e-8)
    assert back.log_beta[3, 0] == -np.inf


@pytest.mark.parametrize("horizon", [None, 150])
def test_auto_redoes_in_log_space_an_origin_whose_linear_z_is_subnormal(horizon):
    """Two-way chain of 101 states at r = -7.44, destination 100: from origin 0, Z = e^-744 is a
    subnormal double in the linear engine (digits lost: log Z -743.75) yet not 0, and the
    absorbed mass still came out as the weight, so space='auto' kept visitation off by 22%.
    Column 1 (origin 90, log Z = -74.4) is fine either way."""
    n = 101
    src = np.concatenate([np.arange(n - 1), np.arange(1, n)])
    dst = np.concatenate([np.arange(1, n), np.arange(n - 1)])
    mdp, reward = GraphMDP(n, src, dst), np.full(src.size, -7.44)
    w = np.zeros((n, 2))
    w[0, 0], w[90, 1] = 1.0, 2.0
    back, vis = visitation(mdp, reward, w, [n - 1, n - 1], horizon, space="auto")
    ref_back, ref = visitation(mdp, reward, w, [n - 1, n - 1], horizon, space="log")
    assert back.log_beta[0, 0] == pytest.approx(ref_back.log_beta[0, 0], abs=1e-9)
    np.testing.assert_allclose(vis.states, ref.states, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(vis.actions, ref.actions, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ref.states[:n, 0], 1.0, atol=1e-6)  # each state once, nearly


def test_passes_that_run_out_of_iterations_say_so():
    """A zero-cost cycle (0 <-> 1, exit 0 -> 2 = goal) has a partition function without bound:
    log Z_t(0) keeps growing, so max_iter ends the backward pass unconverged, and the forward
    pass's mass never drains. Both used to return silently (a quiet max_iter-step horizon); a
    settled pass warns nothing."""
    import warnings

    mdp = GraphMDP(3, np.array([0, 1, 0]), np.array([1, 0, 2]))
    w = np.zeros((3, 1))
    w[0, 0] = 1.0
    with pytest.warns(RuntimeWarning, match="backward pass: log Z has not settled after "
                                            "max_iter=200"):
        back = backward_pass(mdp, np.zeros(3), [2], max_iter=200)
    assert not back.converged
    with pytest.warns(RuntimeWarning, match="forward pass: visitation mass still travelling"):
        forward_pass(mdp, np.zeros(3), back, w, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cost on the cycle: both settle
        back = backward_pass(mdp, np.array([-1.0, -1.0, 0.0]), [2], max_iter=200)
        forward_pass(mdp, np.array([-1.0, -1.0, 0.0]), back, w, max_iter=200)
    assert back.converged
