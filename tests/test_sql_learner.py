"""SQL learner and policy: one update against a brute-force reference, target copies, TD target by
hand, checkpoint round trip, alpha annealing, acting (OU noise, fixed xi), a bimodal bandit."""

from __future__ import annotations

import copy
import io
import math
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.registry import get_algorithm
from agents.sql import SQLConfig, SQLLearner, SQLPolicy
from agents.sql.learner import METRIC_NAMES

torch.set_num_threads(1)
OBS, ACT = 5, 3
OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
ACT_SPACE = gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def small_cfg(**kw) -> SQLConfig:
    base = dict(hidden_sizes=[32, 32], kernel_particles=6, value_particles=10, alpha=0.5,
                target_update_interval=3)
    base.update(kw)
    return SQLConfig(**base)


def make_batch(seed: int, b: int = 8, obs: int = OBS, act: int = ACT) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"obs": rng.standard_normal((b, obs)).astype(np.float32),
            "action": rng.uniform(-1, 1, (b, act)).astype(np.float32),
            "reward": rng.standard_normal(b).astype(np.float32),
            "next_obs": rng.standard_normal((b, obs)).astype(np.float32),
            "discount": np.where(rng.uniform(size=b) < 0.25, 0.0, 0.99).astype(np.float32)}


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# ----------------------------------------------------------------------------- reference

def plain_mlp(net, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The network as one MLP on concat(s, x) (float64), no split and no broadcasting tricks."""
    w1 = torch.cat([net.w_state, net.w_x.T], dim=1).double()
    s_full = s[:, None, :].expand(*x.shape[:-1], s.shape[-1]) if x.dim() == 3 else s
    h = torch.relu(torch.cat([s_full, x], dim=-1) @ w1.T + net.b_in.double())
    for layer in net.hidden:
        h = torch.relu(h @ layer.weight.double().T + layer.bias.double())
    return h @ net.out.weight.double().T + net.out.bias.double()


def reference_losses(q_net, q_target, sampler, batch, xi, value_noise, alpha, n_score, n_move,
                     rule="paper", value_target="importance"):
    """Soft Q loss (eqs. 10-11) and SVGD surrogate (eqs. 13-14, App. C.1; one set of particles
    scoring and moving leaves each particle's own term out, svgd.py), written the long way:
    the eq. 10 expectation as a mean of exp (or 'policy_max': a loop taking the largest target Q
    over the sampler's actions), every derivative by autograd (tanh squash included), kernel sums
    as Python loops over states and particles."""
    obs, action, reward, next_obs, discount = (torch.as_tensor(batch[k]).double() for k in
                                               ("obs", "action", "reward", "next_obs", "discount"))
    xi, value_noise = xi.double(), value_noise.double()
    b, p, d = xi.shape
    if value_target == "policy_max":
        with torch.no_grad():  # one state and one sampler draw at a time
            v = torch.tensor([max(float(plain_mlp(q_target, next_obs[i:i + 1], torch.tanh(
                plain_mlp(sampler, next_obs[i:i + 1], value_noise[i, k:k + 1]))))
                for k in range(value_noise.shape[1])) for i in range(b)], dtype=torch.float64)
    else:
        q_next = plain_mlp(q_target, next_obs, value_noise)[..., 0].detach()  # [B, K_V]
        v = alpha * torch.log(torch.exp(q_next / alpha).mean(-1) / 2.0 ** -d)  # E_q[exp(Q/a)/q]
    target = reward + discount * v
    q = plain_mlp(q_net, obs, action)[..., 0]
    loss_q = 0.5 * ((q - target) ** 2).mean()

    u = plain_mlp(sampler, obs, xi)  # [B, P, d]
    x = u[:, :n_score].detach().requires_grad_(True)
    a = torch.tanh(x)
    log_p = plain_mlp(q_net, obs, a)[..., 0] / alpha + torch.log(1 - a ** 2).sum(-1)
    (score,) = torch.autograd.grad(log_p.sum(), x)
    y = u[:, p - n_move:].detach()
    xd = x.detach()
    phi = torch.zeros_like(y)
    hs = []
    for i in range(b):
        sq = [float(((xd[i, m] - y[i, k]) ** 2).sum())
              for m in range(n_score) for k in range(n_move)]
        divisor = 2 * math.log(n_score + 1) if rule == "paper" else math.log(n_score)
        h = sorted(sq)[(len(sq) - 1) // 2] / divisor  # lower median rule
        hs.append(h)
        for k in range(n_move):
            for m in range(n_score):
                if n_score == n_move == p and m == k:  # one set: a particle's own term is out
                    continue
                xm = xd[i, m].clone().requires_grad_(True)
                kap = torch.exp(-((xm - y[i, k]) ** 2).sum() / h)
                (grad_kap,) = torch.autograd.grad(kap, xm)
                phi[i, k] += kap.detach() * score[i, m] + grad_kap
    phi /= n_score - 1 if n_score == n_move == p else n_score
    loss_pi = -(phi * u[:, p - n_move:]).sum() / (b * n_move)
    return loss_q, loss_pi, q, v, hs


@pytest.mark.parametrize("ratio,rule,value_target", [
    (None, "paper", "importance"), (0.5, "paper", "importance"),
    (None, "reference", "importance"), (0.5, "reference", "importance"),
    (None, "paper", "policy_max")])
def test_fast_update_equals_plain_reference(ratio, rule, value_target):
    cfg = small_cfg(kernel_update_ratio=ratio, alpha=0.7, kernel_bandwidth=rule,
                    value_target=value_target)
    learner = SQLLearner(cfg, OBS_SPACE, ACT_SPACE, seed=3)
    with torch.no_grad():  # target != online Q: pins which network each term reads
        for p in learner.q_target.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    batch = make_batch(0)
    before = [copy.deepcopy(m) for m in (learner.q, learner.q_target, learner.sampler)]
    rng_state = learner.gen.get_state()
    xi, value_noise = learner.draw_noise(8)
    learner.gen.set_state(rng_state)  # update() draws the same numbers
    metrics = learner.update(batch)

    q_net, q_target, sampler = before
    n_score, n_move = cfg.particle_split()
    loss_q, loss_pi, q, v, hs = reference_losses(q_net, q_target, sampler, batch, xi, value_noise,
                                                 0.7, n_score, n_move, rule, value_target)
    assert metrics["loss/q"] == pytest.approx(loss_q.item(), rel=1e-5)
    assert metrics["loss/policy"] == pytest.approx(loss_pi.item(), rel=1e-4, abs=1e-7)
    assert metrics["q/mean"] == pytest.approx(q.mean().item(), rel=1e-5, abs=1e-7)
    assert metrics["v/mean"] == pytest.approx(v.mean().item(), rel=1e-5)
    assert metrics["svgd/bandwidth"] == pytest.approx(float(np.mean(hs)), rel=1e-5)

    ref_q_grads = torch.autograd.grad(loss_q, list(q_net.parameters()))
    ref_pi_grads = torch.autograd.grad(loss_pi, list(sampler.parameters()))
    for p, g in zip(learner.q.parameters(), ref_q_grads, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
    for p, g in zip(learner.sampler.parameters(), ref_pi_grads, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- update contract

def test_update_moves_networks_and_copies_target_on_interval():
    learner = SQLLearner(small_cfg(target_update_interval=3), OBS_SPACE, ACT_SPACE, seed=0)
    q0, s0, t0 = params(learner.q), params(learner.sampler), params(learner.q_target)
    for a, b in zip(q0, t0, strict=True):
        assert torch.equal(a, b)  # target starts as a copy of Q
    metrics = learner.update(make_batch(1))
    assert set(metrics) == set(METRIC_NAMES) | {"alpha"}
    assert all(math.isfinite(v) for v in metrics.values())
    assert all(not torch.equal(a, b) for a, b in zip(q0, params(learner.q), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(s0, params(learner.sampler), strict=True))
    learner.update(make_batch(2))
    assert learner.num_updates == 2
    for a, b in zip(t0, params(learner.q_target), strict=True):
        assert torch.equal(a, b)  # untouched before the interval
    learner.update(make_batch(3))
    for a, b in zip(params(learner.q), params(learner.q_target), strict=True):
        assert torch.equal(a, b)  # hard copy at update 3
    assert not torch.equal(params(learner.q_target)[0], t0[0])  # Q -> target, not back
    learner.update(make_batch(4))
    assert not torch.equal(params(learner.q)[0], params(learner.q_target)[0])


def test_value_noise_is_eq10s_uniform_proposal_over_the_action_box():
    learner = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE, seed=0)
    _, vn = learner.draw_noise(256)  # [B, K_V, d], a' ~ U[-1, 1]^d
    assert vn.min() >= -1.0 and vn.max() <= 1.0
    assert vn.min() < -0.99 and vn.max() > 0.99 and abs(vn.mean().item()) < 0.02


def test_td_target_by_hand_with_constant_networks():
    # Q_target == c -> V(s') = c + alpha d log 2; Q == q0 -> loss = mean 0.5 (q0 - r - disc V)^2.
    alpha, c, q0 = 0.3, 2.0, -1.0
    learner = SQLLearner(small_cfg(alpha=alpha), OBS_SPACE, ACT_SPACE)
    with torch.no_grad():
        for net, value in ((learner.q_target, c), (learner.q, q0)):
            net.out.weight.zero_()
            net.out.bias.fill_(value)
    batch = make_batch(5)
    m = learner.update(batch)
    v = c + alpha * ACT * math.log(2.0)
    target = batch["reward"].astype(np.float64) + batch["discount"] * v
    assert m["v/mean"] == pytest.approx(v, rel=1e-6)
    assert m["q/mean"] == pytest.approx(q0, rel=1e-6)
    assert m["loss/q"] == pytest.approx(float(np.mean(0.5 * (q0 - target) ** 2)), rel=1e-5)


def test_soft_value_uses_the_annealed_alpha():
    """App. D.1 fine-tuning anneals alpha 1 -> 0.01 over 2 updates here: the third update's
    V(s') = c + 0.01 d log 2 (the score and the value must use the same alpha)."""
    c = 2.0
    learner = SQLLearner(small_cfg(alpha=1.0, alpha_final=0.01, alpha_anneal_updates=2,
                                   target_update_interval=1000), OBS_SPACE, ACT_SPACE)
    with torch.no_grad():
        learner.q_target.out.weight.zero_()
        learner.q_target.out.bias.fill_(c)
    for i in range(2):
        learner.update(make_batch(i))
    m = learner.update(make_batch(2))
    assert m["alpha"] == pytest.approx(0.01)
    assert m["v/mean"] == pytest.approx(c + 0.01 * ACT * math.log(2.0), rel=1e-6)


def test_policy_max_target_by_hand():
    """'policy_max' (the co-author's hard target): a constant sampler a = tanh(c) makes every
    draw the same action, so V(s') = Q_target(s', tanh(c)) whatever K_V and alpha; a target Q
    linear in a, w . a, with a sampler that returns its input, tanh(xi'), gives V(s') =
    max_k w . tanh(xi'_k) over the drawn noise, with no alpha d log 2 term."""
    c = torch.tensor([0.3, -1.2, 0.8])
    for alpha in (0.05, 2.0):
        learner = SQLLearner(small_cfg(alpha=alpha, value_target="policy_max"), OBS_SPACE,
                             ACT_SPACE)
        with torch.no_grad():
            learner.sampler.out.weight.zero_()
            learner.sampler.out.bias.copy_(c)
        batch = make_batch(6)
        next_obs = torch.as_tensor(batch["next_obs"])
        want = learner.q_target(next_obs, torch.tanh(c).expand(len(next_obs), ACT))  # [B]
        m = learner.update(batch)
        assert m["v/mean"] == pytest.approx(want.mean().item(), rel=1e-5)

    learner = SQLLearner(small_cfg(value_target="policy_max", hidden_sizes=[ACT]), OBS_SPACE,
                         ACT_SPACE)
    w = torch.tensor([1.0, -2.0, 0.5])
    with torch.no_grad():
        # sampler u = relu(xi + 10) - 10 = xi (one hidden layer of width d; |xi| < 10)
        sam = learner.sampler
        for p in sam.parameters():
            p.zero_()
        sam.w_x.copy_(torch.eye(ACT))
        sam.b_in.fill_(10.0)
        sam.out.weight.copy_(torch.eye(ACT))
        sam.out.bias.fill_(-10.0)
        qt = learner.q_target  # Q_target(s, a) = w . (relu(a + 10) - 10) = w . a
        for p in qt.parameters():
            p.zero_()
        qt.w_x.copy_(torch.eye(ACT))
        qt.b_in.fill_(10.0)
        qt.out.weight.copy_(w[None])
        qt.out.bias.fill_(-10.0 * float(w.sum()))
    batch = make_batch(7)
    state = learner.gen.get_state()
    _, noise = learner.draw_noise(len(batch["obs"]))  # [B, K_V, d]
    learner.gen.set_state(state)
    m = learner.update(batch)
    want = (torch.tanh(noise) @ w).amax(dim=1)  # [B]
    assert m["v/mean"] == pytest.approx(want.mean().item(), rel=1e-5)


def test_eval_critic_check_reads_q_and_bounds_the_entropy_bonus():
    """``softq eval``'s critic check: Q(s0, a0) from the online soft Q (constant c here), and the
    soft Q's largest excess over the return at the checkpoint's alpha:
    gamma alpha d log 2 / (1 - gamma), the uniform policy's entropy bonus on [-1, 1]^d."""
    from launch.eval_cmd import critic_check

    c, gamma = 1.75, 0.9
    learner = SQLLearner(small_cfg(alpha=1.0, alpha_final=0.01, alpha_anneal_updates=4),
                         OBS_SPACE, ACT_SPACE)
    for i in range(2):  # alpha 1 -> 0.1 after two updates
        learner.update(make_batch(i))
    with torch.no_grad():
        learner.q.out.weight.zero_()
        learner.q.out.bias.fill_(c)
    rng = np.random.default_rng(0)
    result = {"first_obs": rng.standard_normal((3, OBS)),
              "first_actions": rng.uniform(-1, 1, (3, ACT))}
    check = critic_check(learner, result, gamma)
    assert check["critic_q0"] == pytest.approx([c] * 3, rel=1e-6)
    assert check["critic_q0_std"] == pytest.approx(0.0, abs=1e-6)
    assert check["critic_entropy_bound"] == pytest.approx(gamma * 0.1 * ACT * math.log(2.0)
                                                          / (1 - gamma), rel=1e-9)


def test_alpha_follows_log_linear_anneal():
    learner = SQLLearner(small_cfg(alpha=1.0, alpha_final=0.01, alpha_anneal_updates=4),
                         OBS_SPACE, ACT_SPACE)
    got = [learner.update(make_batch(i))["alpha"] for i in range(6)]
    np.testing.assert_allclose(got, [1.0, 10 ** -0.5, 0.1, 10 ** -1.5, 0.01, 0.01], rtol=1e-12)


def test_state_dict_round_trip_continues_bit_identically():
    cfg = small_cfg(alpha=1.0, alpha_final=0.1, alpha_anneal_updates=5, target_update_interval=4)
    a = SQLLearner(cfg, OBS_SPACE, ACT_SPACE, seed=0)
    for i in range(3):
        a.update(make_batch(i))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = SQLLearner(cfg, OBS_SPACE, ACT_SPACE, seed=99)  # different init and RNG, overwritten
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert b.num_updates == 3
    for i in range(3, 8):  # crosses a target copy (update 4 and 8) and the end of the anneal
        assert a.update(make_batch(i)) == b.update(make_batch(i))
    for net in ("q", "q_target", "sampler"):
        for pa, pb in zip(getattr(a, net).parameters(), getattr(b, net).parameters(), strict=True):
            assert torch.equal(pa, pb), net


def test_state_from_another_device_type_loads_with_a_warning():
    # A CUDA generator's state is 16 bytes (seed, offset); a CPU learner cannot take it. The
    # networks still load exactly and the RNG is seeded from the saved state, deterministically.
    a = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE, seed=0)
    a.update(make_batch(0))
    state = a.state_dict()
    cuda_like = torch.arange(16, dtype=torch.uint8)
    state = {**state, "rng": cuda_like, "plot_rng": cuda_like + 1}
    draws = []
    for _ in range(2):
        b = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE, seed=7)
        with pytest.warns(UserWarning, match="RNG state \\(16 bytes\\).*another device type"):
            b.load_state_dict(state)
        for pa, pb in zip(a.sampler.parameters(), b.sampler.parameters(), strict=True):
            assert torch.equal(pa, pb)
        draws.append(b.draw_noise(2)[0])
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)
    fresh = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE, seed=7).draw_noise(2)[0]
    assert not torch.equal(draws[0], fresh)  # seeded from the checkpoint, not left at seed 7


@needs_cuda
def test_cuda_checkpoint_fine_tunes_on_cpu():
    a = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE, device="cuda", seed=0)
    a.update(make_batch(0))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE, device="cpu", seed=1)
    with pytest.warns(UserWarning, match="another device type"):
        b.load_state_dict(torch.load(buf, weights_only=True, map_location="cpu"))
    for pa, pb in zip(a.q.parameters(), b.q.parameters(), strict=True):
        torch.testing.assert_close(pa.cpu(), pb)
    b.update(make_batch(1))  # the CPU learner trains on from it


def test_bad_inputs_raise_named_errors():
    learner = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE)
    batch = make_batch(0)
    with pytest.raises(KeyError, match="discount"):
        learner.update({k: v for k, v in batch.items() if k != "discount"})
    with pytest.raises(ValueError, match="action"):
        learner.update({**batch, "action": batch["action"][:, :2]})
    with pytest.raises(ValueError, match="action_space"):
        SQLLearner(small_cfg(), OBS_SPACE, gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match="kernel_update_ratio"):
        SQLConfig(kernel_update_ratio=1.0)
    with pytest.raises(ValueError, match="exploration_noise"):
        SQLConfig(exploration_noise="gaussian")
    with pytest.raises(ValueError, match="value_target.*'max'"):
        SQLConfig(value_target="max")
    with pytest.raises(ValueError, match=r"actions in \[-1, 1\]\^d"):
        SQLLearner(small_cfg(), OBS_SPACE, gym.spaces.Box(-5.0, 5.0, (ACT,), np.float32))


def test_plot_helpers_shapes_and_consistency():
    learner = SQLLearner(small_cfg(), OBS_SPACE, ACT_SPACE)
    obs = np.random.default_rng(0).standard_normal((4, OBS)).astype(np.float32)
    acts = learner.sample_actions(obs, 11)
    assert acts.shape == (4, 11, ACT) and np.all(np.abs(acts) < 1)
    q = learner.q_values(obs, acts)
    assert q.shape == (4, 11)
    with torch.no_grad():
        expect = learner.q(torch.as_tensor(obs[1:2]).expand(11, OBS), torch.as_tensor(acts[1]))
    np.testing.assert_allclose(q[1], expect.numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- policy

def test_policy_acts_like_the_learners_sampler():
    cfg = small_cfg()
    spec = get_algorithm("sql")
    learner = spec.make_learner(cfg, OBS_SPACE, ACT_SPACE, "cpu", 0)
    learner.update(make_batch(0))
    policy = spec.make_policy(cfg, OBS_SPACE, ACT_SPACE, 1)
    policy.set_weights(learner.get_weights())
    assert all(t.device.type == "cpu" for t in learner.get_weights().values())
    obs = np.random.default_rng(1).standard_normal((7, OBS)).astype(np.float32)
    policy.set_fixed_xi(1)  # one fixed xi: the action is a deterministic f(xi_1; s)
    act = policy.act(obs, explore=False)
    assert act.shape == (7, ACT) and act.dtype == np.float32
    with torch.no_grad():
        expect = learner.sampler(torch.as_tensor(obs), policy._xi_pool[:1].expand(7, ACT))
    np.testing.assert_allclose(act, expect.numpy(), rtol=1e-6, atol=1e-6)


def test_fixed_xi_sets_shrink_to_a_prefix():
    policy = SQLPolicy(small_cfg(), OBS_SPACE, ACT_SPACE, seed=0)
    obs = np.zeros((200, OBS), np.float32)  # one state, 200 draws
    assert len(np.unique(policy.act(obs, False), axis=0)) > 150  # fresh xi each time
    policy.set_fixed_xi(4)
    four = np.unique(policy.act(obs, False), axis=0)
    assert len(four) == 4
    policy.set_fixed_xi(2)
    two = np.unique(policy.act(obs, False), axis=0)
    assert len(two) == 2 and all((four == row).all(1).any() for row in two)
    policy.set_fixed_xi(None)
    assert len(np.unique(policy.act(obs, False), axis=0)) > 150


def test_ou_noise_statistics_and_reset():
    theta, sigma = 0.15, 0.05  # small sigma: no clipping, so the OU moments are exact
    cfg = small_cfg(exploration_noise="ou", ou_theta=theta, ou_sigma=sigma)
    policy = SQLPolicy(cfg, OBS_SPACE, ACT_SPACE, seed=0)
    with torch.no_grad():
        policy.sampler.out.weight.zero_()
        policy.sampler.out.bias.zero_()  # a = tanh(0) = 0: actions are the noise itself
    obs = np.zeros((16, OBS), np.float32)
    assert np.all(policy.act(obs, explore=False) == 0)  # no noise without explore
    xs = np.stack([policy.act(obs, explore=True) for _ in range(1500)])[300:]  # [T, N, d]
    stationary_std = sigma / math.sqrt(1 - (1 - theta) ** 2)  # x' = (1 - theta) x + sigma n
    assert xs.std() == pytest.approx(stationary_std, rel=0.1)
    lag1 = np.mean(xs[1:] * xs[:-1]) / np.mean(xs * xs)
    assert lag1 == pytest.approx(1 - theta, abs=0.03)
    mask = np.zeros(16, bool)
    mask[[0, 3]] = True
    kept = policy._ou.clone()
    policy.reset_noise(mask)
    assert torch.all(policy._ou[[0, 3]] == 0) and torch.equal(policy._ou[1], kept[1])
    with pytest.raises(ValueError, match="env_mask"):
        policy.reset_noise(np.zeros(3, bool))
    # large noise is clipped to the action box [-1, 1]^d that eq. 10's uniform proposal covers
    loud = SQLPolicy(small_cfg(exploration_noise="ou", ou_theta=theta, ou_sigma=2.0), OBS_SPACE,
                     ACT_SPACE, seed=0)
    acts = np.stack([loud.act(obs, explore=True) for _ in range(20)])
    assert np.abs(acts).max() <= 1.0 and np.isclose(np.abs(acts), 1.0).any()


# ----------------------------------------------------------------------------- learning

def test_sampler_learns_a_bimodal_boltzmann_policy():
    """One-state bandit, discount 0, alpha = 1 and r(a) = log of an equal mixture of N(-0.5, 0.15)
    and N(+0.5, 0.15): the soft-optimal policy exp(Q/alpha) is that mixture, so the SVGD-trained
    sampler must put mass on both modes with their spread."""
    obs_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    cfg = SQLConfig(hidden_sizes=[64, 64], alpha=1.0, kernel_particles=32, value_particles=8,
                    q_lr=3e-3, policy_lr=3e-3)
    learner = SQLLearner(cfg, obs_space, act_space, seed=0)
    rng = np.random.default_rng(0)
    sd = 0.15

    def reward(a):
        dens = np.exp(-0.5 * ((a - 0.5) / sd) ** 2) + np.exp(-0.5 * ((a + 0.5) / sd) ** 2)
        return np.log(0.5 * dens / (sd * math.sqrt(2 * math.pi)) + 1e-6)

    for _ in range(1000):
        a = rng.uniform(-1, 1, (64, 1)).astype(np.float32)
        learner.update({"obs": np.zeros((64, 1), np.float32), "action": a,
                        "reward": reward(a[:, 0]).astype(np.float32),
                        "next_obs": np.zeros((64, 1), np.float32),
                        "discount": np.zeros(64, np.float32)})
    samples = learner.sample_actions(np.zeros((1, 1), np.float32), 2000)[0, :, 0]
    right = samples > 0
    assert 0.3 <= right.mean() <= 0.7
    assert np.mean(np.abs(samples) < 0.15) < 0.08  # the valley between the modes stays empty
    for mode, sel in ((0.5, right), (-0.5, ~right)):
        assert samples[sel].mean() == pytest.approx(mode, abs=0.07)
        assert 0.09 < samples[sel].std() < 0.21  # target 0.15


# ----------------------------------------------------------------------------- CUDA only

def graphed_learner(cfg: SQLConfig, streams: int | None = None) -> SQLLearner:
    learner = SQLLearner(SQLConfig(**{**cfg.__dict__, "cuda_graphs": True}), OBS_SPACE,
                         ACT_SPACE, device="cuda", seed=0)
    if streams is not None:
        learner._graph_streams = streams  # 1: the whole update on one stream
    return learner


@needs_cuda
@pytest.mark.parametrize("streams", [None, 1])
@pytest.mark.parametrize("ratio,rule,value_target", [
    (None, "paper", "importance"), (0.5, "paper", "importance"),
    (None, "reference", "importance"), (None, "paper", "policy_max")])
def test_cuda_graph_update_matches_eager_cuda_update(streams, ratio, rule, value_target):
    cfg = small_cfg(target_update_interval=5, kernel_update_ratio=ratio, kernel_bandwidth=rule,
                    value_target=value_target)
    eager = SQLLearner(cfg, OBS_SPACE, ACT_SPACE, device="cuda", seed=0)
    graphed = graphed_learner(cfg, streams)
    for i in range(8):  # 3 eager warm-up updates, capture, replays across a target copy
        m_e, m_g = eager.update(make_batch(i)), graphed.update(make_batch(i))
        assert set(m_g) == set(m_e)
        for key in m_e:
            assert m_g[key] == pytest.approx(m_e[key], rel=1e-3, abs=1e-5), (i, key)
    assert graphed._graph is not None
    # the graph drew its noise from the learner's generator: the streams are at the same place
    assert torch.equal(graphed.gen.get_state(), eager.gen.get_state())
    for net in ("q", "q_target", "sampler"):
        for pe, pg in zip(getattr(eager, net).parameters(), getattr(graphed, net).parameters(),
                          strict=True):
            torch.testing.assert_close(pg, pe, rtol=1e-3, atol=1e-5)
    state = graphed.state_dict()  # resume under graphs from its own checkpoint
    graphed.load_state_dict(state)
    assert graphed._graph is None and math.isfinite(graphed.update(make_batch(9))["loss/q"])


@needs_cuda
def test_first_graph_replay_waits_for_the_capture_stream(monkeypatch):
    """torch <= 2.12: capture_begin resets each registered generator's device-side RNG offset with
    a fill on the capture stream, and the first replay sets it on the replay stream; unordered,
    the first replay drew update 0's noise on a busy GPU. Here the capture stream is held busy
    (~1 s) before capture begins: the learner's stream must wait for it."""
    original = torch.cuda.CUDAGraph.capture_begin

    def slow_capture_begin(self, *args, **kwargs):
        torch.cuda._sleep(2_000_000_000)  # ~1 s of GPU cycles on the capture stream
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.cuda.CUDAGraph, "capture_begin", slow_capture_begin)
    learner = graphed_learner(small_cfg())
    for i in range(3):  # the eager warm-up on the side stream
        learner.update(make_batch(i))
    learner._capture()
    after_capture = torch.cuda.Event()
    after_capture.record()
    time.sleep(0.1)  # an idle stream's event completes in microseconds
    assert not after_capture.query()
    torch.cuda.synchronize()


@needs_cuda
def test_cuda_graph_metrics_read_late_keep_their_own_update():
    """Results held unread across more updates than there are staging slots still show their
    own update's numbers (a slot coming round again reads its old result first)."""
    cfg = small_cfg(alpha=1.0, alpha_final=0.1, alpha_anneal_updates=10)
    eager = SQLLearner(cfg, OBS_SPACE, ACT_SPACE, device="cuda", seed=0)
    graphed = graphed_learner(cfg)
    want = [eager.update(make_batch(i)) for i in range(14)]
    kept = [graphed.update(make_batch(i)) for i in range(14)]
    assert kept[0].ready and not kept[-1].ready  # early ones read on reuse, last one not yet
    for i, (m_e, m_g) in enumerate(zip(want, kept, strict=True)):
        assert m_g["alpha"] == m_e["alpha"]
        for key in METRIC_NAMES:
            assert m_g[key] == pytest.approx(m_e[key], rel=1e-3, abs=1e-5), (i, key)
    assert dict(kept[5]) == kept[5].resolve() and len(kept[5]) == len(METRIC_NAMES) + 1
    dup = copy.deepcopy(kept[13])  # copies and pickles as the plain dict
    assert type(dup) is dict and dup == kept[13].resolve()
    with pytest.raises(ValueError, match="fixed batch size"):
        graphed.update(make_batch(0, b=4))
