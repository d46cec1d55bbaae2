"""Math of soft Q-learning: schedules, importance-sampled soft value (eq. 10), RBF kernel and
bandwidth (App. D.1), SVGD direction (App. C.1), tanh-squash score, network input gradients."""

from __future__ import annotations

import math

import pytest
import torch

from agents.schedules import LinearSchedule, LogLinearSchedule
from agents.sql.losses import q_loss, soft_value_uniform, svgd_surrogate_loss, td_target
from agents.sql.networks import SamplingNetwork, SoftQNetwork
from agents.sql.svgd import (
    median_bandwidth,
    rbf_kernel,
    rbf_kernel_grad_x,
    squared_distances,
    squashed_score,
    svgd_direction,
)

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- schedules

def test_log_linear_schedule_hand_values():
    s = LogLinearSchedule(1.0, 1e-3, 10)
    assert s(0) == pytest.approx(1.0)
    assert s(5) == pytest.approx(math.sqrt(1e-3))  # halfway in log space
    assert s(10) == 1e-3 and s(25) == 1e-3
    assert LogLinearSchedule(10.0, 0.1, 4)(1) == pytest.approx(10.0 ** 0.5)
    with pytest.raises(ValueError, match="positive"):
        LogLinearSchedule(0.0, 1.0, 10)


def test_linear_schedule_hand_values():
    s = LinearSchedule(32, 1, 10)
    assert [s(t) for t in (0, 5, 10, 99)] == [32.0, 16.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="steps"):
        LinearSchedule(1, 0, 0)


# ----------------------------------------------------------------------------- soft value (eq. 10)

def _uniform_q_samples(q_fn, reps: int, k_v: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(reps, k_v, generator=g, dtype=torch.float64) * 2 - 1  # [R, K_V] on [-1, 1]
    return q_fn(a)


def _exact_value_quadratic(alpha: float, k: float, m: float) -> float:
    """alpha log int_{-1}^{1} exp(-k (a - m)^2 / alpha) da via erf."""
    c = math.sqrt(k / alpha)
    integral = math.sqrt(math.pi) / (2 * c) * (math.erf(c * (1 - m)) - math.erf(c * (-1 - m)))
    return alpha * math.log(integral)


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_soft_value_converges_to_exact_integral(alpha):
    # Linear Q(a) = c a: int exp(c a / alpha) da = 2 alpha sinh(c / alpha) / c.
    c = 1.5
    exact_lin = alpha * math.log(2 * alpha * math.sinh(c / alpha) / c)
    k, m = 2.0, 0.3  # quadratic Q(a) = -k (a - m)^2
    exact_quad = _exact_value_quadratic(alpha, k, m)
    for q_fn, exact in ((lambda a: c * a, exact_lin), (lambda a: -k * (a - m) ** 2, exact_quad)):
        rmse = []
        for k_v in (10, 100, 10_000):
            v = soft_value_uniform(_uniform_q_samples(q_fn, 200, k_v, seed=k_v), alpha, act_dim=1)
            rmse.append(((v - exact) ** 2).mean().sqrt().item())
        assert rmse[0] > rmse[1] > rmse[2], rmse
        assert rmse[2] < 0.01 * max(1.0, abs(exact)), (rmse, exact)


def test_soft_value_tends_to_max_as_alpha_vanishes():
    k, m = 2.0, 0.3  # max_a Q = 0 at a = m
    gaps = []
    for alpha in (1.0, 0.1, 0.01, 1e-3):
        v = soft_value_uniform(_uniform_q_samples(lambda a: -k * (a - m) ** 2, 4, 100_000, 0),
                               alpha, act_dim=1)
        assert v.mean().item() == pytest.approx(_exact_value_quadratic(alpha, k, m), abs=2e-3)
        gaps.append(abs(v.mean().item() - 0.0))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 5e-3, gaps


def test_soft_value_of_constant_q_and_td_target_by_hand():
    # Q_target = c everywhere: V = alpha (c/alpha + log K - log K + d log 2) = c + alpha d log 2.
    c, alpha, d = 1.7, 0.4, 3
    v = soft_value_uniform(torch.full((5, 50), c), alpha, act_dim=d)
    torch.testing.assert_close(v, torch.full((5,), c + alpha * d * math.log(2.0)))
    r, disc = torch.tensor([1.0, -2.0]), torch.tensor([0.99, 0.0])
    target = td_target(r, disc, torch.tensor([10.0, 10.0]))
    torch.testing.assert_close(target, torch.tensor([1.0 + 9.9, -2.0]))  # done -> reward only
    loss = q_loss(torch.tensor([11.9, -1.0]), target)
    assert loss.item() == pytest.approx(0.5 * (1.0 ** 2 + 1.0 ** 2) / 2)


def test_loss_gradients_by_hand_and_none_into_targets():
    """J_Q (eq. 11) moves Q by (Q - Q_hat)/B and never Q_hat; the surrogate (eq. 14) moves u by
    -phi/(BK) and never phi: both stop-gradients hold in the plain functions themselves."""
    q = torch.tensor([11.9, -1.0], requires_grad=True)
    target = torch.tensor([10.9, -2.0], requires_grad=True)
    q_loss(q, target).backward()
    torch.testing.assert_close(q.grad, torch.tensor([0.5, 0.5]))
    assert target.grad is None
    u = torch.randn(2, 3, 4, requires_grad=True)  # [B, K, d]
    phi = torch.randn(2, 3, 4, requires_grad=True)
    svgd_surrogate_loss(phi, u).backward()
    torch.testing.assert_close(u.grad, -phi.detach() / 6)
    assert phi.grad is None


# ----------------------------------------------------------------------------- kernel (App. D.1)

def test_bandwidth_follows_median_rule_by_hand():
    # 1-D particles 0, 1, 3: squared distances 0,0,0,1,1,4,4,9,9 -> median 1, h = 1 / (2 log 4).
    x = torch.tensor([[[0.0], [1.0], [3.0]]])
    kappa, h = rbf_kernel(x, x)
    h_hand = 1.0 / (2 * math.log(4))
    torch.testing.assert_close(h, torch.tensor([h_hand]))
    torch.testing.assert_close(kappa[0, 0, 2], torch.tensor(math.exp(-9 / h_hand)))
    torch.testing.assert_close(torch.diagonal(kappa[0]), torch.ones(3))
    _, h_sym = rbf_kernel(x, x, same_set=True)  # the pair-only order statistic, same value
    torch.testing.assert_close(h_sym, torch.tensor([h_hand]))
    # Split sets, M = 2 scoring and K = 2 moving particles in 2-D.
    ys = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    xs = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    torch.testing.assert_close(squared_distances(xs, ys), torch.tensor([[[1.0, 4.0], [1.0, 2.0]]]))
    xs = torch.tensor([[[0.0, 0.0], [3.0, 2.0]]])
    sq = squared_distances(xs, ys)  # [[1, 4], [8, 9]] -> lower median of {1, 4, 8, 9} is 4
    torch.testing.assert_close(sq, torch.tensor([[[1.0, 4.0], [8.0, 9.0]]]))
    torch.testing.assert_close(median_bandwidth(sq, 2), torch.tensor([4.0 / (2 * math.log(3))]))


def test_reference_bandwidth_rule_by_hand():
    # Same particles 0, 1, 3 (median 1): the released code's rule h = med / log(M) = 1 / log 3.
    x = torch.tensor([[[0.0], [1.0], [3.0]]])
    kappa, h = rbf_kernel(x, x, same_set=True, rule="reference")
    torch.testing.assert_close(h, torch.tensor([1.0 / math.log(3)]))
    torch.testing.assert_close(kappa[0, 0, 1], torch.tensor(math.exp(-math.log(3))))
    sq = torch.tensor([[[1.0, 4.0], [8.0, 9.0]]])  # lower median 4, M = 2
    torch.testing.assert_close(median_bandwidth(sq, 2, rule="reference"),
                               torch.tensor([4.0 / math.log(2)]))


def test_bandwidth_rule_errors_name_the_problem():
    sq = torch.ones(1, 2, 2)
    with pytest.raises(ValueError, match="unknown kernel bandwidth rule 'median'"):
        median_bandwidth(sq, 2, rule="median")
    with pytest.raises(ValueError, match="needs M >= 2"):
        median_bandwidth(torch.ones(1, 1, 3), 1, rule="reference")


def test_squared_distances_match_brute_force_and_are_never_negative():
    """The |x|^2 + |y|^2 - 2 x.y expansion equals the explicit difference to float round-off,
    and its round-off never makes a distance (the same-set diagonal above all) negative."""
    g = torch.Generator().manual_seed(0)
    x = 3.0 + 0.5 * torch.randn(8, 16, 6, generator=g)  # [B, M, d], off the origin
    y = 3.0 + 0.5 * torch.randn(8, 5, 6, generator=g)  # [B, K, d]
    for a, b in ((x, y), (x, x)):
        sq = squared_distances(a, b)  # [B, M, K]
        brute = ((a[:, :, None] - b[:, None]) ** 2).sum(-1)
        torch.testing.assert_close(sq, brute, atol=1e-5, rtol=1e-5)
        assert (sq >= 0).all()


@pytest.mark.parametrize("m", [2, 3, 4, 7, 32])
def test_same_set_median_equals_full_matrix_median(m):
    x = torch.randn(5, m, 3, generator=torch.Generator().manual_seed(m))
    sq = squared_distances(x, x)
    torch.testing.assert_close(median_bandwidth(sq, m, same_set=True), median_bandwidth(sq, m))


def test_bandwidth_carries_no_gradient():
    x = torch.randn(2, 5, 3, requires_grad=True)
    _, h = rbf_kernel(x, x.detach())
    assert not h.requires_grad


def test_kernel_gradient_matches_autograd():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 7, 4, generator=g, dtype=torch.float64)
    kappa, h = rbf_kernel(x, y)
    analytic = rbf_kernel_grad_x(x.detach(), y, kappa.detach(), h)  # [B, M, K, d]
    for k in range(y.shape[1]):  # d kappa(x_i, y_k) / d x_i for every k
        (auto,) = torch.autograd.grad(kappa[:, :, k].sum(), x, retain_graph=True)
        torch.testing.assert_close(analytic[:, :, k], auto)


def test_svgd_direction_equals_explicit_double_sum():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    score = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    kappa, h = rbf_kernel(x, y)
    fast = svgd_direction(x, y, score, kappa, h)
    grad_k = rbf_kernel_grad_x(x, y, kappa, h)
    brute = torch.zeros_like(fast)
    for b in range(2):
        for k in range(4):
            for i in range(6):
                brute[b, k] += kappa[b, i, k] * score[b, i] + grad_k[b, i, k]
    torch.testing.assert_close(fast, brute / 6)


def test_same_set_direction_leaves_each_particles_own_term_out():
    """K = M, one set of particles scoring and moving: phi(y_k) = 1/(M - 1) sum_{i != k} [...],
    the App. C.1 double sum without i = k, by explicit loops (the kernel and h as for the set)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    score = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    kappa, h = rbf_kernel(x, x, same_set=True)
    fast = svgd_direction(x, x, score, kappa, h, same_set=True)
    grad_k = rbf_kernel_grad_x(x, x, kappa, h)
    brute = torch.zeros_like(fast)
    for b in range(2):
        for k in range(5):
            for i in range(5):
                if i != k:
                    brute[b, k] += kappa[b, i, k] * score[b, i] + grad_k[b, i, k]
    torch.testing.assert_close(fast, brute / 4)
    with pytest.raises(ValueError, match="same_set=True"):
        svgd_direction(x[:, :1], x[:, :1], score[:, :1], kappa[:, :1, :1], h, same_set=True)


def test_same_set_direction_does_not_pull_a_sampler_that_is_already_at_the_target():
    """Amortized SVGD draws fresh i.i.d. particles each update. At the target N(0, s^2 I) the
    surrogate's gradient in the sampler's scale c (u = c xi, c = s) is mean_k phi(y_k) . xi_k; the
    other particles' terms average to 0 (Stein's identity), and a particle's own term
    kappa_kk grad log p(y_k) would add E[-y . xi / s^2] / M = -d / (M s): a net contraction."""
    g = torch.Generator().manual_seed(0)
    s, d, m = 0.3, 8, 16
    xi = torch.randn(4000, m, d, generator=g, dtype=torch.float64)
    y = s * xi
    kappa, h = rbf_kernel(y, y, same_set=True)
    self_pull = d / (m * s)  # 1.67
    for same_set, want in ((False, -self_pull), (True, 0.0)):  # with and without the own term
        phi = svgd_direction(y, y, -y / s ** 2, kappa, h, same_set=same_set)
        grad_c = (phi * xi).sum(-1).mean().item()
        assert grad_c == pytest.approx(want, abs=0.05 * self_pull), (same_set, grad_c)


def test_amortized_svgd_on_one_set_of_particles_reaches_the_target_spread():
    """A linear sampler u = W xi + b trained by the amortized SVGD surrogate (eq. 14), 16
    particles scoring and moving, exact score of N(0, 0.3^2 I) in 8-D: W W^T must reach
    0.3^2 I (with each particle's own term kept it stalled at singular values 0.08-0.09)."""
    g = torch.Generator().manual_seed(0)
    d, p, b, s = 8, 16, 16, 0.3
    net = torch.nn.Linear(d, d).double()
    with torch.no_grad():
        net.weight.copy_(torch.eye(d))
        net.bias.zero_()
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    for step in range(400):
        if step == 200:
            opt.param_groups[0]["lr"] = 2e-3
        u = net(torch.randn(b, p, d, generator=g, dtype=torch.float64))  # [B, P, d]
        x = u.detach()
        kappa, h = rbf_kernel(x, x, same_set=True)
        phi = svgd_direction(x, x, -x / s ** 2, kappa, h, same_set=True)
        opt.zero_grad()
        svgd_surrogate_loss(phi, u).backward()
        opt.step()
    sv = torch.linalg.svdvals(net.weight.detach())
    assert sv.min() > 0.26 and sv.max() < 0.33, sv
    assert net.bias.detach().abs().max() < 0.05


def test_plain_svgd_covers_both_modes_of_a_bimodal_target():
    means = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    sigma = 0.5

    def log_p(z):  # equal mixture of N(+-2 e_1, 0.5^2 I)
        return torch.logsumexp(-((z[:, None] - means) ** 2).sum(-1) / (2 * sigma ** 2), dim=1)

    torch.manual_seed(0)
    z = 0.1 * torch.randn(100, 2)  # a tight cluster at the saddle between the modes
    for _ in range(600):
        zr = z.clone().requires_grad_(True)
        (score,) = torch.autograd.grad(log_p(zr).sum(), zr)
        kappa, h = rbf_kernel(z[None], z[None])
        z = z + 0.05 * svgd_direction(z[None], z[None], score[None], kappa, h)[0]
    right = z[:, 0] > 0
    assert 0.3 <= right.float().mean().item() <= 0.7
    for mode, sel in ((means[1], right), (means[0], ~right)):
        torch.testing.assert_close(z[sel].mean(0), mode, atol=0.15, rtol=0)
        # the repulsive term keeps the spread of the target (score alone collapses onto the mean)
        assert ((z[sel].std(0) > 0.38) & (z[sel].std(0) < 0.62)).all(), z[sel].std(0)


# ----------------------------------------------------------------------------- squash, networks

def test_squashed_score_matches_autograd_through_tanh():
    torch.manual_seed(0)
    qnet = SoftQNetwork(5, 3, [16, 16]).double()
    s = torch.randn(4, 5, dtype=torch.float64)
    u = (2.0 * torch.randn(4, 7, 3, dtype=torch.float64)).requires_grad_(True)
    alpha = 0.3
    a = torch.tanh(u)
    log_p = qnet(s, a) / alpha + torch.log(1 - a ** 2).sum(-1)  # log density over u, eq. (6)
    (auto,) = torch.autograd.grad(log_p.sum(), u)
    a_d = a.detach()
    _, dq_da = qnet.value_and_action_grad(s, a_d)
    torch.testing.assert_close(squashed_score(dq_da, a_d, alpha), auto)


@pytest.mark.parametrize("c,mean,std", [
    (0.0, 0.0, 1 / math.sqrt(3)),  # Q = 0: uniform on [-1, 1]
    # Q = c a, alpha = 1: density e^{c a} on [-1, 1], mean coth c - 1/c, var 1/c^2 - 1/sinh^2 c
    (2.0, 1 / math.tanh(2.0) - 0.5, math.sqrt(0.25 - 1 / math.sinh(2.0) ** 2))])
def test_svgd_on_pre_squash_particles_samples_the_boltzmann_policy_on_the_box(c, mean, std):
    """SVGD moving u with the squashed score: a = tanh(u) must follow exp(Q(a)/alpha) on (-1, 1)
    (without the log(1 - a^2) Jacobian term the particles pile up at the box's edges: std 0.90
    for Q = 0, mean 0.89 for Q = 2a)."""
    g = torch.Generator().manual_seed(0)
    u = 0.3 * torch.randn(1, 64, 1, generator=g, dtype=torch.float64)  # [1, M, d = 1]
    for _ in range(600):
        a = torch.tanh(u)
        score = squashed_score(torch.full_like(a, c), a, 1.0)  # dQ/da = c
        kappa, h = rbf_kernel(u, u, same_set=True)
        u = u + 0.1 * svgd_direction(u, u, score, kappa, h)  # plain SVGD, persistent particles
    a = torch.tanh(u).flatten()
    assert a.mean().item() == pytest.approx(mean, abs=0.03)
    assert a.std().item() == pytest.approx(std, abs=0.03)


@pytest.mark.parametrize("hidden", [[16], [16, 12], [8, 16, 12]])
def test_q_action_gradient_matches_autograd(hidden):
    torch.manual_seed(1)
    qnet = SoftQNetwork(4, 2, hidden).double()
    s = torch.randn(3, 4, dtype=torch.float64)
    a = torch.rand(3, 6, 2, dtype=torch.float64).mul(2).sub(1).requires_grad_(True)
    q_auto = qnet(s, a)
    (g_auto,) = torch.autograd.grad(q_auto.sum(), a)
    q, g = qnet.value_and_action_grad(s, a.detach())
    torch.testing.assert_close(q, q_auto.detach())
    torch.testing.assert_close(g, g_auto)


def test_split_first_layer_equals_one_linear_on_the_concatenation():
    torch.manual_seed(2)
    net = SamplingNetwork(5, 3, [16, 16])
    s, xi = torch.randn(4, 5), torch.randn(4, 7, 3)
    w1 = torch.cat([net.w_state, net.w_x.T], dim=1)  # [H, obs + act]
    plain = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), net.hidden[0],
                                torch.nn.ReLU(), net.out)
    with torch.no_grad():
        plain[0].weight.copy_(w1)
        plain[0].bias.copy_(net.b_in)
    cat = torch.cat([s[:, None].expand(4, 7, 5), xi], dim=-1)
    torch.testing.assert_close(net.pre_squash(s, xi), plain(cat))
    torch.testing.assert_close(net(s, xi), torch.tanh(plain(cat)))
    with pytest.raises(ValueError, match="expected state"):
        net(torch.randn(4, 6), xi)


def test_bandwidth_counts_the_scoring_particles_and_never_reaches_zero():
    """h = med / (2 log(M + 1)) with M the scoring particles x (not the K moving y); coinciding
    particles (median 0) keep a floor, so the kernel stays 1 rather than exp(-0 / 0)."""
    x = torch.tensor([[[0.0], [1.0], [3.0]]])  # M = 3
    y = torch.tensor([[[0.0], [2.0]]])  # K = 2: squared distances 0, 4, 1, 1, 9, 1 -> median 1
    _, h = rbf_kernel(x, y)
    torch.testing.assert_close(h, torch.tensor([1.0 / (2 * math.log(3 + 1))]))
    kappa, h0 = rbf_kernel(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2))
    assert (h0 > 0).all() and torch.equal(kappa, torch.ones(1, 4, 4))
