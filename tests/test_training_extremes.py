"""Figure 3's training-rollout extremes (Haarnoja et al. 2017): the per-episode max of the
swimmer's ``info["com_x"]`` and min of the ant target tasks' ``info["distance_to_target"]``
(``EpisodeTracker``, across same-step autoresets), the driver's best-so-far over the run (logged,
summarised, checkpointed), and ``softq compare --above/--below``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from distributed.checkpoint import load_checkpoint, save_checkpoint
from distributed.driver import Counters, Driver
from distributed.evaluation import evaluation_seeds
from distributed.inline import restore
from distributed.learner import LearnerRunner, probe_spaces
from distributed.rollout import EpisodeTracker, RolloutWorker, step_info
from envs.factory import make_env, make_vector_env
from launch.cli import main
from launch.compare_cmd import read_scalars, threshold_report
from launch.config import load_config, save_config


# ---------------------------------------------------------------------- EpisodeTracker
class _Scripted(gym.Env):
    """Step t of episode k reports ``com_x = values[k][t]`` and ``distance_to_target = 10 -
    com_x`` (neither key when the value is None); the episode truncates after
    ``len(values[k])`` steps. The reset info carries trap values (com_x 1000, distance -1000)
    that must never count: under same-step autoreset they sit in ``infos`` for the envs that
    just finished."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, values: list[list[float]]):
        self.values, self.episode, self.t = values, -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.zeros(1, np.float32), {"com_x": 1000.0, "distance_to_target": -1000.0}

    def step(self, action):
        ep = self.values[self.episode]
        x = ep[self.t]
        self.t += 1
        info = {} if x is None else {"com_x": float(x), "distance_to_target": 10.0 - x}
        return np.zeros(1, np.float32), 0.0, False, self.t >= len(ep), info


def _track(venv: gym.vector.VectorEnv, steps: int) -> list[dict[str, float]]:
    """Step ``venv`` with random actions through an EpisodeTracker; the finished episodes."""
    venv.reset(seed=0)
    tracker = EpisodeTracker(venv.num_envs)
    for _ in range(steps):
        _, reward, terminated, truncated, infos = venv.step(venv.action_space.sample())
        tracker.step(reward, np.logical_or(terminated, truncated), infos)
    return tracker.drain()


def _same_step(fns: list) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def test_tracker_reads_final_info_for_finished_envs_and_step_info_for_the_others():
    """env 0 (2-step episodes) finishes at vector steps 2 and 4, env 1 (one 4-step episode) at 4.
    Env 1's peak (5.0) comes on step 2, when only env 0 finished: its value is in ``infos``, not
    in ``final_info``; env 0's first episode peaks on its last step, which only ``final_info``
    holds. Env 0's second episode reports nothing on its last step, where ``infos`` has its
    reset info. Reading reset info would give 1000 / -1000."""
    values = [[[1.0, 2.0], [3.0, None], [0.0, 0.0]], [[0.0, 5.0, 1.0, 2.0], [0.0] * 4]]
    episodes = _track(_same_step([lambda v=v: _Scripted(v) for v in values]), steps=4)
    # finish order: (step 2, env 0), (step 4, env 0), (step 4, env 1)
    assert [ep["max_com_x"] for ep in episodes] == [2.0, 3.0, 5.0]
    assert [ep["min_distance_to_target"] for ep in episodes] == [8.0, 7.0, 5.0]
    assert [ep["length"] for ep in episodes] == [2.0, 2.0, 4.0]


class _Game(gym.Env):
    """Atari- and multi-goal-like infos: the last step of a 3-step episode reports
    ``raw_episode_return`` 7 and ``goal_index`` 2; every step before it and the reset report
    ``goal_index`` -1."""

    observation_space = _Scripted.observation_space
    action_space = _Scripted.action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {"goal_index": -1}

    def step(self, action):
        self.t += 1
        info = {"goal_index": 2, "raw_episode_return": 7.0} if self.t == 3 else {"goal_index": -1}
        return np.zeros(1, np.float32), 1.0, self.t == 3, False, info


def test_tracker_reports_the_extremes_of_episodes_still_running():
    """Same envs as above. After 1 step nothing has finished: the best running values are
    env 0's 1.0 and env 1's 0.0. After step 2 env 0's episode has ended (2.0 went to its
    finished episode and its new episode has no value yet) and env 1 peaked at 5.0; the reset
    trap values (1000 / -1000) must not count."""
    values = [[[1.0, 2.0], [3.0, None], [0.0, 0.0]], [[0.0, 5.0, 1.0, 2.0], [0.0] * 4]]
    venv = _same_step([lambda v=v: _Scripted(v) for v in values])
    venv.reset(seed=0)
    tracker = EpisodeTracker(2)
    seen = []
    for _ in range(3):
        _, reward, terminated, truncated, infos = venv.step(venv.action_space.sample())
        tracker.step(reward, np.logical_or(terminated, truncated), infos)
        seen.append(tracker.in_progress_extremes())
    assert seen[0] == {"max_com_x": 1.0, "min_distance_to_target": 9.0}
    assert seen[1] == {"max_com_x": 5.0, "min_distance_to_target": 5.0}  # env 1 only
    assert seen[2] == {"max_com_x": 5.0, "min_distance_to_target": 5.0}  # env 0 reported 3.0
    assert [ep["max_com_x"] for ep in tracker.drain()] == [2.0]
    assert EpisodeTracker(2).in_progress_extremes() == {}  # nothing reported yet


def test_tracker_keeps_raw_return_and_goal_index_of_the_last_step():
    assert _track(_same_step([_Game, _Game]), steps=3) == [
        {"return": 3.0, "length": 3.0, "raw_return": 7.0, "goal_index": 2.0}] * 2


def test_tracker_counts_an_atari_game_once_not_each_life():
    """With episodic life every lost life ends a learner episode (info['life_lost']); the
    training statistics take whole games: one episode per game, its clipped return and its
    steps summed over the lives, with the raw game return."""
    pytest.importorskip("ale_py")
    venv = make_vector_env("ALE/Breakout-v5", 1, 0, fire_reset=True)
    venv.reset(seed=0)
    venv.action_space.seed(0)
    tracker = EpisodeTracker(1)
    games, clipped, steps, life_ends = [], 0.0, 0, 0
    while not games:
        _, reward, terminated, truncated, infos = venv.step(venv.action_space.sample())
        done = np.logical_or(terminated, truncated)
        tracker.step(reward, done, infos)
        clipped, steps = clipped + float(reward[0]), steps + 1
        raw = step_info(infos, done, "raw_episode_return")
        if raw is not None and raw[1][0]:
            games.append(float(raw[0][0]))
        elif done[0]:
            life_ends += 1
    assert life_ends == 4  # five lives: four learner terminals before the game ended
    assert tracker.drain() == [{"return": clipped, "length": float(steps), "raw_return": games[0]}]


def _oracle_and_tracker(env_id: str, key: str, horizons: list[int], steps: int, seed: int):
    """Run the vector env with the tracker and, beside it, one plain env per slot stepped with the
    same actions (its own step() infos, reset by hand): per finished episode (in finishing
    order) the tracker's episode dict and the oracle's list of ``info[key]`` over its steps."""
    fns = [lambda i=i, h=h: make_env(env_id, seed=seed + i, max_episode_steps=h)
           for i, h in enumerate(horizons)]
    if len(set(horizons)) == 1:  # the factory the workers use
        venv = make_vector_env(env_id, len(horizons), seed, max_episode_steps=horizons[0])
    else:
        venv = _same_step(fns)
    singles = [fn() for fn in fns]
    venv.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    venv.action_space.seed(seed)
    tracker = EpisodeTracker(len(horizons))
    current: list[list[float]] = [[] for _ in horizons]
    oracle: list[list[float]] = []
    for _ in range(steps):
        action = venv.action_space.sample()
        _, reward, terminated, truncated, infos = venv.step(action)
        done = np.logical_or(terminated, truncated)
        tracker.step(reward, done, infos)
        for i, env in enumerate(singles):
            _, r, te, tr, info = env.step(action[i])
            assert r == pytest.approx(reward[i]) and (te or tr) == done[i]  # same trajectory
            current[i].append(float(info[key]))
            if te or tr:
                oracle.append(current[i])
                current[i] = []
                env.reset()
    venv.close()
    return tracker.drain(), oracle


@pytest.mark.parametrize("env_id, key, field, extreme, horizons", [
    ("softq/SwimmerFinishLine-v0", "com_x", "max_com_x", max, [5, 5]),
    ("softq/SwimmerFinishLine-v0", "com_x", "max_com_x", max, [3, 5]),
    ("softq/AntMaze-v0", "distance_to_target", "min_distance_to_target", min, [5, 5]),
    ("softq/AntMaze-v0", "distance_to_target", "min_distance_to_target", min, [3, 5]),
])
def test_tracker_extremes_match_brute_force_on_real_tasks(env_id, key, field, extreme, horizons):
    """Random actions for 12 vector steps across autoresets (equal horizons: both envs finish
    together; staggered: one finishes while the other runs on). The per-episode extreme equals
    the one over the values a plain copy of each env reported, and in some episode it is the
    last step's (only in final_info): reading the reset info or skipping it would differ."""
    episodes, oracle = _oracle_and_tracker(env_id, key, horizons, steps=12, seed=3)
    assert len(episodes) == len(oracle) >= 4
    assert [ep["length"] for ep in episodes] == [float(len(o)) for o in oracle]
    assert [ep[field] for ep in episodes] == pytest.approx([extreme(o) for o in oracle],
                                                           abs=1e-12)
    assert any(extreme(o) == o[-1] and extreme(o[:-1]) != o[-1] for o in oracle)
    assert all("return" in ep and "raw_return" not in ep for ep in episodes)


def test_other_tasks_report_no_extremes():
    episodes = _track(make_vector_env("softq/MultiGoal-v0", 2, 0, max_episode_steps=3), steps=3)
    assert len(episodes) == 2
    assert all("goal_index" in ep and "max_com_x" not in ep
               and "min_distance_to_target" not in ep for ep in episodes)


def test_rollout_worker_reports_episode_extremes():
    cfg = load_config("swimmer-finish-line-sql-quick", [
        "agent.hidden_sizes=[16, 16]", "env.max_episode_steps=4", "runtime.envs_per_worker=2"])
    worker = RolloutWorker(cfg)
    report = worker.collect(9)
    worker.close()
    assert len(report["episodes"]) == 4
    assert all(np.isfinite(ep["max_com_x"]) for ep in report["episodes"])
    # step 9 began new episodes: their one step so far is reported before they end
    assert np.isfinite(report["running_extremes"]["max_com_x"])
    worker = RolloutWorker(cfg)
    first, second = worker.collect(2), worker.collect(2)
    worker.close()
    assert first["episodes"] == [] and len(second["episodes"]) == 2
    # an episode's max is at least what its first two steps reached
    assert (max(ep["max_com_x"] for ep in second["episodes"])
            >= first["running_extremes"]["max_com_x"])


# ---------------------------------------------------------------------- driver best-so-far
def _driver(tmp_path, counters: Counters | None = None) -> Driver:
    cfg = load_config("multigoal-quick", ["agent.hidden_sizes=[16, 16]", "run.log_every=10"])
    obs_space, act_space = probe_spaces(cfg)
    return Driver(cfg, tmp_path, counters or Counters(), None, obs_space, act_space)


def test_evaluations_of_different_seeds_start_from_unrelated_states(tmp_path, monkeypatch):
    """Env seeds were run.seed + 10000 + step + i: seeds s and s + 1 shared all but one start
    state of every evaluation. Now eight seeds' 40 episodes at one step are pairwise disjoint,
    one (seed, step) repeats (resume), and one seed's runs of two algorithms share them."""
    import distributed.evaluation as evaluation_module

    starts: list[tuple[int, int]] = []

    def record(policy, env_id, episodes, seed, **kwargs):
        starts.append((seed, episodes))
        return {"return_mean": 0.0, "return_std": 0.0, "length_mean": 0.0,
                "terminated_share": 0.0}

    monkeypatch.setattr(evaluation_module, "evaluate_policy", record)

    def evaluate(preset: str, seed: int, step: int = 1000) -> tuple[int, int]:
        cfg = load_config(preset, ["agent.hidden_sizes=[16, 16]", f"run.seed={seed}",
                                   "run.eval_episodes=40", "run.image_every=0"])
        obs_space, act_space = probe_spaces(cfg)
        weights = LearnerRunner(cfg, obs_space, act_space).learner.get_weights()
        driver = Driver(cfg, tmp_path / f"{preset}-{seed}", Counters(env_steps=step), None,
                        obs_space, act_space)
        driver.evaluate(weights)
        driver.close()
        return starts[-1]

    ranges = [evaluate("multigoal-quick", seed) for seed in range(8)]
    seeds = {first + i for first, n in ranges for i in range(n)}
    assert len(seeds) == 8 * 40  # no start state shared between two seeds
    assert evaluate("multigoal-quick", 3) == ranges[3]  # repeatable
    assert evaluate("multigoal-quick", 3, step=2000) != ranges[3]
    assert evaluate("multigoal-ddpg-quick", 3) == ranges[3]  # common random numbers
    policy_seeds = {evaluation_seeds(seed, 1000)[1] for seed in range(8)}
    assert len(policy_seeds) == 8


def test_driver_keeps_the_best_extremes_since_the_start(tmp_path):
    driver = _driver(tmp_path)
    driver.record(10, [{"return": 1.0, "length": 5.0}])  # a task without extremes
    assert driver.counters.best_max_com_x is None
    driver.log({})  # nothing known yet: no train/ tags
    driver.record(10, [{"return": 1.0, "length": 5.0, "max_com_x": 0.5},
                       {"return": 1.0, "length": 5.0, "max_com_x": 1.5,
                        "min_distance_to_target": 4.0}])
    driver.log({})
    driver.record(10, [{"return": 1.0, "length": 5.0, "max_com_x": 1.0,  # worse: kept 1.5
                        "min_distance_to_target": 2.5}])
    driver.log({})
    driver.record(10, [{"return": 1.0, "length": 5.0, "max_com_x": -3.0,
                        "min_distance_to_target": 6.0}])
    driver.log({})
    c = driver.counters
    assert c.best_max_com_x == 1.5 and c.best_min_distance_to_target == 2.5
    summary = driver.close()
    assert summary["train/max_com_x"] == 1.5
    assert json.loads((tmp_path / "summary.json").read_text())[
        "train/min_distance_to_target"] == 2.5
    steps, values = read_scalars(tmp_path, "train/max_com_x")
    assert steps.tolist() == [20, 30, 40] and values.tolist() == [1.5, 1.5, 1.5]
    steps, values = read_scalars(tmp_path, "train/min_distance_to_target")
    assert steps.tolist() == [20, 30, 40] and values.tolist() == [4.0, 2.5, 2.5]


def test_driver_counts_the_extremes_of_episodes_still_running(tmp_path):
    driver = _driver(tmp_path)
    driver.record(10, [], {"max_com_x": 0.7})  # no episode finished yet: the curve moves
    driver.log({})
    driver.record(10, [{"return": 1.0, "length": 20.0, "max_com_x": 0.9}],
                  {"max_com_x": 0.2, "min_distance_to_target": 3.0})
    driver.log({})
    assert driver.counters.episodes == 1 and list(driver.recent_lengths) == [20.0]
    driver.close()
    steps, values = read_scalars(tmp_path, "train/max_com_x")
    assert steps.tolist() == [10, 20] and values.tolist() == pytest.approx([0.7, 0.9])
    assert read_scalars(tmp_path, "train/min_distance_to_target")[1].tolist() == [3.0]


def test_best_extremes_survive_a_checkpoint_and_old_checkpoints_load(tmp_path):
    counters = Counters(env_steps=40, episodes=4, best_max_com_x=1.5,
                        best_min_distance_to_target=2.5)
    runner = SimpleNamespace(load_state_dict=lambda state: None)
    save_checkpoint(tmp_path, {"counters": counters.state_dict(), "runner": {}})
    assert restore(tmp_path, runner, None) == counters  # weights_only load, inline's restore
    driver = _driver(tmp_path / "resumed", restore(tmp_path, runner, None))
    driver.record(10, [{"return": 0.0, "length": 1.0, "max_com_x": 1.0,
                        "min_distance_to_target": 3.0}])  # worse than before the resume
    assert (driver.counters.best_max_com_x, driver.counters.best_min_distance_to_target) == (
        1.5, 2.5)
    driver.close()

    old = {"env_steps": 40, "episodes": 4, "worker_restarts": 1, "learner_restarts": 0}
    save_checkpoint(tmp_path, {"counters": old, "runner": {}})
    loaded = Counters(**load_checkpoint(tmp_path)["counters"])
    assert loaded.worker_restarts == 1 and loaded.env_steps == 40
    assert loaded.best_max_com_x is None and loaded.best_min_distance_to_target is None
    assert loaded.best_so_far() == {}



def test_the_last_100_episodes_window_survives_a_checkpoint(tmp_path):
    """rollout/return_mean averages the last 100 training episodes; a resumed run's window used
    to restart empty, so its first log after the resume averaged only the episodes since (a
    jump in the curve: here 2.0, the mean of the one new episode, instead of 99.02)."""
    driver = _driver(tmp_path / "run")
    driver.record(150, [{"return": float(i), "length": float(i + 10)} for i in range(150)])
    driver.checkpoint({}, None)  # holds episodes 50..149
    driver.close()
    resumed = _driver(tmp_path / "run", restore(tmp_path / "run",
                                                SimpleNamespace(load_state_dict=lambda s: None),
                                                None))
    resumed.record(10, [{"return": 2.0, "length": 7.0}])
    resumed.log({})
    resumed.close()
    # episodes 51..149 and the new one: (sum(51..149) + 2) / 100 = (9900 + 2) / 100
    assert read_scalars(tmp_path / "run", "rollout/return_mean")[1].tolist() == [
        pytest.approx(99.02)]
    assert read_scalars(tmp_path / "run", "rollout/length_mean")[1].tolist() == [
        pytest.approx((sum(range(61, 160)) + 7) / 100)]


# ---------------------------------------------------------------------- softq compare
def _fake_run(root, name, preset, metric, curve, sets=()):
    """A run directory with config.yaml and one scalar series: curve = [(step, value)]."""
    run = root / name
    (run / "tb").mkdir(parents=True)
    save_config(load_config(preset, list(sets)), run / "config.yaml")
    writer = SummaryWriter(str(run / "tb"))
    for step, value in curve:
        writer.add_scalar(metric, value, step)
    writer.close()
    return run


def test_compare_names_a_run_whose_metric_has_no_events_left(tmp_path, capsys):
    run = _fake_run(tmp_path, "r", "multigoal-quick", "eval/return_mean", [(500, 1.0)])
    SummaryWriter(str(run / "tb"), purge_step=100).close()  # a resume from before step 500
    assert main(["compare", str(run), "--out", str(tmp_path / "c.png")]) == 2
    assert "'eval/return_mean' has no events left in" in capsys.readouterr().err


def test_compare_below_threshold_share_and_first_steps(tmp_path, capsys):
    metric = "train/min_distance_to_target"
    sql, ddpg = "ant-maze-sql-quick", "ant-maze-ddpg-quick"
    runs = [
        _fake_run(tmp_path, "s0", sql, metric, [(1000, 8.0), (2000, 3.0), (3000, 2.0)]),
        _fake_run(tmp_path, "s1", sql, metric, [(1000, 8.0), (2000, 6.0), (3000, 3.354)]),
        _fake_run(tmp_path, "s2", sql, metric, [(1000, 7.0), (2000, 5.0), (3000, 4.0)]),
        _fake_run(tmp_path, "d0", ddpg, metric, [(1000, 3.0), (2000, 3.0), (3000, 3.0)]),
    ]
    out, report = tmp_path / "c.png", tmp_path / "c.json"
    assert main(["compare", *map(str, runs), "--metric", metric, "--below", "3.354",
                 "--out", str(out), "--report", str(report)]) == 0
    text = capsys.readouterr().out
    rep = json.loads(report.read_text())
    s, d = rep[sql]["threshold"], rep[ddpg]["threshold"]
    assert s["first_steps"] == [2000, 3000, None]  # 3.354 itself counts (<=)
    assert s["share"] == pytest.approx(2 / 3) and s["reached"] == 2 and s["seeds"] == 3
    assert s["direction"] == "<=" and s["value"] == 3.354
    assert s["runs"] == [str(r) for r in runs[:3]]
    assert d["first_steps"] == [1000] and d["share"] == 1.0
    assert (f"{sql}: 2/3 seeds reached {metric} <= 3.354 (first at steps 2000, 3000, never)"
            in text)
    assert f"{ddpg}: 1/1 seeds reached {metric} <= 3.354 (first at steps 1000)" in text
    assert out.stat().st_size > 0


@pytest.mark.parametrize("sets_c, warning", [
    # another --set than the others: named (seed, budget and runtime may differ without a word)
    (["agent.alpha=10"], "{c} vs {a}: agent.alpha is 1.0 there, 10.0 here"),
    # a's seed and settings again (`softq train P` twice): one experiment twice, not two seeds
    (["agent.alpha=1", "run.total_env_steps=900"],
     "counts {c} and {a} as two seeds, but both were trained with run.seed 0"),
])
def test_compare_warns_when_a_preset_group_is_not_seeds_of_one_setting(tmp_path, capsys, sets_c,
                                                                       warning):
    """Seeds of one preset form one curve: a run of the group that breaks that is named once."""
    metric, curve = "eval/return_mean", [(500, 1.0)]
    a = _fake_run(tmp_path, "a", "multigoal-quick", metric, curve, ["agent.alpha=1"])
    b = _fake_run(tmp_path, "b", "multigoal-quick", metric, curve,
                  ["agent.alpha=1", "run.seed=3", "run.total_env_steps=900",
                   "runtime.num_threads=2"])
    c = _fake_run(tmp_path, "c", "multigoal-quick", metric, curve, sets_c)
    out = str(tmp_path / "c.png")
    assert main(["compare", str(a), str(b), "--out", out]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["compare", str(a), str(b), str(c), "--out", out]) == 0
    err = capsys.readouterr().err
    assert err.count("warning") == 1
    assert warning.format(a=a, c=c) in err


def test_compare_writes_into_directories_it_creates(tmp_path, capsys):
    run = _fake_run(tmp_path, "r", "multigoal-quick", "eval/return_mean", [(500, 1.0), (900, 2.0)])
    out, report = tmp_path / "figs" / "new" / "c.png", tmp_path / "reports" / "c.json"
    assert main(["compare", str(run), "--out", str(out), "--report", str(report)]) == 0
    assert out.stat().st_size > 0
    assert json.loads(report.read_text())["multigoal-quick"]["final_mean"] == 2.0


def test_compare_above_threshold_and_exclusive_flags(tmp_path, capsys):
    metric = "train/max_com_x"
    sql = "swimmer-finish-line-sql-quick"
    runs = [_fake_run(tmp_path, "s0", sql, metric, [(500, 0.1), (1000, 2.5), (1500, 2.5)]),
            _fake_run(tmp_path, "s1", sql, metric, [(500, 1.9), (1000, 1.99), (1500, 1.99)])]
    report = tmp_path / "c.json"
    assert main(["compare", *map(str, runs), "--metric", metric, "--above", "2",
                 "--out", str(tmp_path / "c.png"), "--report", str(report)]) == 0
    rep = json.loads(report.read_text())[sql]["threshold"]
    assert rep["first_steps"] == [1000, None] and rep["share"] == 0.5
    assert rep["direction"] == ">="
    assert "1/2 seeds reached train/max_com_x >= 2 (first at steps 1000, never)" in (
        capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main(["compare", str(runs[0]), "--above", "1", "--below", "2"])
    capsys.readouterr()
    assert main(["compare", *map(str, runs), "--metric", metric, "--out", str(tmp_path / "d.png"),
          "--report", str(report)]) == 0
    assert "threshold" not in json.loads(report.read_text())[sql]  # no flag, no entry


def test_threshold_report_first_crossing_is_the_first_logged_step():
    series = [(np.array([1.0, 2.0, 3.0]), np.array([0.0, 5.0, 1.0])),
              (np.array([1.0, 2.0]), np.array([0.0, 0.0]))]
    rep = threshold_report(series, 4.0, above=True)
    assert rep["first_steps"] == [2, None] and rep["share"] == 0.5
    rep = threshold_report(series, 0.0, above=False)
    assert rep["first_steps"] == [1, 1] and rep["share"] == 1.0


def test_per_seed_figure_draws_every_run_and_the_threshold():
    from launch.plots import curves_figure

    a = (np.array([0.0, 1.0, 2.0]), np.array([5.0, 4.0, 2.0]))
    b = (np.array([0.0, 1.0, 2.0]), np.array([6.0, 6.0, 3.0]))
    c = (np.array([0.0, 2.0]), np.array([7.0, 1.0]))
    curves = {"sql": (a[0], (a[1] + b[1]) / 2, np.abs(a[1] - b[1]) / 2, 2),
              "ddpg": (c[0], c[1], np.zeros(2), 1)}
    fig = curves_figure(curves, "m", threshold=2.5, seeds={"sql": [a, b], "ddpg": [c]})
    lines = fig.axes[0].get_lines()
    drawn = [(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in lines]
    assert drawn[:3] == [(tuple(s), tuple(v)) for s, v in (a, b, c)]  # one line per run
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert tuple(lines[3].get_ydata()) == (2.5, 2.5)  # the threshold
    assert len(fig.axes[0].collections) == 0  # no mean +- std bands
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["sql (n=2)", "ddpg (n=1)", "threshold 2.5"]
    mean_fig = curves_figure(curves, "m")
    assert len(mean_fig.axes[0].get_lines()) == 2 and len(mean_fig.axes[0].collections) == 2


def test_every_tracked_extreme_has_a_checkpointed_best():
    import dataclasses

    from distributed.driver import BEST_SO_FAR

    fields = {f.name for f in dataclasses.fields(Counters)}
    assert set(BEST_SO_FAR) == {field for field, _ in EpisodeTracker.EXTREMES.values()}
    assert all(attr in fields and attr in Counters().state_dict()
               for attr, _, _ in BEST_SO_FAR.values())
