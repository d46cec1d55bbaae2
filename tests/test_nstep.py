"""agents.nstep.NStepAccumulator against a brute-force n-step loop (terminals and truncations
inside the window, several envs)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.nstep import NStepAccumulator


def _random_rollout(num_envs: int, steps: int, seed: int):
    """Per-step arrays; obs encodes (env, global step) so transitions can be matched."""
    rng = np.random.default_rng(seed)
    reward = rng.normal(size=(steps, num_envs))
    u = rng.random((steps, num_envs))
    terminated = u < 0.08
    truncated = (u >= 0.08) & (u < 0.16)
    # make sure both kinds of ends occur inside windows for every env
    terminated[3, :] = True
    truncated[3, :] = False
    truncated[9, :] = True
    terminated[9, :] = False
    action = rng.integers(0, 4, size=(steps, num_envs))
    return reward, terminated, truncated, action


def _obs(env: int, t: int, final: bool = False) -> np.ndarray:
    return np.array([env, t, 1.0 if final else 0.0], dtype=np.float32)


def _brute_force(reward, terminated, truncated, action, n, gamma):
    """For every (env, t): walk forward up to n steps inside the episode."""
    steps, num_envs = reward.shape
    out = {}
    for e in range(num_envs):
        for t in range(steps):
            ret, m, term, ended = 0.0, 0, False, False
            for k in range(n):
                if t + k >= steps:
                    break
                ret += gamma**k * reward[t + k, e]
                m = k + 1
                if terminated[t + k, e] or truncated[t + k, e]:
                    term, ended = bool(terminated[t + k, e]), True
                    break
            if m < n and not ended:
                continue  # window not complete at the end of the data
            last = t + m - 1
            next_obs = _obs(e, last + 1, final=ended)
            out[(e, t)] = (int(action[t, e]), ret, next_obs, 0.0 if term else gamma**m)
    return out


@pytest.mark.parametrize("n", [1, 3, 5])
def test_nstep_matches_brute_force(n: int) -> None:
    gamma, num_envs, steps = 0.9, 3, 40
    reward, terminated, truncated, action = _random_rollout(num_envs, steps, seed=n)
    acc = NStepAccumulator(num_envs, n, gamma)
    got = {}
    for t in range(steps):
        obs = np.stack([_obs(e, t) for e in range(num_envs)])
        done = terminated[t] | truncated[t]
        next_obs = np.stack([_obs(e, t + 1, final=bool(done[e])) for e in range(num_envs)])
        chunk = acc.push(obs, action[t], reward[t], next_obs, terminated[t], truncated[t])
        if chunk is None:
            continue
        for i in range(len(chunk["reward"])):
            key = (int(chunk["obs"][i, 0]), int(chunk["obs"][i, 1]))
            assert key not in got, f"transition {key} emitted twice"
            got[key] = (int(chunk["action"][i]), float(chunk["reward"][i]),
                        chunk["next_obs"][i], float(chunk["discount"][i]))
    expected = _brute_force(reward, terminated, truncated, action, n, gamma)
    assert set(got) == set(expected)
    for key, (a, r, nobs, disc) in expected.items():
        ga, gr, gnobs, gdisc = got[key]
        assert ga == a
        assert gr == pytest.approx(r, rel=1e-5, abs=1e-5)
        np.testing.assert_array_equal(gnobs, nobs)
        assert gdisc == pytest.approx(disc, rel=1e-6)
    # both kinds of window ends were exercised: terminal (discount 0) and, for n > 1, a
    # truncation shortening the window (discount gamma^m > gamma^n)
    assert any(d == 0.0 for *_, d in expected.values())
    assert n == 1 or any(d > gamma**n + 1e-9 for *_, d in expected.values())


def test_nstep_truncation_keeps_bootstrap_termination_zeroes_it() -> None:
    """Hand-checked 3-step window: r = 1, 2, then a time limit (env 0) / termination (env 1)."""
    acc = NStepAccumulator(2, 3, 0.5)
    outs = []
    for t, (r, end) in enumerate([(1.0, False), (2.0, True)]):
        obs = np.full((2, 1), t, np.float32)
        nxt = np.full((2, 1), t + 1, np.float32)
        out = acc.push(obs, np.zeros(2, np.int64), np.array([r, r]), nxt,
                       np.array([False, end]), np.array([end, False]))
        if out is not None:
            outs.append(out)
    (chunk,) = outs
    # rows: env 0 (t=0, t=1), env 1 (t=0, t=1)
    np.testing.assert_allclose(chunk["reward"], [1 + 0.5 * 2, 2, 1 + 0.5 * 2, 2])
    np.testing.assert_allclose(chunk["discount"], [0.25, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(chunk["next_obs"][:, 0], [2, 2, 2, 2])


def test_nstep_rejects_bad_n() -> None:
    with pytest.raises(ValueError, match="n-step"):
        NStepAccumulator(1, 0, 0.99)


def test_float64_observations_are_stored_as_float32_others_as_given() -> None:
    """MuJoCo's float64 observations filled the replay at twice the memory the networks need
    (they read float32); uint8 pictures and integer observations keep their dtype."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(2, 3)) * 1e3  # [N, obs_dim] float64
    nxt = rng.normal(size=(2, 3)) * 1e3
    acc = NStepAccumulator(2, 1, 0.9)
    out = acc.push(obs, np.zeros((2, 1), np.float32), np.ones(2), nxt, np.zeros(2, bool),
                   np.array([False, True]))
    assert out["obs"].dtype == np.float32 and out["next_obs"].dtype == np.float32
    np.testing.assert_array_equal(out["obs"], obs.astype(np.float32))
    np.testing.assert_array_equal(out["next_obs"], nxt.astype(np.float32))
    ints = np.arange(6, dtype=np.uint8).reshape(2, 3)
    out = NStepAccumulator(2, 1, 0.9).push(ints, np.zeros(2, np.int64), np.ones(2), ints,
                                           np.zeros(2, bool), np.zeros(2, bool))
    assert out["obs"].dtype == np.uint8 and out["next_obs"].dtype == np.uint8
