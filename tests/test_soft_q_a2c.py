"""A2C-style soft Q-learning (§6.3) and the PG / soft-Q equivalence (§4, eq. 65).

On a fixed batch of states, with the action expectation taken in closed form (every action
weighted by pi_theta(a|s), the sampling distribution held fixed as in eq. 58-59), the autograd
gradient of the soft-Q loss must equal the policy-gradient term plus the value-error gradient
computed separately, to float tolerance; with the §6.3 stream scales (1/tau, c) it must equal the
proper entropy-regularized A2C gradient with value coefficient c.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.discrete.a2c_returns import a2c_loss, kl_to_uniform, nstep_returns
from agents.discrete.config import SoftQA2CConfig
from agents.discrete.networks import ActorCritic
from agents.discrete.soft_q_a2c import (
    SoftQA2CLearner,
    scale_grad,
    soft_q_loss,
    soft_q_target,
    soft_q_values,
)

torch.set_num_threads(1)

B, A, TAU = 6, 4, 0.3
OBS = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
ACT = gym.spaces.Discrete(A)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    net = ActorCritic(OBS, ACT, [16]).double()
    torch.nn.init.normal_(net.pi.weight, std=0.5)  # a far-from-uniform policy
    obs = torch.randn(B, 5, dtype=torch.float64)
    delta = torch.randn(B, A, dtype=torch.float64) * 2.0  # Delta_t(s, a): fixed n-step advantage
    with torch.no_grad():
        logits, v = net(obs)
        w = torch.softmax(logits, -1)  # pi_theta(a|s), held fixed (sampling distribution)
    action = torch.arange(A).repeat(B)  # every (s, a) pair, s-major: [B*A]
    return net, obs, delta, w, v, logits, action


def _grads(net: torch.nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(net.parameters())))


def _pairs(net, obs):
    logits, v = net(obs)  # [B, A], [B]
    return logits.repeat_interleave(A, 0), v.repeat_interleave(A, 0)  # [B*A, A], [B*A]


def test_soft_q_loss_gradient_by_hand_and_none_into_the_target() -> None:
    """d/dQ of mean_B w/2 (Q - y)^2 (eq. 58) is w (Q - y) / B; y gets no gradient."""
    q = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.5], requires_grad=True)
    weight = torch.tensor([1.0, 0.5, 2.0])
    soft_q_loss(q, y, weight).backward()
    torch.testing.assert_close(q.grad, torch.tensor([1.0, -1.5, 0.0]) / 3)
    assert y.grad is None


def test_soft_q_gradient_equals_policy_gradient_plus_value_gradient_eq65() -> None:
    net, obs, delta, w, v_sg, logits_sg, action = _setup()
    weight, d = w.reshape(-1), delta.reshape(-1)  # [B*A]
    # soft-Q side: Q = V + tau log(pi/pi_bar), y = V_sg + tau KL_sg + Delta (eqs. 46-47, 57)
    lg, v = _pairs(net, obs)
    q = soft_q_values(lg, v, action, TAU)
    y = soft_q_target(logits_sg.repeat_interleave(A, 0), (v_sg[:, None] + delta).reshape(-1), TAU)
    g_soft = _grads(net, soft_q_loss(q, y, weight))
    # policy gradient + value error, computed separately (eq. 65)
    lg, v = _pairs(net, obs)
    logp = torch.log_softmax(lg, -1).gather(-1, action[:, None]).squeeze(-1)
    pg = weight * (-TAU * logp * d + TAU**2 * kl_to_uniform(lg))
    value_err = weight * 0.5 * (v - (v_sg.repeat_interleave(A) + d)) ** 2  # V_hat = V + Delta
    g_pg = _grads(net, pg.mean() + value_err.mean())
    for gs, gp in zip(g_soft, g_pg, strict=True):
        torch.testing.assert_close(gs, gp, rtol=1e-9, atol=1e-12)
    assert max(g.abs().max().item() for g in g_soft) > 1e-3  # not a 0 == 0 comparison


def test_identity_holds_in_expectation_not_per_sample() -> None:
    """With one sampled action per state the two gradients differ (terms (*), (**) of eq. 63
    vanish only in expectation), so the test above is not vacuous."""
    net, obs, delta, w, v_sg, logits_sg, action = _setup(1)
    weight = torch.zeros(B, A, dtype=torch.float64)
    weight[:, 0] = A  # a single action per state
    weight, d = weight.reshape(-1), delta.reshape(-1)
    lg, v = _pairs(net, obs)
    y = soft_q_target(logits_sg.repeat_interleave(A, 0), (v_sg[:, None] + delta).reshape(-1), TAU)
    g_soft = _grads(net, soft_q_loss(soft_q_values(lg, v, action, TAU), y, weight))
    lg, v = _pairs(net, obs)
    logp = torch.log_softmax(lg, -1).gather(-1, action[:, None]).squeeze(-1)
    loss = (weight * (-TAU * logp * d + TAU**2 * kl_to_uniform(lg))).mean() + (
        weight * 0.5 * (v - (v_sg.repeat_interleave(A) + d)) ** 2).mean()
    g_pg = _grads(net, loss)
    assert not all(torch.allclose(a, b) for a, b in zip(g_soft, g_pg, strict=True))


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_scaled_soft_q_gradient_equals_proper_a2c_gradient(c: float) -> None:
    """§6.3: advantage stream x 1/tau, value stream x c  ==  A2C (eq. 86) with coefficient c."""
    net, obs, delta, w, v_sg, logits_sg, action = _setup(2)
    weight = w.reshape(-1)
    lg, v = _pairs(net, obs)
    q = soft_q_values(lg, v, action, TAU, adv_scale=1.0 / TAU, value_scale=c)
    y = soft_q_target(logits_sg.repeat_interleave(A, 0), (v_sg[:, None] + delta).reshape(-1), TAU)
    g_soft = _grads(net, soft_q_loss(q, y, weight))
    lg, v = _pairs(net, obs)
    returns = (v_sg[:, None] + delta).reshape(-1)  # R_t = V(s_t) + Delta_t
    g_a2c = _grads(net, a2c_loss(lg, v, action, returns, TAU, c, weight=weight)["total"])
    for gs, ga in zip(g_soft, g_a2c, strict=True):
        torch.testing.assert_close(gs, ga, rtol=1e-9, atol=1e-12)


def test_scale_grad_is_identity_forward_and_scales_backward() -> None:
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = scale_grad(x, 0.25)
    torch.testing.assert_close(y, x.detach())
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.25, 0.25]))


@pytest.mark.parametrize("bonus", ["kl", "entropy"])
def test_learner_loss_is_soft_q_regression_on_eq46_target(bonus: str) -> None:
    """loss/q = mean 1/2 (V + tau log(pi(a|s) / pi_bar) - y)^2, y = tau KL_t + proper n-step
    return; 'kl': pi_bar = 1/|A|, 'entropy': pi_bar = 1 (Q = V + tau log pi, KL_t = -H_t)."""
    cfg = SoftQA2CConfig(tau=0.2, gamma=0.9, hidden_sizes=[8], bonus=bonus)
    learner = SoftQA2CLearner(cfg, OBS, ACT, seed=0)
    with torch.no_grad():  # a policy far from uniform, so that the tau KL terms count
        torch.manual_seed(0)
        learner.net.pi.weight.normal_(0.0, 2.0)
    rng = np.random.default_rng(0)
    T, N = 3, 2
    term, trunc = np.zeros((T, N), bool), np.zeros((T, N), bool)
    term[1, 0], trunc[0, 1] = True, True
    ro = {
        "obs": rng.normal(size=(T + 1, N, 5)).astype(np.float32),
        "action": rng.integers(0, A, size=(T, N)), "reward": rng.normal(size=(T, N)),
        "terminated": term, "truncated": trunc,
        "final_obs": rng.normal(size=(T, N, 5)).astype(np.float32),
    }
    with torch.no_grad():
        logits, v = learner.net(torch.as_tensor(ro["obs"]).reshape(-1, 5))
        logits, v = logits.reshape(T + 1, N, A)[:T], v.reshape(T + 1, N)
        v_final = learner.net(torch.as_tensor(ro["final_obs"]).reshape(-1, 5))[1].reshape(T, N)
        kl = kl_to_uniform(logits)
        assert kl.max() > 0.1
        log_ref = -np.log(A) if bonus == "kl" else 0.0
        kl = kl - np.log(A) - log_ref  # sum pi log(pi / pi_bar); 'entropy': -H
        R = nstep_returns(torch.as_tensor(ro["reward"]).float(), v[T], torch.as_tensor(term),
                          torch.as_tensor(trunc), v_final, 0.9, 0.2 * kl)
        y = 0.2 * kl + R
        logp = torch.log_softmax(logits, -1).gather(
            -1, torch.as_tensor(ro["action"])[..., None]).squeeze(-1)
        q = v[:T] + 0.2 * (logp - log_ref)
    m = learner.update(ro)
    assert m["loss/q"] == pytest.approx(0.5 * ((q - y) ** 2).mean().item(), rel=1e-5)
    assert m["q/mean"] == pytest.approx(q.mean().item(), rel=1e-5)


# ------------------------------------------------------- the two learners on the same rollout

def _pi_weighted_rollout(T: int = 3):
    """Every state is seen by N = 8 envs whose actions 0, 0, 0, 0, 1, 1, 2, 2 are distributed
    exactly as pi = (1/2, 1/4, 1/4), so a batch mean is the expectation over a_t ~ pi of eq. 58.
    Rewards, terminations (t=1 env 0; t=2 env 3 with a time limit too) and a time limit (t=0 env
    5, bootstrapping from V(final_obs)) differ between the envs."""
    rng = np.random.default_rng(0)
    N = 8
    term, trunc = np.zeros((T, N), bool), np.zeros((T, N), bool)
    term[1, 0], trunc[0, 5], term[2, 3], trunc[2, 3] = True, True, True, True
    return {
        "obs": np.repeat(rng.normal(size=(T + 1, 1, 3)), N, axis=1),  # [T+1, N, 3]
        "action": np.tile(np.array([0, 0, 0, 0, 1, 1, 2, 2]), (T, 1)),
        "reward": rng.normal(size=(T, N)), "terminated": term, "truncated": trunc,
        "final_obs": rng.normal(size=(T, N, 3)),
    }


def _learner_grads(learner, rollout) -> list[torch.Tensor]:
    learner.net.double()
    with torch.no_grad():  # pi = (1/2, 1/4, 1/4) in every state; V differs between states
        learner.net.pi.weight.zero_()
        learner.net.pi.bias.copy_(torch.log(torch.tensor([2.0, 1.0, 1.0])))
        torch.manual_seed(0)
        learner.net.v.weight.normal_()
    total, _ = learner.loss(learner._forward_rollout(rollout))
    return list(torch.autograd.grad(total, list(learner.net.parameters())))


@pytest.mark.parametrize("bonus", ["kl", "entropy"])
def test_soft_q_a2c_learner_gradient_equals_proper_a2c_learner_gradient(bonus: str) -> None:
    """§6.3 / eq. 65 through both learners' own wiring (n-step returns with episode ends, the
    tau KL_t of the target, the stream scales 1/tau and c): with the actions distributed as pi,
    SoftQA2CLearner's gradient equals A2CLearner's (proper, value_coef = c), to round-off; the
    naive estimator (eq. 79) differs."""
    from agents.discrete.a2c import A2CLearner
    from agents.discrete.config import A2CConfig

    obs, act = gym.spaces.Box(-1.0, 1.0, (3,), np.float32), gym.spaces.Discrete(3)
    kw = dict(tau=0.3, gamma=0.9, hidden_sizes=[8], bonus=bonus)
    ro = _pi_weighted_rollout()
    g_soft = _learner_grads(SoftQA2CLearner(SoftQA2CConfig(value_grad_scale=0.5, **kw),
                                            obs, act, seed=1), ro)
    g_proper = _learner_grads(A2CLearner(A2CConfig(entropy_mode="proper", value_coef=0.5, **kw),
                                         obs, act, seed=1), ro)
    g_naive = _learner_grads(A2CLearner(A2CConfig(entropy_mode="naive", value_coef=0.5, **kw),
                                        obs, act, seed=1), ro)
    for gs, gp in zip(g_soft, g_proper, strict=True):
        torch.testing.assert_close(gs, gp, rtol=1e-6, atol=1e-9)  # float32 rewards
    assert max(g.abs().max().item() for g in g_soft) > 0.1
    gap = max((gs - gn).abs().max().item() for gs, gn in zip(g_soft, g_naive, strict=True))
    assert gap > 1e-3  # the future tau KL_{t+d} terms of eq. 80 are missing from eq. 79


def test_bonus_kl_and_entropy_returns_differ_by_tau_log_a_per_step() -> None:
    """Proper returns under 'entropy' exceed those under 'kl' by tau log|A| sum_d gamma^d over
    the steps to the end of the window (termination, time limit or rollout end); here T = 3,
    gamma = 0.9, tau = 0.3, |A| = 3."""
    from agents.discrete.a2c_returns import kl_to_reference

    ro = _pi_weighted_rollout()
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25])).expand(3, 8, 3)
    args = (torch.as_tensor(ro["reward"]), torch.zeros(8), torch.as_tensor(ro["terminated"]),
            torch.as_tensor(ro["truncated"]), torch.zeros(3, 8), 0.9)
    diff = (nstep_returns(*args, 0.3 * kl_to_reference(logits, "entropy"))
            - nstep_returns(*args, 0.3 * kl_to_reference(logits, "kl")))  # [3, 8]
    steps = np.array([[2, 3, 3, 3, 3, 1, 3, 3], [1, 2, 2, 2, 2, 2, 2, 2], [1] * 8])  # to the end
    want = 0.3 * np.log(3) * (1 - 0.9 ** steps) / (1 - 0.9)
    np.testing.assert_allclose(diff.numpy(), want, rtol=1e-6)


def test_atari_a2c_presets_use_the_entropy_bonus_of_figures_1_and_3() -> None:
    """Fig. 1's proper curve ("EntRL") optimises the entropy-augmented return and §6.3 writes
    Q = V + tau log pi; the CartPole presets keep the KL form."""
    from launch.config import load_config

    for preset in ("pong-a2c-proper", "breakout-a2c-naive", "pong-soft-q-a2c",
                   "seaquest-soft-q-a2c"):
        assert load_config(preset).agent.bonus == "entropy", preset
    assert load_config("cartpole-soft-q-a2c").agent.bonus == "kl"
