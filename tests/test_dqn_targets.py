"""Soft DQN (§6.2): the three targets (eqs. 81-83) against hand-computed numbers, tau -> 0,
double Q, the learner's target network / persistence, and the exploration policies."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.discrete.config import DQNConfig
from agents.discrete.dqn import DQNLearner, DQNPolicy, apex_epsilon
from agents.discrete.dqn_targets import dqn_target, next_state_value, soft_value

torch.set_num_threads(1)

LN2, LN5 = math.log(2.0), math.log(5.0)


def test_hard_target_eq81() -> None:
    q_next = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])
    y = dqn_target(torch.tensor([1.0, 0.5]), torch.tensor([0.9, 0.0]), q_next, "hard", 0.1)
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.9 * 3.0, 0.5]))


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_soft_targets_eq82_eq83(tau: float) -> None:
    # Q/tau = [0, ln 2, ln 5]: sum exp = 1 + 2 + 5 = 8, |A| = 3
    q_next = tau * torch.tensor([[0.0, LN2, LN5]])
    r, disc = torch.tensor([2.0]), torch.tensor([0.5])
    y_ent = dqn_target(r, disc, q_next, "entropy", tau)
    y_kl = dqn_target(r, disc, q_next, "kl", tau)
    torch.testing.assert_close(y_ent, torch.tensor([2.0 + 0.5 * tau * math.log(8.0)]))
    torch.testing.assert_close(y_kl, torch.tensor([2.0 + 0.5 * tau * math.log(8.0 / 3.0)]))


def test_terminal_discount_zero_gives_reward_only() -> None:
    q_next = torch.randn(4, 6) * 10
    r = torch.randn(4)
    for kind in ("hard", "kl", "entropy"):
        torch.testing.assert_close(dqn_target(r, torch.zeros(4), q_next, kind, 0.3), r)


def test_soft_value_tends_to_hard_max_as_tau_to_zero() -> None:
    q = torch.tensor([[1.0, 3.0, 2.9, -4.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    hard = q.max(-1).values
    gaps = []
    for tau in (1.0, 0.1, 0.01, 1e-3, 1e-4):
        for kl in (True, False):
            gap = (soft_value(q, tau, kl) - hard).abs().max().item()
            assert gap <= tau * math.log(4) + 1e-12  # |tau LSE(Q/tau) - max| <= tau log|A|
            gaps.append(gap)
    assert gaps[-1] < 1e-3 and gaps[-2] < 1e-3
    # the KL variant is always <= max and the entropy variant >= max
    assert torch.all(soft_value(q, 0.5, True) <= hard + 1e-12)
    assert torch.all(soft_value(q, 0.5, False) >= hard - 1e-12)


def test_double_q_evaluates_online_argmax_with_target() -> None:
    q_t = torch.tensor([[1.0, 5.0, 2.0]])
    q_o = torch.tensor([[0.0, -1.0, 3.0]])  # online picks action 2
    assert next_state_value(q_t, "hard", 0.1, q_o).item() == 2.0
    with pytest.raises(ValueError, match="double Q"):
        next_state_value(q_t, "kl", 0.1, q_o)


def test_unknown_target_and_bad_config_raise() -> None:
    with pytest.raises(ValueError, match="unknown DQN target"):
        next_state_value(torch.zeros(1, 2), "softmax", 0.1)
    with pytest.raises(ValueError, match="target"):
        DQNConfig(target="soft")
    with pytest.raises(ValueError, match="double_q"):
        DQNConfig(target="kl", double_q=True)


# ----------------------------------------------------------------------------- learner

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Discrete(2)


def _batch(rng: np.random.Generator, b: int = 16) -> dict[str, np.ndarray]:
    return {
        "obs": rng.normal(size=(b, 3)).astype(np.float32),
        "action": rng.integers(0, 2, size=b),
        "reward": rng.normal(size=b).astype(np.float32),
        "next_obs": rng.normal(size=(b, 3)).astype(np.float32),
        "discount": np.where(rng.random(b) < 0.3, 0.0, 0.99**5).astype(np.float32),
    }


def test_learner_target_net_updates_only_every_interval() -> None:
    cfg = DQNConfig(target="entropy", tau=0.5, target_update_interval=3, hidden_sizes=[8],
                    lr=1e-2)
    learner = DQNLearner(cfg, OBS, ACT, seed=0)
    rng = np.random.default_rng(0)
    probe = torch.tensor(rng.normal(size=(5, 3)), dtype=torch.float32)
    q0 = learner.q_target(probe).clone()
    for i in range(1, 7):
        learner.update(_batch(rng))
        qt = learner.q_target(probe)
        if i % 3:
            torch.testing.assert_close(qt, q0)  # frozen between copies
        else:
            torch.testing.assert_close(qt, learner.q(probe))  # hard copy
            assert not torch.allclose(qt, q0)
            q0 = qt.clone()


def test_learner_uses_batch_discount_and_reports_metrics() -> None:
    """With discount 0 the target is the reward: loss/q is the Huber loss of Q(s,a) - r."""
    cfg = DQNConfig(target="kl", hidden_sizes=[8])
    learner = DQNLearner(cfg, OBS, ACT, seed=1)
    batch = _batch(np.random.default_rng(1))
    batch["discount"][:] = 0.0
    obs = torch.as_tensor(batch["obs"])
    with torch.no_grad():
        q = learner.q(obs).gather(1, torch.as_tensor(batch["action"])[:, None]).squeeze(1)
    diff = (q - torch.as_tensor(batch["reward"])).abs()
    huber = torch.where(diff < 1, 0.5 * diff**2, diff - 0.5).mean().item()
    m = learner.update(batch)
    assert m["loss/q"] == pytest.approx(huber, rel=1e-5)
    assert m["q/target_mean"] == pytest.approx(float(batch["reward"].mean()), rel=1e-5)
    assert m["q/mean"] == pytest.approx(q.mean().item(), rel=1e-5)
    assert 0.0 < m["entropy"] <= math.log(2) + 1e-6


def test_learner_double_q_picks_with_the_online_net_and_evaluates_with_the_target() -> None:
    cfg = DQNConfig(target="hard", double_q=True, hidden_sizes=[8])
    learner = DQNLearner(cfg, OBS, ACT, seed=1)
    with torch.no_grad():  # a target net that disagrees with the online one
        for p in learner.q_target.parameters():
            p.add_(torch.randn_like(p))
    batch = _batch(np.random.default_rng(2))
    batch["discount"][:] = 0.99
    with torch.no_grad():
        nxt = torch.as_tensor(batch["next_obs"])
        pick = learner.q(nxt).argmax(1, keepdim=True)
        q_t = learner.q_target(nxt)
        y = torch.as_tensor(batch["reward"]) + torch.as_tensor(batch["discount"]) * \
            q_t.gather(1, pick).squeeze(1)
    assert not torch.equal(pick.squeeze(1), q_t.argmax(1))  # the two choices differ somewhere
    m = learner.update(batch)
    assert m["q/target_mean"] == pytest.approx(y.mean().item(), rel=1e-5)


def test_learner_state_dict_round_trip_continues_identically(tmp_path) -> None:
    cfg = DQNConfig(target="entropy", target_update_interval=2, hidden_sizes=[8])
    rng = np.random.default_rng(2)
    batches = [_batch(rng) for _ in range(6)]
    a = DQNLearner(cfg, OBS, ACT, seed=3)
    for b in batches[:3]:
        a.update(b)
    torch.save(a.state_dict(), tmp_path / "ckpt.pt")
    b_ = DQNLearner(cfg, OBS, ACT, seed=99)
    b_.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True))
    assert b_.num_updates == 3
    for b in batches[3:]:
        ma, mb = a.update(b), b_.update(b)
        assert ma == mb
    for (k, va), vb in zip(a.get_weights().items(), b_.get_weights().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=k)
        assert va.device.type == "cpu"


# ----------------------------------------------------------------------------- policy

def test_epsilon_schedule_and_apex_rates() -> None:
    cfg = DQNConfig(eps_start=1.0, eps_end=0.1, eps_decay_steps=100, hidden_sizes=[4])
    pol = DQNPolicy(cfg, OBS, ACT)
    assert pol.epsilon == 1.0
    pol.set_env_steps(50)
    assert pol.epsilon == pytest.approx(0.55)
    pol.set_env_steps(10_000)
    assert pol.epsilon == pytest.approx(0.1)
    # with 2 workers each worker's 25 steps are 50 steps of the run: same epsilon
    two = DQNPolicy(cfg, OBS, ACT, worker_index=1, num_workers=2)
    two.set_env_steps(25)
    assert two.epsilon == pytest.approx(0.55)
    assert apex_epsilon(0.4, 7.0, 0, 8) == pytest.approx(0.4)
    assert apex_epsilon(0.4, 7.0, 7, 8) == pytest.approx(0.4**8)
    assert apex_epsilon(0.4, 7.0, 0, 1) == pytest.approx(0.4)
    apex = DQNConfig(per_worker_epsilon=True, hidden_sizes=[4])
    rates = [DQNPolicy(apex, OBS, ACT, worker_index=i, num_workers=3).epsilon for i in range(3)]
    np.testing.assert_allclose(rates, [0.4, 0.4**4.5, 0.4**8])


def test_zero_decay_steps_gives_eps_end_from_the_first_step() -> None:
    """eps_decay_steps = 0 means no schedule: eps_end already at env step 0 (the first act)."""
    cfg = DQNConfig(eps_start=1.0, eps_end=0.05, eps_decay_steps=0, hidden_sizes=[4])
    pol = DQNPolicy(cfg, OBS, ACT)
    for t in (0, 1, 1000):
        pol.set_env_steps(t)
        assert pol.epsilon == pytest.approx(0.05)


def test_greedy_epsilon_and_boltzmann_action_frequencies() -> None:
    cfg = DQNConfig(exploration="boltzmann", tau=0.5, hidden_sizes=[4])
    pol = DQNPolicy(cfg, OBS, gym.spaces.Discrete(3), seed=0)
    obs = np.zeros((20_000, 3), np.float32)
    with torch.no_grad():
        q = pol.q(torch.zeros(1, 3))[0]
    probs = torch.softmax(q / 0.5, -1).numpy()  # pi ∝ exp(Q/tau)
    acts = pol.act(obs, explore=True)
    assert acts.dtype == np.int64 and acts.shape == (20_000,)
    np.testing.assert_allclose(np.bincount(acts, minlength=3) / 20_000, probs, atol=0.015)
    assert np.all(pol.act(obs[:10], explore=False) == int(q.argmax()))

    eps_cfg = DQNConfig(exploration="epsilon", eps_start=0.3, eps_end=0.3, hidden_sizes=[4])
    pol = DQNPolicy(eps_cfg, OBS, gym.spaces.Discrete(3), seed=0)
    with torch.no_grad():
        greedy = int(pol.q(torch.zeros(1, 3))[0].argmax())
    acts = pol.act(obs, explore=True)
    # P(greedy) = 1 - eps + eps/|A| = 0.8
    assert np.mean(acts == greedy) == pytest.approx(0.8, abs=0.015)


def test_td_losses_by_hand() -> None:
    """'mse' is eq. 44's 1/2 squared error; 'huber' is quadratic below 1, linear above."""
    from agents.discrete.dqn import td_loss

    q, y = torch.tensor([1.0, 0.0, 3.0]), torch.tensor([0.5, 0.0, 0.0])
    assert td_loss(q, y, "mse").item() == pytest.approx((0.5 * 0.25 + 0.0 + 0.5 * 9.0) / 3)
    assert td_loss(q, y, "huber").item() == pytest.approx((0.5 * 0.25 + 0.0 + 2.5) / 3)


def test_boltzmann_entropy_is_that_of_softmax_q_over_tau() -> None:
    from agents.discrete.dqn_targets import boltzmann_entropy

    q = torch.tensor([[0.0, 0.1], [1.0, 1.0]])
    p = torch.softmax(q / 0.05, -1)  # row 0: [1/(1+e^2), e^2/(1+e^2)]
    want = -(p * p.log()).sum(-1)
    torch.testing.assert_close(boltzmann_entropy(q, 0.05), want)
    assert want[1].item() == pytest.approx(math.log(2))


@pytest.mark.parametrize(("kind", "ends"), [("entropy", "truncated"), ("kl", "truncated"),
                                            ("entropy", "terminated"), ("hard", "truncated")])
def test_learner_nstep_soft_target_end_to_end_by_hand(kind: str, ends: str) -> None:
    """NStepAccumulator (n = 3, gamma = 0.9) -> DQNLearner: an episode of rewards 1, 2, 3 that
    ends at its 3rd step. Q_target(s', .) = tau [0, ln 2, ln 5] (head bias, zero weights), so the
    bootstrap value is tau ln 8 (eq. 83), tau ln(8/3) (eq. 82) or tau ln 5 (eq. 81); a time limit
    bootstraps with gamma^m from the true final obs, a termination with 0."""
    from agents.nstep import NStepAccumulator

    tau, gamma = 0.5, 0.9
    acc = NStepAccumulator(1, 3, gamma)
    for t, r in enumerate((1.0, 2.0, 3.0)):
        last = t == 2
        term = np.array([last and ends == "terminated"])
        trunc = np.array([last and ends == "truncated"])
        out = acc.push(np.full((1, 3), t, np.float32), np.array([t % 2]), np.array([r]),
                       np.full((1, 3), t + 1, np.float32), term, trunc)
        assert (out is None) != last
    R = np.array([1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3, 3.0])  # 5.23, 4.7, 3
    disc = np.array([0.729, 0.81, 0.9]) if ends == "truncated" else np.zeros(3)
    np.testing.assert_allclose(out["reward"], R, rtol=1e-6)
    np.testing.assert_allclose(out["discount"], disc, rtol=1e-6)
    np.testing.assert_array_equal(out["next_obs"], np.full((3, 3), 3.0))  # the final obs

    learner = DQNLearner(DQNConfig(target=kind, tau=tau, hidden_sizes=[8], loss="mse"),
                         OBS, gym.spaces.Discrete(3), seed=0)
    with torch.no_grad():
        learner.q_target.head.weight.zero_()
        learner.q_target.head.bias.copy_(tau * torch.tensor([0.0, LN2, LN5]))
    v_next = {"entropy": tau * math.log(8.0), "kl": tau * math.log(8.0 / 3.0),
              "hard": tau * LN5}[kind]
    y = R + disc * v_next
    with torch.no_grad():
        q = learner.q(torch.as_tensor(out["obs"])).gather(
            1, torch.as_tensor(out["action"])[:, None]).squeeze(1).double().numpy()
    m = learner.update(out)
    assert m["q/target_mean"] == pytest.approx(y.mean(), rel=1e-6)
    assert m["loss/q"] == pytest.approx(np.mean(0.5 * (q - y) ** 2), rel=1e-5)  # eq. 44
