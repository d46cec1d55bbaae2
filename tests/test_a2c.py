"""A2C (§6.1): the naive (eq. 79) and proper (eq. 80) returns on a hand-computed 3-step rollout,
the loss gradient against its analytic form, and the learner's wiring (truncation bootstrap,
persistence, input checks)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.discrete.a2c import A2CLearner, ActorCriticPolicy
from agents.discrete.a2c_returns import a2c_loss, kl_to_uniform, nstep_returns
from agents.discrete.config import A2CConfig

torch.set_num_threads(1)

# 3 steps x 3 envs, gamma = 0.9, tau * KL_t = 0.5 * [0.2, 0.4, 0.6] = [0.1, 0.2, 0.3]
#   env 0: r = 1, 2, 3, no episode end;               V(s_3) = 10
#   env 1: r = 1, 1, 1, terminated at t = 1;          V(s_3) = 10 (next episode)
#   env 2: r = 0, 5, -1, time limit at t = 0, V(final_obs_0) = 4; V(s_3) = 10
REWARD = torch.tensor([[1.0, 1.0, 0.0], [2.0, 1.0, 5.0], [3.0, 1.0, -1.0]])
TERM = torch.tensor([[False, False, False], [False, True, False], [False, False, False]])
TRUNC = torch.tensor([[False, False, True], [False, False, False], [False, False, False]])
FINAL_V = torch.tensor([[0.0, 0.0, 4.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
BOOT = torch.tensor([10.0, 10.0, 10.0])
PENALTY = 0.5 * torch.tensor([[0.2] * 3, [0.4] * 3, [0.6] * 3])

# hand-computed: R_t = r_t (- tau KL_t) + 0.9 * (R_{t+1} | 0 if terminated | V(final) if truncated)
NAIVE = torch.tensor([[12.52, 1.9, 3.6], [12.8, 1.0, 12.2], [12.0, 10.0, 8.0]])
PROPER = torch.tensor([[11.997, 1.62, 3.5], [12.33, 0.8, 11.73], [11.7, 9.7, 7.7]])


def test_naive_returns_eq79_hand_computed() -> None:
    R = nstep_returns(REWARD, BOOT, TERM, TRUNC, FINAL_V, 0.9)
    torch.testing.assert_close(R, NAIVE)


def test_proper_returns_eq80_hand_computed() -> None:
    R = nstep_returns(REWARD, BOOT, TERM, TRUNC, FINAL_V, 0.9, penalty=PENALTY)
    torch.testing.assert_close(R, PROPER)


def test_kl_to_uniform() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]))
    expect = 0.5 * np.log(1.5) + 0.5 * np.log(0.75)  # sum pi log(pi / (1/3))
    torch.testing.assert_close(kl_to_uniform(logits), torch.tensor([expect, 0.0]).float(),
                               atol=1e-6, rtol=1e-6)


def test_kl_to_reference_is_kl_to_uniform_or_minus_entropy() -> None:
    """'kl': sum pi log(pi |A|); 'entropy': sum pi log pi = -H; they differ by log|A| = log 4."""
    from agents.discrete.a2c_returns import kl_to_reference, log_reference

    logits = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125], [0.25] * 4]))
    minus_h = torch.tensor([-1.75 * np.log(2), -np.log(4)]).float()  # -(1/2 + 2/4 + 6/8) ln 2
    torch.testing.assert_close(kl_to_reference(logits, "entropy"), minus_h)
    torch.testing.assert_close(kl_to_reference(logits, "kl"), minus_h + np.log(4))
    torch.testing.assert_close(kl_to_reference(logits, "kl"), kl_to_uniform(logits))
    assert log_reference(4, "kl") == pytest.approx(-np.log(4)) and log_reference(4, "entropy") == 0
    with pytest.raises(ValueError, match="bonus"):
        A2CConfig(bonus="kl-entropy")


def test_a2c_loss_gradient_matches_analytic_eq84_eq85() -> None:
    g = torch.Generator().manual_seed(0)
    B, A, tau, c = 5, 4, 0.3, 0.5
    logits = torch.randn(B, A, generator=g, dtype=torch.float64, requires_grad=True)
    value = torch.randn(B, generator=g, dtype=torch.float64, requires_grad=True)
    action = torch.randint(0, A, (B,), generator=g)
    returns = torch.randn(B, generator=g, dtype=torch.float64)
    a2c_loss(logits, value, action, returns, tau, c)["total"].backward()
    with torch.no_grad():
        pi = torch.softmax(logits, -1)
        logpi = torch.log(pi)
        adv = returns - value
        onehot = torch.nn.functional.one_hot(action, A).double()
        # d/dz [-log pi(a) adv] = -(onehot - pi) adv;  d/dz KL = pi (log pi - sum pi log pi)
        g_logits = (-(onehot - pi) * adv[:, None]
                    + tau * pi * (logpi - (pi * logpi).sum(-1, keepdim=True))) / B
        g_value = c * (value - returns) / B
    torch.testing.assert_close(logits.grad, g_logits)
    torch.testing.assert_close(value.grad, g_value)


# ----------------------------------------------------------------------------- learner

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Discrete(3)


def _rollout(seed: int, T: int = 3, N: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    term = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    term[1, 1] = True
    trunc[0, 2] = True
    final_obs = np.zeros((T, N, 3), np.float32)
    final_obs[1, 1] = rng.normal(size=3)
    final_obs[0, 2] = rng.normal(size=3)
    return {
        "obs": rng.normal(size=(T + 1, N, 3)).astype(np.float32),
        "action": rng.integers(0, 3, size=(T, N)),
        "reward": rng.normal(size=(T, N)).astype(np.float32),
        "terminated": term, "truncated": trunc, "final_obs": final_obs,
    }


@pytest.mark.parametrize(("mode", "bonus"), [("naive", "kl"), ("proper", "kl"),
                                           ("proper", "entropy")])
def test_learner_value_loss_uses_brute_force_returns(mode: str, bonus: str) -> None:
    """The learner's value loss equals 1/2 mean (V - R)^2 with R from a per-env Python loop
    (termination: no bootstrap; truncation: V(final_obs)); 'proper' subtracts tau KL[pi||uniform]
    per step ('kl') or adds tau H(pi) ('entropy', Fig. 1's EntRL)."""
    cfg = A2CConfig(entropy_mode=mode, tau=0.2, gamma=0.9, hidden_sizes=[8], bonus=bonus)
    learner = A2CLearner(cfg, OBS, ACT, seed=0)
    with torch.no_grad():  # a policy far from uniform, so that tau KL_t moves the returns
        torch.manual_seed(0)
        learner.net.pi.weight.normal_(0.0, 2.0)
    ro = _rollout(0)
    T, N = ro["action"].shape
    with torch.no_grad():
        logits, v = learner.net(torch.as_tensor(ro["obs"]).reshape(-1, 3))
        logits, v = logits.reshape(T + 1, N, 3).numpy(), v.reshape(T + 1, N).numpy()
        v_final = learner.net(torch.as_tensor(ro["final_obs"]).reshape(-1, 3))[1]
        v_final = v_final.reshape(T, N).numpy()
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    kl = (p * np.log(p * 3)).sum(-1)  # [T+1, N]
    assert kl.max() > 0.1
    if bonus == "entropy":
        kl = (p * np.log(p)).sum(-1)  # -H: KL against pi_bar = 1
    R = np.zeros((T, N))
    for e in range(N):
        for t in range(T):
            ret, disc, k = 0.0, 1.0, t
            while True:
                r = ro["reward"][k, e] - (cfg.tau * kl[k, e] if mode == "proper" else 0.0)
                ret += disc * r
                disc *= cfg.gamma
                if ro["terminated"][k, e]:
                    break
                if ro["truncated"][k, e]:
                    ret += disc * v_final[k, e]
                    break
                k += 1
                if k == T:
                    ret += disc * v[T, e]
                    break
            R[t, e] = ret
    m = learner.update(ro)
    assert m["loss/value"] == pytest.approx(0.5 * np.mean((v[:T] - R) ** 2), rel=1e-5)
    assert m["return/mean"] == pytest.approx(R.mean(), rel=1e-5)


def test_learner_round_trip_and_rollout_checks(tmp_path) -> None:
    cfg = A2CConfig(entropy_mode="proper", hidden_sizes=[8])
    a = A2CLearner(cfg, OBS, ACT, seed=0)
    a.update(_rollout(1))
    torch.save(a.state_dict(), tmp_path / "a.pt")
    b = A2CLearner(cfg, OBS, ACT, seed=5)
    b.load_state_dict(torch.load(tmp_path / "a.pt", weights_only=True))
    for s in (2, 3):
        assert a.update(_rollout(s)) == b.update(_rollout(s))
    bad = _rollout(4)
    bad["obs"] = bad["obs"][:-1]
    with pytest.raises(ValueError, match="rollout\\['obs'\\]"):
        a.update(bad)
    bad = _rollout(4)
    del bad["final_obs"]
    with pytest.raises(ValueError, match="final_obs"):
        a.update(bad)


def test_policy_samples_pi_and_acts_greedily() -> None:
    cfg = A2CConfig(hidden_sizes=[8])
    learner = A2CLearner(cfg, OBS, ACT, seed=0)
    with torch.no_grad():
        learner.net.pi.bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    pol = ActorCriticPolicy(cfg, OBS, ACT, seed=1)
    pol.set_weights(learner.get_weights())
    obs = np.zeros((20_000, 3), np.float32)
    with torch.no_grad():
        probs = torch.softmax(pol.net(torch.zeros(1, 3))[0][0], -1).numpy()
    acts = pol.act(obs, explore=True)
    assert acts.dtype == np.int64
    np.testing.assert_allclose(np.bincount(acts, minlength=3) / len(acts), probs, atol=0.015)
    assert np.all(pol.act(obs[:5], explore=False) == int(np.argmax(probs)))
