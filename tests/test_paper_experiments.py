"""Paper experiments (Haarnoja et al. 2017, §5.2-5.3): behaviour labels of the tasks at hand-placed
states, their aggregation into mode shares, the ``softq compare`` mode report, and a quick
inline swimmer run that learns."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from distributed.evaluation import evaluate_policy, mode_label, mode_summary
from envs import make_env
from envs.ant_tasks import MAZE_UPPER_PASSAGE_MIN_DISTANCE, direction_sector
from envs.multigoal import GOALS
from launch.cli import main
from launch.compare_cmd import read_metric, read_scalars
from launch.config import load_config, save_config


# ---------------------------------------------------------------------- labels
@pytest.mark.parametrize("deg, label", [
    (0, "E"), (22.4, "E"), (22.6, "NE"), (45, "NE"), (90, "N"), (135, "NW"), (179, "W"),
    (-179, "W"), (-90, "S"), (-67.6, "S"), (-67.4, "SE"), (-22.6, "SE"), (-22.4, "E"),
])
def test_direction_sector_at_exact_angles(deg, label):
    rad = np.deg2rad(deg)
    assert direction_sector(np.array([2 * np.cos(rad), 2 * np.sin(rad)])) == label
    assert direction_sector(np.array([0.9 * np.cos(rad), 0.9 * np.sin(rad)])) == "none"  # < 1 m


def _unwrapped(env_id: str, **kwargs):
    env = make_env(env_id, seed=0, **kwargs).unwrapped
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("x, finish, label", [
    (2.5, 2.0, "forward"), (1.9, 2.0, "none"), (-1.9, 2.0, "none"), (-2.5, 2.0, "backward"),
    (0.6, 0.5, "forward"), (-0.6, 0.5, "backward"), (0.0, 0.5, "none"),
])
def test_swimmer_mode_at_hand_placed_positions(x, finish, label):
    env = _unwrapped("softq/SwimmerFinishLine-v0", finish_line_x=finish)
    qpos, qvel = np.zeros(env.model.nq), np.zeros(env.model.nv)
    qpos[0] = x
    env.set_state(qpos, qvel)  # a straight body at rest stays put under zero torque
    info = env.step(np.zeros(2, dtype=np.float32))[4]
    assert info["mode"] == label and mode_label(info) == label


def _place_ant(env, com_xy):
    """Put the ant at rest with its centre of mass at ``com_xy`` and step once with a = 0."""
    qpos, qvel = env.init_qpos.copy(), np.zeros(env.model.nv)
    env.set_state(qpos, qvel)
    qpos[0:2] += np.asarray(com_xy) - env.com_xy()
    env.set_state(qpos, qvel)
    return env.step(np.zeros(8, dtype=np.float32))[4]


@pytest.mark.parametrize("env_id", ["softq/AntAnyDirection-v0", "softq/AntHallwayWide-v0"])
@pytest.mark.parametrize("offset, label", [
    ((3.0, 0.2), "E"), ((2.0, 2.1), "NE"), ((-0.3, 2.5), "N"), ((-2.0, -1.9), "SW"),
    ((0.5, -1.5), "S"), ((0.4, 0.5), "none"),
])
def test_ant_running_direction_is_measured_from_the_reset_position(env_id, offset, label):
    env = _unwrapped(env_id)
    start = env.com_xy()  # the reset's centre of mass (reset noise moves it off the origin)
    info = _place_ant(env, start + np.asarray(offset))
    assert info["mode"] == label


@pytest.mark.parametrize("env_id, com, label", [
    ("softq/AntMaze-v0", (8.5, 0.0), "target"),
    ("softq/AntMaze-v0", (8.5 - MAZE_UPPER_PASSAGE_MIN_DISTANCE + 0.05, 0.0), "target"),
    ("softq/AntMaze-v0", (5.2, 2.5), "none"),  # upper passage at the barrier: 4.14 m away
    ("softq/AntMaze-v0", (0.0, 0.0), "none"),
    ("softq/AntUMaze-v0", (0.5, 6.5), "target"), ("softq/AntUMaze-v0", (0.0, 0.0), "none"),
    ("softq/AntUMaze-v0", (5.0, 6.0), "none"),
    ("softq/AntMazeCompact-v0", (3.0, -1.5), "target"),  # 1.58 m < hypot(1.75, 0.75) = 1.904
    ("softq/AntMazeCompact-v0", (1.0, 2.0), "none"),  # upper passage at the barrier: 3.2 m
    ("softq/AntUMazeCompact-v0", (0.5, 4.5), "target"),
    ("softq/AntUMazeCompact-v0", (0.0, 0.0), "none"),
])
def test_target_tasks_label_reaching_the_target(env_id, com, label):
    info = _place_ant(_unwrapped(env_id), com)
    assert info["mode"] == label


# ---------------------------------------------------------------------- aggregation
def test_mode_summary_shares_and_coverage():
    out = mode_summary(["E", "none", "N", "E", "E", "none", "W", "E"])
    assert out["mode_shares"] == {"E": 0.5, "N": 0.125, "W": 0.125, "none": 0.25}
    assert out["modes_covered"] == 3
    assert mode_summary(["none", "none"]) == {"mode_shares": {"none": 1.0}, "modes_covered": 0}
    assert mode_summary([None, None]) == {} and mode_summary([]) == {}


def test_a_mode_share_an_earlier_evaluation_had_is_logged_as_0_when_no_episode_ends_in_it():
    """TensorBoard joins the points it has: a share left out at an evaluation (multigoal-quick,
    4k steps: goal2 0.075 at step 2000, absent at 4000) drew as if it had held, not as 0."""
    from distributed.driver import mode_share_scalars

    seen: set[str] = set()
    assert mode_share_scalars({"goal2": 0.25, "none": 0.75}, seen) == {
        "eval/mode_share/goal2": 0.25, "eval/mode_share/none": 0.75}
    assert mode_share_scalars({"goal0": 1.0}, seen) == {
        "eval/mode_share/goal0": 1.0, "eval/mode_share/goal2": 0.0, "eval/mode_share/none": 0.0}
    assert seen == {"goal0", "goal2", "none"}


class _GoToSideGoal:
    """Heads for the goal on the side (x sign) it starts on, and stays there."""

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        right, left = GOALS[np.argmax(GOALS[:, 0])], GOALS[np.argmin(GOALS[:, 0])]  # [2]
        goal = np.where(obs[:, :1] >= 0, right, left)  # [N, 2]
        return np.clip(goal - obs, -1.0, 1.0).astype(np.float32)


def test_evaluation_mode_shares_match_brute_force():
    episodes, seed = 24, 7
    result = evaluate_policy(_GoToSideGoal(), "softq/MultiGoal-v0", episodes, seed=seed,
                             max_parallel=5)
    # brute force: the same resets (env i seeded seed + i) tell which side each episode starts
    right, left = int(np.argmax(GOALS[:, 0])), int(np.argmin(GOALS[:, 0]))
    starts = [make_env("softq/MultiGoal-v0", seed=seed + i).reset(seed=seed + i)[0][0]
              for i in range(episodes)]
    n_right = sum(x >= 0 for x in starts)
    assert 0 < n_right < episodes
    assert result["mode_shares"] == pytest.approx(
        {f"goal{right}": n_right / episodes, f"goal{left}": 1 - n_right / episodes})
    assert result["modes_covered"] == 2


def test_evaluation_discounted_return_matches_brute_force():
    """Figure 5's y-axis: sum_t gamma^t r_t per episode, checked against stepping the same
    seeded envs by hand; gamma = 1 gives the undiscounted return."""
    episodes, seed, gamma = 6, 3, 0.9
    env_id, horizon = "softq/MultiGoal-v0", 30
    result = evaluate_policy(_GoToSideGoal(), env_id, episodes, seed=seed, max_parallel=4,
                             max_episode_steps=horizon, gamma=gamma)
    expected, undiscounted, lengths, ended_by_env, first_obs = [], [], [], [], []
    for i in range(episodes):
        env = make_env(env_id, seed=seed + i, max_episode_steps=horizon)
        obs, _ = env.reset(seed=seed + i)
        first_obs.append(obs)
        rewards, done = [], False
        while not done:
            action = _GoToSideGoal().act(obs[None], explore=False)[0]
            obs, r, terminated, truncated, _ = env.step(action)
            rewards.append(r)
            done = terminated or truncated
        expected.append(sum(gamma ** t * r for t, r in enumerate(rewards)))
        undiscounted.append(sum(rewards))
        lengths.append(len(rewards))
        ended_by_env.append(terminated)
    assert result["discounted_returns"] == pytest.approx(expected, rel=1e-9)
    # each episode's (s0, a0), for `softq eval`'s critic check
    np.testing.assert_array_equal(result["first_obs"], np.stack(first_obs))
    np.testing.assert_array_equal(result["first_actions"],
                                  _GoToSideGoal().act(np.stack(first_obs), explore=False))
    assert result["returns"] == pytest.approx(undiscounted, rel=1e-9)
    assert not np.allclose(expected, undiscounted)  # the discount matters on these episodes
    # episode lengths; multi-goal episodes all run to the time limit (none ends by termination:
    # the CartPole test below has both kinds)
    assert result["lengths"] == lengths and result["length_mean"] == pytest.approx(np.mean(lengths))
    assert result["terminated_share"] == pytest.approx(np.mean(ended_by_env))
    assert result["discounted_return_mean"] == pytest.approx(np.mean(expected))
    assert result["discounted_return_std"] == pytest.approx(np.std(expected))
    undisc = evaluate_policy(_GoToSideGoal(), env_id, episodes, seed=seed, max_parallel=4,
                             max_episode_steps=horizon, gamma=1.0)
    assert undisc["discounted_returns"] == pytest.approx(undiscounted, rel=1e-9)
    assert "discounted_return_mean" not in evaluate_policy(
        _GoToSideGoal(), env_id, 1, seed=seed, max_episode_steps=horizon)
    with pytest.raises(ValueError, match="gamma must be in"):
        evaluate_policy(_GoToSideGoal(), env_id, 1, seed=seed, gamma=1.5)


class _PushLeft:
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.int64)


def test_evaluation_lengths_and_terminations_match_brute_force():
    """CartPole pushed left falls in 8-11 steps: with a 10-step limit some episodes end by
    termination (the pole fell), others by the time limit; checked against stepping by hand."""
    episodes, seed, horizon = 8, 0, 10
    result = evaluate_policy(_PushLeft(), "CartPole-v1", episodes, seed=seed, max_parallel=3,
                             max_episode_steps=horizon)
    lengths, fell = [], []
    for i in range(episodes):
        env = make_env("CartPole-v1", seed=seed + i, max_episode_steps=horizon)
        env.reset(seed=seed + i)
        t, terminated, truncated = 0, False, False
        while not (terminated or truncated):
            _, _, terminated, truncated, _ = env.step(0)
            t += 1
        lengths.append(t)
        fell.append(terminated)
    assert 0 < sum(fell) < episodes  # both kinds of ending occur
    assert result["lengths"] == lengths
    assert result["length_mean"] == pytest.approx(np.mean(lengths))
    assert result["terminated_share"] == pytest.approx(np.mean(fell))
    assert result["returns"] == pytest.approx(lengths)  # CartPole pays 1 per step


# ---------------------------------------------------------------------- softq compare
def _fake_run(root, name, preset, curve):
    """A run directory with config.yaml and eval events: curve = [(step, return, shares)]."""
    run = root / name
    (run / "tb").mkdir(parents=True)
    save_config(load_config(preset), run / "config.yaml")
    writer = SummaryWriter(str(run / "tb"))
    for step, ret, shares in curve:
        writer.add_scalar("eval/return_mean", ret, step)
        writer.add_scalar("eval/modes_covered", float(sum(k != "none" for k in shares)), step)
        for label, share in shares.items():
            writer.add_scalar(f"eval/mode_share/{label}", share, step)
    writer.close()
    return run


def test_compare_reports_share_of_seeds_in_the_better_mode(tmp_path, capsys):
    sql = "swimmer-finish-line-sql-quick"
    ddpg = "swimmer-finish-line-ddpg-quick"
    runs = [
        _fake_run(tmp_path, "s0", sql, [(1000, 10, {"none": 1.0}), (2000, 50, {"forward": 0.9,
                                                                            "none": 0.1})]),
        _fake_run(tmp_path, "s1", sql, [(1000, 12, {"backward": 0.5, "none": 0.5}),
                                        (2000, 40, {"forward": 0.6, "backward": 0.4})]),
        # found it at step 1000, lost it at the end: "ever" but not "final"
        _fake_run(tmp_path, "s2", sql, [(1000, 30, {"forward": 0.8, "none": 0.2}),
                                        (2000, 20, {"backward": 1.0})]),
        _fake_run(tmp_path, "d0", ddpg, [(1000, 5, {"backward": 1.0}),
                                         (2000, 8, {"backward": 1.0})]),
        _fake_run(tmp_path, "d1", ddpg, [(1000, 5, {"none": 1.0}), (2000, 9, {"forward": 0.5,
                                                                          "none": 0.5})]),
    ]
    out, report = tmp_path / "c.png", tmp_path / "c.json"
    assert main(["compare", *map(str, runs), "--mode", "forward", "--out", str(out),
                 "--report", str(report)]) == 0
    text = capsys.readouterr().out
    rep = json.loads(report.read_text())
    s, d = rep[sql], rep[ddpg]
    assert s["seeds"] == 3 and d["seeds"] == 2
    assert s["final_mean"] == pytest.approx((50 + 40 + 20) / 3)
    assert s["modes"]["found_share"] == pytest.approx(2 / 3)  # 0.9, 0.6 > 0.5; 0 at the end
    assert s["modes"]["found_ever_share"] == pytest.approx(1.0)
    assert d["modes"]["found_share"] == 0.0  # 0.5 is no majority
    assert d["modes"]["found_ever_share"] == 0.0
    # modes covered at the final eval: s0 1 (forward), s1 2, s2 1 (backward)
    assert s["modes"]["modes_covered_mean"] == pytest.approx(4 / 3)
    assert s["modes"]["modes_union"] == ["backward", "forward"]
    assert s["modes"]["final_shares_mean"]["forward"] == pytest.approx(0.5)  # (0.9 + 0.6 + 0)/3
    assert "found 'forward': 67% of seeds at the end, 100% at some evaluation" in text
    assert out.stat().st_size > 0
    steps, values = read_scalars(runs[0], "eval/mode_share/forward")
    assert steps.tolist() == [2000] and values.tolist() == pytest.approx([0.9])
    steps, values = read_metric(runs[0], "eval/mode_share/forward")  # 0 where not logged
    assert steps.tolist() == [1000, 2000] and values.tolist() == pytest.approx([0.0, 0.9])
    steps, values = read_metric(runs[3], "eval/mode_share/forward")  # never logged at all
    assert steps.tolist() == [1000, 2000] and values.tolist() == [0.0, 0.0]


# ---------------------------------------------------------------------- a quick run learns
def test_quick_swimmer_sql_learns_the_bonus_direction(tmp_path, capsys):
    """The bi-directional swimmer in miniature: with the finish line 0.1 m ahead, 1,000 warm-up
    steps and 2,000 updates, SQL swims forward. The untrained sampler (evaluated at step 1,000)
    ends episodes on either side of the start; the trained one mostly past the line (the bonus
    side) and rarely as far behind: 48% forward and 10% backward over 100 evaluation episodes
    (`softq eval`; 55% and 3% before the replay had a seed stream of its own), so 20
    episodes are well within the bounds below."""
    run = tmp_path / "sw"
    assert main(["train", "swimmer-finish-line-sql-quick", "--inline", "--out", str(run),
                 "--seed", "0", "--set", "env.kwargs.finish_line_x=0.1",
                 "--set", "run.total_env_steps=3000", "--set", "replay.min_size=1001",
                 "--set", "run.eval_every=1000", "--set", "run.eval_episodes=20",
                 "--set", "run.checkpoint_every=0"]) == 0
    capsys.readouterr()
    steps, forward = read_metric(run, "eval/mode_share/forward")
    _, backward = read_metric(run, "eval/mode_share/backward")
    assert steps.tolist() == [1000, 2000, 3000]
    assert backward[0] > 0.0, backward  # untrained: some episodes drift backward
    assert forward[-1] >= 0.35 and backward[-1] <= forward[-1] / 3, (forward, backward)
    # Figure 3a's curve: the farthest forward any training episode got, at every log step
    log_steps, best_x = read_metric(run, "train/max_com_x")
    assert log_steps[-1] == 3000 and len(log_steps) >= 3
    assert np.all(np.diff(best_x) >= 0) and best_x[-1] >= 0.1, best_x  # crossed the line
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train/max_com_x"] == pytest.approx(best_x[-1], rel=1e-6)


def test_bench_rate_excludes_the_warm_up():
    """Logs at 600 and 1000 (warm-up, untimed), 2000 and 3000: 2000 timed steps over
    1000/100 + 1000/300 s = 13.33 s -> 150 steps/s; the warm-up rates (999, 5) do not count."""
    from launch.bench.ddpg import timed_rate

    steps = np.array([600.0, 1000.0, 2000.0, 3000.0])
    assert timed_rate(steps, np.array([5.0, 999.0, 100.0, 300.0]), 1000) == pytest.approx(150.0)
    with pytest.raises(RuntimeError, match="after the warm-up"):
        timed_rate(steps[:2], np.array([5.0, 999.0]), 1000)


@pytest.mark.parametrize("preset", ["multigoal-ddpg-quick", "swimmer-finish-line-sql-quick"])
def test_exploring_evaluation_runs_batches_of_any_size(preset):
    """`softq eval --explore` steps episodes in batches of max_parallel envs: OU noise restarts
    for each batch, also for a smaller last one (it used to refuse the batch's reset mask)."""
    from distributed.evaluation import evaluation_policy
    from distributed.learner import LearnerRunner, probe_spaces
    from launch.config import load_config

    cfg = load_config(preset, ["env.max_episode_steps=20"])
    assert cfg.agent.ou_sigma > 0 and getattr(cfg.agent, "exploration_noise", "ou") == "ou"
    spaces = probe_spaces(cfg)
    weights = LearnerRunner(cfg, *spaces, device="cpu").learner.get_weights()
    policy = evaluation_policy(cfg, *spaces, 0, weights)
    result = evaluate_policy(policy, cfg.env.id, 5, seed=0, max_episode_steps=20,
                             env_kwargs=cfg.env.kwargs, explore=True, max_parallel=2)
    assert len(result["returns"]) == 5 and result["length_mean"] == 20
