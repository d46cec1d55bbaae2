"""Learning: the discrete algorithms of Schulman et al. 2017 solve CartPole-v1 through the real
inline runtime (RolloutWorker -> replay or lockstep rollouts -> learner -> weights -> final eval).

Each preset (cartpole-soft-dqn: soft DQN with the entropy target, eq. 83; cartpole-a2c: A2C,
eq. 79; cartpole-soft-q-a2c: A2C-style soft Q-learning, §6.3) must reach a mean greedy return of
at least 475 (500 is the cap) over 20 evaluation episodes within its fixed step budget: the
A2Cs at their final evaluation; soft DQN at one of its evaluations, because DQN's greedy
policy on CartPole oscillates once it is solved (seeds 0-7: every one reached 500 by 40k steps,
and 5 of 8 were back at 113-333 at 40k). The budgets were checked on several seeds (see the
presets' comments), not tuned to one.
"""

import pytest

from distributed.inline import train_inline
from launch.compare_cmd import read_scalars
from launch.config import load_config


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cartpole-soft-dqn", "cartpole-a2c", "cartpole-soft-q-a2c"])
def test_cartpole_reaches_475(preset: str, tmp_path) -> None:
    cfg = load_config(preset)
    assert cfg.env.id == "CartPole-v1" and cfg.runtime.inline
    assert cfg.run.eval_episodes == 20 and cfg.run.eval_every > 0
    summary = train_inline(cfg, tmp_path)
    assert summary["env_steps"] == cfg.run.total_env_steps
    _, eval_returns = read_scalars(tmp_path, "eval/return_mean")
    reached = max(eval_returns) if cfg.algo == "dqn" else summary["eval/return_mean"]
    assert reached >= 475.0, (eval_returns, summary)
    if summary["eval/return_mean"] < 475.0:
        return  # soft DQN after its oscillation: the checks below read a solved final policy
    assert summary["eval/length_mean"] == pytest.approx(summary["eval/return_mean"])  # 1 a step
    _, train_lengths = read_scalars(tmp_path, "rollout/length_mean")  # the same for training
    _, train_returns = read_scalars(tmp_path, "rollout/return_mean")
    assert len(train_lengths) > 0 and train_lengths == pytest.approx(train_returns)
    # reward 1 per step: an L-step episode's discounted return is (1 - gamma^L) / (1 - gamma)
    gamma = cfg.agent.gamma
    full = (1 - gamma ** 500) / (1 - gamma)
    if summary["eval/return_mean"] == 500.0:
        assert summary["eval/discounted_return_mean"] == pytest.approx(full, rel=1e-6)
    else:
        lowest = 0.5 * (1 - gamma ** 475) / (1 - gamma)  # mean >= 475: <= 500 steps missing
        assert lowest < summary["eval/discounted_return_mean"] < full
