"""DDPG baseline (agents/ddpg) and Ornstein-Uhlenbeck noise (agents/noise.py)."""

from __future__ import annotations

import copy
import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.base import Learner, Policy
from agents.ddpg import DDPGConfig, DDPGLearner, DDPGPolicy
from agents.ddpg.learner import _adam, _adam_step
from agents.ddpg.losses import actor_loss, bellman_target, critic_loss
from agents.ddpg.networks import Critic
from agents.noise import OrnsteinUhlenbeckNoise, ou_stationary_variance
from agents.registry import get_algorithm

torch.set_num_threads(1)

OBS_DIM, ACT_DIM = 3, 2
OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float64)
ACT_SPACE = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)


def _batch(rng: np.random.Generator, b: int = 16, positive: bool = False) -> dict:
    low = 0.0 if positive else -1.0
    return {"obs": rng.uniform(low, 1.0, (b, OBS_DIM)),
            "action": rng.uniform(low, 1.0, (b, ACT_DIM)).astype(np.float32),
            "reward": rng.normal(size=b).astype(np.float32),
            "next_obs": rng.uniform(low, 1.0, (b, OBS_DIM)),
            "discount": rng.choice([0.0, 0.99, 0.99**3], size=b).astype(np.float32)}


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# ---------------------------------------------------------------------- config and losses
def test_config_defaults_are_the_papers():
    cfg = DDPGConfig()
    assert (cfg.gamma, cfg.hidden_sizes, cfg.critic_lr, cfg.actor_lr) == (0.99, [200, 200],
                                                                           1e-3, 1e-4)
    assert (cfg.target_update_interval, cfg.tau, cfg.ou_theta, cfg.ou_sigma) == (1000, 1.0,
                                                                                 0.15, 0.3)
    for bad, name in [({"tau": 0.0}, "tau"), ({"hidden_sizes": []}, "hidden_sizes"),
                      ({"target_update_interval": 0}, "target_update_interval"),
                      ({"actor_lr": -1.0}, "actor_lr"), ({"ou_theta": 2.5}, "ou_theta")]:
        with pytest.raises(ValueError, match=name):
            DDPGConfig(**bad)


def test_losses_by_hand():
    r, d, nq = torch.tensor([1.0, 2.0, -0.5]), torch.tensor([0.99, 0.0, 0.5]), torch.tensor(
        [10.0, -3.0, 4.0])
    y = bellman_target(r, d, nq)
    torch.testing.assert_close(y, torch.tensor([10.9, 2.0, 1.5]))
    q = torch.tensor([10.0, 3.0, 1.5])
    assert critic_loss(q, y).item() == pytest.approx((0.9**2 + 1.0**2 + 0.0) / 3)
    assert actor_loss(torch.tensor([1.0, 2.0, 6.0])).item() == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="must match"):
        bellman_target(r, d, nq[:2])


def test_critic_loss_gradient_by_hand_and_none_into_the_target():
    """d/dQ mean (Q - y)^2 = 2 (Q - y) / B; y is a regression target and gets no gradient."""
    q = torch.tensor([10.0, 3.0, 1.5], requires_grad=True)
    y = torch.tensor([10.9, 2.0, 1.5], requires_grad=True)
    critic_loss(q, y).backward()
    torch.testing.assert_close(q.grad, torch.tensor([-0.6, 2.0 / 3.0, 0.0]))
    assert y.grad is None


# ---------------------------------------------------------------------- the update by hand
def _linear_critic_(critic, w: np.ndarray, b: float) -> None:
    """Make a [5, 5] ReLU critic compute w . [s, a] + b for non-negative inputs."""
    with torch.no_grad():
        for layer in critic.hidden:
            layer.weight.copy_(torch.eye(5))
            layer.bias.zero_()
        critic.out.weight.copy_(torch.as_tensor(w, dtype=torch.float32)[None])
        critic.out.bias.fill_(b)


def _hand_learner():
    cfg = DDPGConfig(hidden_sizes=[5, 5], target_update_interval=10**6)
    learner = DDPGLearner(cfg, OBS_SPACE, ACT_SPACE, seed=3)
    w_targ, b_targ = np.array([0.5, -1.0, 2.0, 1.5, -0.5]), 0.25
    w_online, b_online = np.array([1.0, 0.3, -0.2, 0.7, 0.4]), -0.1
    _linear_critic_(learner.critic_target, w_targ, b_targ)
    _linear_critic_(learner.critic, w_online, b_online)
    beta = np.array([0.5, 1.0])  # target actor: zero weights, output bias beta -> tanh(beta)
    with torch.no_grad():
        for p in learner.actor_target.parameters():
            p.zero_()
        learner.actor_target.out.bias.copy_(torch.as_tensor(beta, dtype=torch.float32))
    return learner, (w_targ, b_targ, w_online, b_online, beta)


def test_critic_target_and_loss_against_hand_computation():
    learner, (w_targ, b_targ, w_online, b_online, beta) = _hand_learner()
    batch = _batch(np.random.default_rng(0), positive=True)
    s, a, r = batch["obs"], batch["action"].astype(np.float64), batch["reward"]
    s2, d = batch["next_obs"], batch["discount"]
    # y = r + discount * Q'(s', mu'(s')), Q' linear, mu'(s') = tanh(beta) for every s'
    y = r + d * (s2 @ w_targ[:3] + np.tanh(beta) @ w_targ[3:] + b_targ)  # [B]
    got = learner.critic_targets(*(torch.as_tensor(x, dtype=torch.float32)
                                   for x in (r, d, s2)))
    np.testing.assert_allclose(got.numpy(), y, rtol=1e-5, atol=1e-5)

    q = np.concatenate([s, a], 1) @ w_online + b_online  # [B]
    out_w, out_b = learner.critic.out.weight.detach().clone(), learner.critic.out.bias.detach(
    ).clone()
    actor_before = copy.deepcopy(learner.actor)
    metrics = learner.update(batch)
    assert metrics["loss/q"] == pytest.approx(np.mean((q - y) ** 2), rel=1e-5)
    assert metrics["q/mean"] == pytest.approx(q.mean(), rel=1e-5, abs=1e-6)
    # Adam's first step moves each parameter by lr * g / (|g| + eps) = lr * sign(g); for the
    # output layer g = mean_B 2 (q - y) h with h = [s, a] (identity ReLU layers, inputs >= 0).
    g_w = (2 * (q - y)[:, None] * np.concatenate([s, a], 1)).mean(0)  # [5]
    g_b = (2 * (q - y)).mean()
    np.testing.assert_allclose((learner.critic.out.weight[0] - out_w[0]).detach().numpy(),
                               -1e-3 * np.sign(g_w), atol=1e-7)
    assert (learner.critic.out.bias - out_b).item() == pytest.approx(-1e-3 * np.sign(g_b),
                                                                     abs=1e-7)
    # The actor step used the *updated* critic and the pre-update actor.
    obs = torch.as_tensor(s, dtype=torch.float32)
    with torch.no_grad():
        q_pi = learner.critic(obs, actor_before(obs))
    assert metrics["loss/policy"] == pytest.approx(-q_pi.mean().item(), rel=1e-5)


def test_q_values_and_the_eval_critic_check_by_hand():
    """``q_values`` [N, P] is the online critic w . [s, a] + b; ``softq eval``'s critic check
    reads it at each episode's (s0, a0). Without a soft Q there is no entropy bound."""
    from launch.eval_cmd import critic_check

    learner, (_, _, w_online, b_online, _) = _hand_learner()
    rng = np.random.default_rng(4)
    s = rng.uniform(0, 1, (6, OBS_DIM))
    a = rng.uniform(0, 1, (6, 4, ACT_DIM))
    expected = np.einsum("nd,d->n", s, w_online[:3])[:, None] + a @ w_online[3:] + b_online
    np.testing.assert_allclose(learner.q_values(s, a), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="need obs"):
        learner.q_values(s, a[:, 0])
    check = critic_check(learner, {"first_obs": s, "first_actions": a[:, 0]}, gamma=0.99)
    np.testing.assert_allclose(check["critic_q0"], expected[:, 0], rtol=1e-5, atol=1e-6)
    assert check["critic_q0_mean"] == pytest.approx(expected[:, 0].mean(), rel=1e-5)
    assert check["critic_q0_std"] == pytest.approx(expected[:, 0].std(), rel=1e-4)
    assert "critic_entropy_bound" not in check
    assert critic_check(object(), {}, gamma=0.99) == {}  # no continuous critic: no check


def test_critic_gradient_is_the_critic_loss_only_and_actor_ascends_q():
    rng = np.random.default_rng(1)
    learner = DDPGLearner(DDPGConfig(hidden_sizes=[32, 32]), OBS_SPACE, ACT_SPACE, seed=0)
    for _ in range(3):
        learner.update(_batch(rng))
    batch = _batch(rng)
    critic0, actor0 = copy.deepcopy(learner.critic), copy.deepcopy(learner.actor)
    t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in batch.items()}
    y = learner.critic_targets(t["reward"], t["discount"], t["next_obs"])
    expected = torch.autograd.grad(((critic0(t["obs"], t["action"]) - y) ** 2).mean(),
                                   list(critic0.parameters()))
    learner.update(batch)
    for p, g in zip(learner.critic.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g)  # no actor-loss gradient leaked into the critic
    with torch.no_grad():  # the deterministic policy gradient step increased Q(s, mu(s))
        q_old = learner.critic(t["obs"], actor0(t["obs"])).mean()
        q_new = learner.critic(t["obs"], learner.actor(t["obs"])).mean()
    assert q_new > q_old


@pytest.mark.parametrize("tau", [1.0, 0.5, 0.25])
def test_target_schedule(tau):
    rng = np.random.default_rng(2)
    cfg = DDPGConfig(hidden_sizes=[8], target_update_interval=3, tau=tau)
    learner = DDPGLearner(cfg, OBS_SPACE, ACT_SPACE)
    init_targets = _params(learner.critic_target) + _params(learner.actor_target)
    for _ in range(2):
        learner.update(_batch(rng))
    for p, p0 in zip(_params(learner.critic_target) + _params(learner.actor_target),
                     init_targets, strict=True):
        assert torch.equal(p, p0)  # frozen between target updates
    learner.update(_batch(rng))
    assert learner.num_updates == 3
    online = _params(learner.critic) + _params(learner.actor)
    for p, p0, o in zip(_params(learner.critic_target) + _params(learner.actor_target),
                        init_targets, online, strict=True):
        torch.testing.assert_close(p, tau * o + (1 - tau) * p0)


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(3)
    batches = [_batch(rng) for _ in range(6)]
    cfg = DDPGConfig(hidden_sizes=[16, 16], target_update_interval=4)
    a = DDPGLearner(cfg, OBS_SPACE, ACT_SPACE, seed=0)
    for b in batches[:3]:
        a.update(b)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b_learner = DDPGLearner(cfg, OBS_SPACE, ACT_SPACE, seed=99)
    b_learner.load_state_dict(torch.load(buf, weights_only=True))
    assert b_learner.num_updates == 3
    for b in batches[3:]:  # crosses a target update at 4
        assert a.update(b) == b_learner.update(b)
    for pa, pb in zip(a.state_dict()["critic_target"].values(),
                      b_learner.state_dict()["critic_target"].values(), strict=True):
        assert torch.equal(pa, pb)
    for pa, pb in zip(a.actor.parameters(), b_learner.actor.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("fallback", [None, "amsgrad", "hook"])
def test_adam_step_is_adam_step_bit_for_bit_and_skips_its_python_layers(fallback):
    """_adam_step (the learner's fast path) leaves parameters and the whole optimizer state equal
    to opt.step()'s over several steps (the first creates the state through opt.step itself);
    only a fused Adam without amsgrad and step hooks skips Adam.step, whose profiler record then
    never shows; a registered step hook is called at every step."""
    torch.manual_seed(0)
    nets = [Critic(OBS_DIM, ACT_DIM, [16, 16]) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [_adam(list(n.parameters()), 1e-3, torch.device("cpu")) for n in nets]
    for opt in opts:
        opt.param_groups[0]["amsgrad"] = fallback == "amsgrad"
    hook_calls = []
    if fallback == "hook":
        opts[0].register_step_post_hook(lambda *_: hook_calls.append(1))
    for _ in range(4):
        grads = [torch.randn_like(p) for p in nets[0].parameters()]
        for net in nets:
            for p, g in zip(net.parameters(), grads, strict=True):
                p.grad = g.clone()
        _adam_step(opts[0])
        opts[1].step()
    for pa, pb in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(pa, pb)
    sa, sb = (opt.state_dict()["state"] for opt in opts)
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for key in sa[i]:
            assert torch.equal(sa[i][key], sb[i][key]), (i, key)
    with torch.profiler.profile() as prof:
        _adam_step(opts[0])
    names = {e.name for e in prof.events()}
    assert "aten::_fused_adam_" in names
    assert any(n.startswith("Optimizer.step#Adam") for n in names) == (fallback is not None)
    assert len(hook_calls) == (5 if fallback == "hook" else 0)


def test_bad_batches_and_spaces_raise():
    learner = DDPGLearner(DDPGConfig(hidden_sizes=[8]), OBS_SPACE, ACT_SPACE)
    batch = _batch(np.random.default_rng(0))
    with pytest.raises(KeyError, match="discount"):
        learner.update({k: v for k, v in batch.items() if k != "discount"})
    with pytest.raises(ValueError, match="action"):
        learner.update({**batch, "action": batch["action"][:, :1]})
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        DDPGLearner(DDPGConfig(), OBS_SPACE, gym.spaces.Box(-2.0, 2.0, (2,), np.float32))


# ---------------------------------------------------------------------- policy
def test_policy_acts_with_learner_weights_and_ou_noise():
    cfg = DDPGConfig(hidden_sizes=[16], ou_sigma=0.8)
    spec = get_algorithm("ddpg")
    learner = spec.make_learner(cfg, OBS_SPACE, ACT_SPACE, "cpu", 0)
    policy = spec.make_policy(cfg, OBS_SPACE, ACT_SPACE, 7)
    assert isinstance(learner, DDPGLearner) and isinstance(policy, DDPGPolicy)
    assert isinstance(learner, Learner) and isinstance(policy, Policy)  # agents/base protocols
    with torch.no_grad():
        learner.actor.out.weight.mul_(300.0)  # saturate some actions so clipping matters
    policy.set_weights(learner.get_weights())
    obs = np.random.default_rng(4).normal(size=(5, OBS_DIM))
    with torch.no_grad():
        mu = learner.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()  # [5, 2]
    np.testing.assert_allclose(policy.act(obs, explore=False), mu, atol=1e-6)
    reference = OrnsteinUhlenbeckNoise(ACT_DIM, theta=0.15, sigma=0.8, seed=7)
    clipped = False
    for t in range(6):
        if t == 3:
            mask = np.array([True, False, False, True, False])
            policy.reset_noise(mask)
            reference.reset(mask)
        a = policy.act(obs, explore=True)
        expected = np.clip(mu + reference.sample(5), -1.0, 1.0)
        np.testing.assert_allclose(a, expected, atol=1e-6)
        assert a.dtype == np.float32 and np.all(np.abs(a) <= 1.0)
        clipped |= bool(np.any(np.abs(mu + reference.state) > 1.0))
    assert clipped
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        policy.act(obs[0], explore=False)


def test_ddpg_solves_a_one_step_bandit():
    """r(a) = -||a - a*||^2, discount 0: the critic learns r and the actor moves to a*
    (from mu(s) ~ 0 at init; a flipped policy gradient would run to the far corner)."""
    rng = np.random.default_rng(5)
    a_star = np.array([0.5, -0.3])
    cfg = DDPGConfig(hidden_sizes=[64, 64], critic_lr=3e-3, actor_lr=1e-3)
    learner = DDPGLearner(cfg, OBS_SPACE, ACT_SPACE, seed=0)
    obs = np.ones((64, OBS_DIM))
    for _ in range(1000):
        action = rng.uniform(-1, 1, (64, ACT_DIM)).astype(np.float32)
        reward = -np.sum((action - a_star) ** 2, axis=1).astype(np.float32)
        learner.update({"obs": obs, "action": action, "reward": reward, "next_obs": obs,
                        "discount": np.zeros(64, np.float32)})
    s = torch.ones(2, OBS_DIM)
    with torch.no_grad():
        a = learner.actor(s[:1]).numpy()[0]
        q = learner.critic(s, torch.tensor([[0.5, -0.3], [-1.0, 1.0]])).numpy()
    np.testing.assert_allclose(q, [0.0, -(1.5**2 + 1.3**2)], atol=0.3)
    np.testing.assert_allclose(a, a_star, atol=0.15)


# ---------------------------------------------------------------------- OU noise
def test_ou_stationary_statistics():
    theta, sigma = 0.15, 0.3
    v = ou_stationary_variance(theta, sigma, dt=1.0)
    assert v == pytest.approx(0.09 / (0.15 * 1.85))  # 0.3243, not the continuous 0.3
    noise = OrnsteinUhlenbeckNoise(4, theta=theta, sigma=sigma, seed=0)
    n_envs = 2000
    first = noise.sample(n_envs)  # x_1 = sigma eps from x_0 = mu = 0
    assert first.var() == pytest.approx(sigma**2, rel=0.05)
    for _ in range(150):  # burn-in: rho^300 ~ 1e-21
        noise.sample(n_envs)
    xs = np.stack([noise.sample(n_envs) for _ in range(200)])  # [T, N, 4]
    assert abs(xs.mean()) < 0.01
    # 1.6M draws, ~130k effective (correlation time (1 + rho)/(1 - rho) = 12.3): ~0.4% std. err.
    assert xs.var() == pytest.approx(v, rel=0.025)
    lag1 = np.mean(xs[1:] * xs[:-1]) / xs.var()
    assert lag1 == pytest.approx(1 - theta, abs=0.01)
    # Transient from mu: Var x_k = V (1 - rho^(2k)).
    noise.reset()
    for _ in range(4):
        noise.sample(n_envs)
    assert noise.sample(n_envs).var() == pytest.approx(v * (1 - 0.85**10), rel=0.05)


def test_ou_reset_mask_and_errors():
    noise = OrnsteinUhlenbeckNoise(2, seed=0)
    x = noise.sample(3)
    noise.reset(np.array([False, True, False]))
    np.testing.assert_array_equal(noise.state[1], 0.0)
    np.testing.assert_array_equal(noise.state[[0, 2]], x[[0, 2]])
    with pytest.raises(ValueError, match="one flag per env"):
        noise.reset(np.array([True, False]))
    with pytest.raises(ValueError, match="theta"):
        OrnsteinUhlenbeckNoise(2, theta=2.5)
    with pytest.raises(ValueError, match="action_dim"):
        OrnsteinUhlenbeckNoise(0)


def test_ou_step_with_dt_and_mu_is_the_euler_maruyama_update():
    """x' = x + theta (mu - x) dt + sigma sqrt(dt) eps with dt != 1 and mu != 0, replaying the
    class's own normals (np.random.default_rng(seed).standard_normal([N, d]), one draw a step).
    The dt = 1, mu = 0 tests cannot tell sqrt(dt) from dt, or mu from 0."""
    theta, sigma, mu, dt = 0.5, 0.4, -0.7, 0.25
    # sigma = 0: the drift alone, by hand: 1 + 0.5 (-0.7 - 1) 0.25 = 0.7875;
    # -3 + 0.5 (-0.7 + 3) 0.25 = -2.7125
    drift = OrnsteinUhlenbeckNoise(2, theta=theta, sigma=0.0, mu=mu, dt=dt, seed=0)
    assert drift.sample(1).tolist() == [[mu, mu]]  # starts at mu
    drift.state = np.array([[1.0, -3.0]])
    np.testing.assert_allclose(drift.sample(1), [[0.7875, -2.7125]], rtol=0, atol=1e-12)
    noise = OrnsteinUhlenbeckNoise(3, theta=theta, sigma=sigma, mu=mu, dt=dt, seed=11)
    eps = np.random.default_rng(11)
    e1 = eps.standard_normal((2, 3))
    np.testing.assert_allclose(noise.sample(2), mu + 0.2 * e1, rtol=0, atol=1e-12)  # 0.4 * 0.5
    x0 = np.array([[0.3, -1.2, 2.0], [-0.7, 5.0, 0.0]])
    noise.state = x0.copy()
    e2 = eps.standard_normal((2, 3))
    expected = x0 + theta * (mu - x0) * dt + sigma * np.sqrt(dt) * e2
    np.testing.assert_allclose(noise.sample(2), expected, rtol=0, atol=1e-12)
    # restarts are at mu, not at 0: a masked reset, a full reset, a new number of envs
    noise.reset(np.array([False, True]))
    np.testing.assert_array_equal(noise.state[1], mu)
    np.testing.assert_allclose(noise.state[0], expected[0], rtol=0, atol=1e-12)
    noise.reset()
    np.testing.assert_array_equal(noise.state, mu)
    e3 = eps.standard_normal((2, 3))
    np.testing.assert_allclose(noise.sample(2), mu + 0.2 * e3, rtol=0, atol=1e-12)
    e4 = eps.standard_normal((5, 3))
    np.testing.assert_allclose(noise.sample(5), mu + 0.2 * e4, rtol=0, atol=1e-12)


def test_ou_stationary_law_for_dt_below_one_and_nonzero_mu():
    """dt = 0.8, theta = 0.5 (rho = 1 - theta dt = 0.6), sigma = 0.4, mu = -0.7: stationary
    N(mu, V), V = sigma^2 / (theta (2 - theta dt)) = 0.16 / (0.5 * 1.6) = 0.2
    (= sigma^2 dt / (1 - rho^2) = 0.128 / 0.64), lag-1 autocorrelation rho = 0.6.
    Ignoring dt in the noise scale would give V = 0.25, in the decay rho = 0.5."""
    theta, sigma, mu, dt = 0.5, 0.4, -0.7, 0.8
    v = ou_stationary_variance(theta, sigma, dt)
    assert v == pytest.approx(0.2, rel=1e-12)
    assert ou_stationary_variance(theta, sigma, 0.25) == pytest.approx(0.16 / 0.9375, rel=1e-12)
    noise = OrnsteinUhlenbeckNoise(2, theta=theta, sigma=sigma, mu=mu, dt=dt, seed=3)
    n_envs = 2000
    first = noise.sample(n_envs)  # x_1 = mu + sigma sqrt(dt) eps: variance sigma^2 dt = 0.128
    assert first.mean() == pytest.approx(mu, abs=0.03)
    assert first.var() == pytest.approx(0.128, rel=0.1)  # 4000 draws: s.e. 2.2%
    for _ in range(60):  # burn-in: rho^60 ~ 5e-14
        noise.sample(n_envs)
    xs = np.stack([noise.sample(n_envs) for _ in range(200)])  # [T, N, 2]
    # 800k draws, ~200k effective (correlation time (1 + rho)/(1 - rho) = 4): mean s.e. ~0.001,
    # variance s.e. ~0.25%
    assert xs.mean() == pytest.approx(mu, abs=0.01)
    assert xs.var() == pytest.approx(v, rel=0.02)
    c = xs - mu
    assert np.mean(c[1:] * c[:-1]) / np.mean(c * c) == pytest.approx(0.6, abs=0.01)


def test_a_workers_exploration_does_not_replay_its_envs_reset_draws():
    """A rollout worker seeded its env 0, its action space and its policy with one seed, and
    Gymnasium's reset(seed=s), action_space.seed(s) and NumPy's default_rng(s) are one PCG64
    stream. The ant's reset draws 15 uniforms in [-0.1, 0.1] (qpos) then 14 normals (qvel): the
    random warm-up's first action was the first 8 qpos draws / 0.1, and the OU noise's normals
    15..28 (its 2nd to 4th steps, 8 per step) were the qvel draws / 0.1."""
    from distributed.rollout import RolloutWorker
    from launch.config import load_config

    cfg = load_config("ant-pretrain-ddpg-quick", ["agent.hidden_sizes=[8]",
                                                  "runtime.envs_per_worker=1"])
    worker = RolloutWorker(cfg)  # env 0 reset with the worker's seed
    ant = worker.env.envs[0].unwrapped
    qpos_draws = (ant.data.qpos - ant.init_qpos) / ant.reset_noise_scale  # [15] U(-1, 1)
    qvel_draws = (ant.data.qvel - ant.init_qvel) / ant.reset_noise_scale  # [14] N(0, 1)
    warm_up_action = worker.env.action_space.sample()[0]  # [8]
    noise, rho, x, eps = worker.policy.noise, 1.0 - cfg.agent.ou_theta, np.zeros((1, 8)), []
    for _ in range(4):  # eps_t = (x_t - rho x_{t-1}) / sigma, recovered from the states
        x_new = noise.sample(1)
        eps.append((x_new - rho * x) / cfg.agent.ou_sigma)
        x = x_new
    eps = np.concatenate(eps, axis=1)[0]  # [32]
    assert np.abs(warm_up_action - qpos_draws[:8]).max() > 0.1
    assert np.abs(eps[15:29] - qvel_draws).max() > 0.1
    worker.close()
