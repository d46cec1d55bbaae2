"""Fine-tuning (Haarnoja et al. 2017, §5.3, App. D.1): ``--init-from`` loads the pretrained
learner and restarts its schedules; alpha anneals log-linearly to 0.001 and the fixed xi set
shrinks linearly to 1, both at hand-computed values."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.sql.config import SQLConfig
from agents.sql.policy import SQLPolicy
from distributed.checkpoint import load_checkpoint
from distributed.inline import init_from_pretrained
from distributed.learner import LearnerRunner
from distributed.rollout import RolloutWorker
from launch.cli import main
from launch.config import load_config

ANT_OBS, ANT_ACT = gym.spaces.Box(-np.inf, np.inf, (29,)), gym.spaces.Box(-1.0, 1.0, (8,))
SMALL = {"sql": ["agent.hidden_sizes=[16, 16]", "agent.kernel_particles=8",
                 "agent.value_particles=8"],
         "ddpg": ["agent.hidden_sizes=[16, 16]"]}
QUIET = ["run.eval_every=0", "run.log_every=100", "run.checkpoint_every=0", "replay.capacity=5000"]


def _sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def _flat(state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested learner state (networks only), keyed by its path."""
    out = {}
    for k, v in state.items():
        if isinstance(v, dict) and "optim" not in k and "opt" not in k:
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, torch.Tensor):
            out[prefix + k] = v
    return out


def _random_batch(b: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"obs": rng.standard_normal((b, 29)).astype(np.float32),
            "action": rng.uniform(-1, 1, (b, 8)).astype(np.float32),
            "reward": rng.standard_normal(b).astype(np.float32),
            "next_obs": rng.standard_normal((b, 29)).astype(np.float32),
            "discount": np.full(b, 0.99, np.float32)}


def _pretrain_then_finetune(tmp_path, algo: str, pretrain: str, finetune: str,
                            runtime: list[str]) -> tuple[dict, dict]:
    """Pretrain 300 steps (updates from step 100: 200 updates), then fine-tune for fewer steps
    than the warm-up: no update, so the fine-tuned run ends with the state it started from."""
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    assert main(["train", pretrain, "--inline", "--out", str(pre), *_sets(
        SMALL[algo] + QUIET + ["run.total_env_steps=300", "replay.min_size=100"])]) == 0
    assert main(["train", finetune, *runtime, "--init-from", str(pre), "--out", str(ft),
                 *_sets(SMALL[algo] + QUIET + ["run.total_env_steps=64", "replay.min_size=1000",
                                               "runtime.steps_per_push=8"])]) == 0
    return load_checkpoint(pre)["runner"]["learner"], load_checkpoint(ft)["runner"]["learner"]


def _online_key(key: str) -> str:
    """'q_target.x' -> 'q.x', 'critic_target.x' -> 'critic.x'; other keys unchanged."""
    head, _, rest = key.partition(".")
    return f"{head.removesuffix('_target')}.{rest}" if rest else key


def _assert_loaded(pre_state: dict, ft_state: dict, algo: str, finetune: str) -> None:
    """Every network is the pretrained one; the targets are copies of the pretrained online
    networks (not the pretraining run's last, older, target copy)."""
    assert pre_state["num_updates"] == 200 and ft_state["num_updates"] == 0
    pre_t, ft_t = _flat(pre_state), _flat(ft_state)
    assert pre_t.keys() == ft_t.keys() and len(pre_t) >= 4
    assert any(_online_key(k) != k for k in pre_t)
    for k in pre_t:
        torch.testing.assert_close(ft_t[k], pre_t[_online_key(k)], rtol=0, atol=0, msg=k)
    # and they are not simply a fresh initialisation (same seed) of the fine-tuning learner
    cfg = load_config(finetune, SMALL[algo])
    fresh = _flat(LearnerRunner(cfg, ANT_OBS, ANT_ACT, device="cpu").learner.state_dict())
    assert any(not torch.equal(fresh[k], pre_t[k]) for k in pre_t)


@pytest.mark.parametrize("preset", ["ant-hallway-wide-sql-finetune",
                                    "ant-hallway-narrow-sql-finetune", "ant-umaze-sql-finetune"])
def test_the_full_fine_tuning_schedules_both_end_at_20_epochs(preset):
    """App. D.1: alpha reaches 0.001, and the fixed xi set one sample, within 20 epochs (200,000
    env steps). alpha counts learner updates, which begin after the replay's warm-up: with 200,000
    updates it reached 0.001 only at env step 210,000."""
    cfg = load_config(preset)
    epochs_20 = 20 * 10_000
    updates_begin = cfg.replay.min_size  # the first update comes once the replay holds this many
    alpha_ends = updates_begin + cfg.agent.alpha_anneal_updates / cfg.replay.updates_per_step
    assert alpha_ends == cfg.agent.fixed_xi_anneal_steps == epochs_20
    assert cfg.run.random_steps == 0  # the warm-up acts with the pretrained policy


@pytest.mark.parametrize("algo, pretrain, finetune", [
    ("sql", "ant-pretrain-sql", "ant-hallway-wide-sql-finetune"),
    ("ddpg", "ant-pretrain-ddpg", "ant-umaze-ddpg-pretrained"),
])
def test_init_from_loads_pretrained_parameters_and_resets_updates(tmp_path, capsys, algo,
                                                                  pretrain, finetune):
    pre_state, ft_state = _pretrain_then_finetune(tmp_path, algo, pretrain, finetune,
                                                  ["--inline"])
    err = capsys.readouterr().err
    _assert_loaded(pre_state, ft_state, algo, finetune)
    if algo == "sql":  # the fine-tuning preset's schedules, named against the pretraining's
        assert "alpha_final None -> 0.001" in err and "fixed_xi_start None -> 32" in err
        assert "kernel_bandwidth" not in err and "hidden_sizes" not in err
    else:
        assert "agent settings that differ" not in err


@pytest.mark.ray
def test_init_from_in_ray_mode(local_ray, tmp_path, capsys):
    """The learner actor loads the pretrained state (distributed.ray_actors.LearnerActor)."""
    pre_state, ft_state = _pretrain_then_finetune(
        tmp_path, "sql", "ant-pretrain-sql", "ant-hallway-wide-sql-finetune", ["--workers", "1"])
    capsys.readouterr()
    _assert_loaded(pre_state, ft_state, "sql", "ant-hallway-wide-sql-finetune")


def test_alpha_restarts_and_anneals_log_linearly_after_init():
    """App. D.1: alpha 0.1 -> 0.001 log-linearly; here over 8 updates instead of 20 epochs:
    alpha_t = 0.1 * 0.01 ** (t / 8), then 0.001."""
    pre = LearnerRunner(load_config("ant-pretrain-sql", SMALL["sql"]), ANT_OBS, ANT_ACT, "cpu")
    batch = _random_batch()
    for _ in range(5):
        assert pre.update(batch)["alpha"] == pytest.approx(0.1)
    cfg = load_config("ant-hallway-wide-sql-finetune",
                      SMALL["sql"] + ["agent.alpha_anneal_updates=8"])
    assert (cfg.agent.alpha, cfg.agent.alpha_final) == (0.1, 0.001)
    ft = LearnerRunner(cfg, ANT_OBS, ANT_ACT, device="cpu")
    init_from_pretrained(ft, {"runner": pre.state_dict()})
    pre_t, ft_t = _flat(pre.learner.state_dict()), _flat(ft.learner.state_dict())
    for k in pre_t:
        assert torch.equal(ft_t[k], pre_t[_online_key(k)]), k
    alphas = [ft.update(batch)["alpha"] for _ in range(10)]
    expected = [0.1, 0.0562341325, 0.0316227766, 0.0177827941, 0.01, 0.00562341325,
                0.00316227766, 0.00177827941, 0.001, 0.001]
    np.testing.assert_allclose(alphas, expected, rtol=1e-8)


@pytest.mark.parametrize("algo, pretrain, finetune", [
    ("sql", "ant-pretrain-sql", "ant-hallway-wide-sql-finetune"),
    ("ddpg", "ant-pretrain-ddpg", "ant-hallway-wide-ddpg-pretrained"),
])
def test_init_from_starts_the_targets_at_the_pretrained_networks(algo, pretrain, finetune):
    """150 pretraining updates with a target copy every 100: the saved target is 50 updates
    old. Fine-tuning restarts the copy schedule, so without a sync its first 100 updates would
    bootstrap from that older copy; the first target must be the pretrained online Q's:
    DDPG y = r + discount Q_pre(s', mu_pre(s')), SQL Q_target(s', a') = Q_pre(s', a')."""
    sets = SMALL[algo] + ["agent.target_update_interval=100"]
    pre = LearnerRunner(load_config(pretrain, sets), ANT_OBS, ANT_ACT, "cpu")
    for _ in range(150):
        pre.update(_random_batch())
    ft = LearnerRunner(load_config(finetune, sets), ANT_OBS, ANT_ACT, "cpu")
    init_from_pretrained(ft, {"runner": pre.state_dict()})
    b = {k: torch.as_tensor(v) for k, v in _random_batch(32).items()}
    with torch.no_grad():
        if algo == "ddpg":
            got = ft.learner.critic_targets(b["reward"], b["discount"], b["next_obs"])  # [B]
            want = b["reward"] + b["discount"] * pre.learner.critic(
                b["next_obs"], pre.learner.actor(b["next_obs"]))
            stale = b["reward"] + b["discount"] * pre.learner.critic_target(
                b["next_obs"], pre.learner.actor_target(b["next_obs"]))
        else:
            a = b["action"][:, None, :]  # [B, 1, d]
            got = ft.learner.q_target(b["next_obs"], a)
            want = pre.learner.q(b["next_obs"], a)
            stale = pre.learner.q_target(b["next_obs"], a)
    assert (want - stale).abs().max() > 1e-3  # the saved target really is an older copy
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_init_from_starts_a_dqn_target_at_the_pretrained_network():
    """The same for DQN (its --init-from kept the pretraining run's last copy, 50 updates old)."""
    cfg = load_config("cartpole-soft-dqn", ["agent.hidden_sizes=[16]",
                                            "agent.target_update_interval=100"])
    obs_space, act_space = gym.spaces.Box(-np.inf, np.inf, (4,)), gym.spaces.Discrete(2)
    rng = np.random.default_rng(0)
    pre = LearnerRunner(cfg, obs_space, act_space, "cpu")
    for _ in range(150):
        pre.update({"obs": rng.normal(size=(32, 4)).astype(np.float32),
                    "action": rng.integers(0, 2, 32), "reward": rng.normal(size=32),
                    "next_obs": rng.normal(size=(32, 4)).astype(np.float32),
                    "discount": np.full(32, 0.99)})
    ft = LearnerRunner(cfg, obs_space, act_space, "cpu")
    init_from_pretrained(ft, {"runner": pre.state_dict()})
    x = torch.as_tensor(rng.normal(size=(64, 4)), dtype=torch.float32)
    with torch.no_grad():
        assert (pre.learner.q(x) - pre.learner.q_target(x)).abs().max() > 1e-3  # an older copy
        torch.testing.assert_close(ft.learner.q_target(x), pre.learner.q(x), rtol=0, atol=0)


@pytest.mark.parametrize("algo, pre, ft, lr_key, optim", [
    ("sql", "ant-pretrain-sql", "ant-hallway-wide-sql-finetune", "q_lr", "q_optim"),
    ("ddpg", "ant-pretrain-ddpg", "ant-hallway-wide-ddpg-pretrained", "critic_lr", "critic_opt"),
])
def test_init_from_keeps_the_fine_tuning_runs_optimizer_settings(algo, pre, ft, lr_key, optim):
    """Optimizer.load_state_dict would bring the pretraining run's lr: the fine-tuning run's own
    --set agent.<lr>=... must hold, with the pretrained Adam moments loaded."""
    pre_runner = LearnerRunner(load_config(pre, SMALL[algo]), ANT_OBS, ANT_ACT, "cpu")
    pre_runner.update(_random_batch())
    ft_runner = LearnerRunner(load_config(ft, SMALL[algo] + [f"agent.{lr_key}=1e-5"]), ANT_OBS,
                              ANT_ACT, "cpu")
    assert getattr(pre_runner.cfg.agent, lr_key) != 1e-5
    init_from_pretrained(ft_runner, {"runner": pre_runner.state_dict()})
    pre_opt, ft_opt = getattr(pre_runner.learner, optim), getattr(ft_runner.learner, optim)
    assert [g["lr"] for g in ft_opt.param_groups] == [1e-5] * len(ft_opt.param_groups)
    for p_pre, p_ft in zip(pre_opt.param_groups[0]["params"], ft_opt.param_groups[0]["params"],
                           strict=True):
        assert torch.equal(pre_opt.state[p_pre]["exp_avg"], ft_opt.state[p_ft]["exp_avg"])


def test_init_from_a_checkpoint_saved_on_another_device_type():
    """A torch.Generator's state is 5,056 bytes on a CPU and 16 on CUDA: a run pretrained on a
    GPU fine-tunes on a CPU (and back) with the networks loaded exactly, the RNG reseeded."""
    pre = LearnerRunner(load_config("ant-pretrain-sql", SMALL["sql"]), ANT_OBS, ANT_ACT, "cpu")
    pre.update(_random_batch())
    state = pre.state_dict()
    cuda_like = torch.arange(16, dtype=torch.uint8)  # the size a CUDA generator's state has
    state["learner"] = {**state["learner"], "rng": cuda_like, "plot_rng": cuda_like + 1}
    ft = LearnerRunner(load_config("ant-hallway-wide-sql-finetune", SMALL["sql"]), ANT_OBS,
                       ANT_ACT, device="cpu")
    with pytest.warns(UserWarning, match="another device type"):
        init_from_pretrained(ft, {"runner": state})
    for a, b in zip(pre.learner.q.parameters(), ft.learner.q.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ft.learner.num_updates == 0
    ft.update(_random_batch())  # and trains on


def test_fit_check_of_a_gpu_run_warns_about_nothing(recwarn):
    """The --init-from fit check loads into a throwaway CPU learner: its 'runs eagerly' and
    'RNG from another device type' warnings would describe the copy, not the run."""
    from launch.train_cmd import _check_init_fits

    pre_cfg = load_config("ant-pretrain-sql", SMALL["sql"])
    pre = LearnerRunner(pre_cfg, ANT_OBS, ANT_ACT, "cpu")
    state = pre.state_dict()
    state["learner"] = {**state["learner"], "rng": torch.zeros(16, dtype=torch.uint8)}
    cfg = load_config("ant-hallway-wide-sql-finetune",
                      SMALL["sql"] + ["runtime.device=cuda", "agent.cuda_graphs=true"])
    _check_init_fits(cfg, {"runner": state}, pre_cfg, [])
    assert [str(w.message) for w in recwarn] == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_init_from_a_cpu_checkpoint_onto_a_cuda_learner():
    pre = LearnerRunner(load_config("ant-pretrain-sql", SMALL["sql"]), ANT_OBS, ANT_ACT, "cpu")
    pre.update(_random_batch())
    ft = LearnerRunner(load_config("ant-hallway-wide-sql-finetune", SMALL["sql"]), ANT_OBS,
                       ANT_ACT, device="cuda")
    with pytest.warns(UserWarning, match="another device type"):
        init_from_pretrained(ft, {"runner": pre.state_dict()})
    for a, b in zip(pre.learner.q.parameters(), ft.learner.q.parameters(), strict=True):
        assert torch.equal(a, b.cpu())
    ft.update(_random_batch())


@pytest.mark.parametrize("worker_steps, num_workers, k", [
    # K_xi = ceil(32 - 31 * min(n * t / 100, 1)), n workers, t the worker's own env steps;
    # e.g. n = 4, t = 12: ceil(32 - 31 * 0.48) = ceil(17.12) = 18
    (0, 1, 32), (1, 1, 32), (50, 1, 17), (96, 1, 3), (97, 1, 2), (99, 1, 2), (100, 1, 1),
    (10_000, 1, 1), (25, 2, 17), (48, 2, 3), (49, 2, 2), (50, 2, 1), (12, 4, 18),
])
def test_fixed_xi_set_shrinks_linearly_to_one(worker_steps, num_workers, k):
    cfg = SQLConfig(hidden_sizes=[16, 16], fixed_xi_start=32, fixed_xi_anneal_steps=100)
    policy = SQLPolicy(cfg, ANT_OBS, ANT_ACT, seed=3, num_workers=num_workers)
    policy.set_env_steps(worker_steps)
    obs = np.repeat(np.random.default_rng(1).standard_normal((1, 29)), 400, axis=0)
    acts = policy.act(obs, explore=False)  # [400, 8]: one state, xi from the fixed set
    distinct = np.unique(acts.round(6), axis=0).shape[0]
    assert distinct == k  # 400 uniform draws from <= 32 items hit every one of them


def test_fixed_xi_keeps_a_prefix_and_none_means_fresh_noise():
    cfg = SQLConfig(hidden_sizes=[16, 16], fixed_xi_start=4, fixed_xi_anneal_steps=30)
    policy = SQLPolicy(cfg, ANT_OBS, ANT_ACT, seed=0)
    obs = np.zeros((300, 29), np.float32)
    policy.set_env_steps(0)
    set4 = np.unique(policy.act(obs, False).round(6), axis=0)
    policy.set_env_steps(30)  # K_xi = 1: the first member of the same set
    set1 = np.unique(policy.act(obs, False).round(6), axis=0)
    assert set4.shape[0] == 4 and set1.shape[0] == 1
    assert (np.abs(set4 - set1).max(axis=1) < 1e-6).any()
    free = SQLPolicy(SQLConfig(hidden_sizes=[16, 16]), ANT_OBS, ANT_ACT, seed=0)
    free.set_env_steps(10)  # no schedule configured: still fresh xi every step
    assert np.unique(free.act(obs, False).round(6), axis=0).shape[0] == 300


def test_rollout_worker_drives_the_xi_schedule():
    """The worker calls set_env_steps(t) before each step: after 40 steps at t = 39 of a 40-step
    anneal from 5, K_xi = ceil(5 - 4 * 39 / 40) = 2; after one more step, 1."""
    cfg = load_config("multigoal-quick", ["agent.hidden_sizes=[16, 16]",
                                          "agent.fixed_xi_start=5",
                                          "agent.fixed_xi_anneal_steps=40"])
    worker = RolloutWorker(cfg)
    obs = np.zeros((200, 2), np.float32)
    worker.collect(40)
    assert np.unique(worker.policy.act(obs, False).round(6), axis=0).shape[0] == 2
    worker.collect(1)
    assert np.unique(worker.policy.act(obs, False).round(6), axis=0).shape[0] == 1
    worker.close()


def test_workers_and_the_evaluation_act_on_one_fixed_xi_set():
    """App. D.1 fixes one set {xi_i}: every worker (own seeds) and the evaluation policy draw
    it from the run's seed, so at K_xi = 1 they all take the same action in the same state;
    the evaluation policy of a step is rebuilt alike (an evaluation repeats after a resume)."""
    from agents.registry import get_algorithm
    from distributed.evaluation import evaluation_policy

    cfg = load_config("ant-umaze-sql-finetune-quick", ["agent.fixed_xi_anneal_steps=100"])
    obs_space, act_space = gym.spaces.Box(-np.inf, np.inf, (29,)), ANT_ACT
    weights = SQLPolicy(cfg.agent, obs_space, act_space, seed=5).sampler.state_dict()
    weights = {f"sampler.{k}": v for k, v in weights.items()}
    spec, obs = get_algorithm("sql"), np.random.default_rng(0).standard_normal((3, 29))
    acts = []
    for i in (0, 1):
        worker_policy = spec.build_policy(cfg.agent, obs_space, act_space, seed=10_007 * i,
                                          worker_index=i, num_workers=2, run_seed=cfg.run.seed)
        worker_policy.set_weights(weights)
        worker_policy.set_env_steps(50)  # 2 workers x 50: the run is at 100, K_xi = 1
        acts.append(worker_policy.act(obs, explore=False))
    for _ in range(2):
        acts.append(evaluation_policy(cfg, obs_space, act_space, 100, weights).act(obs, False))
    for a in acts[1:]:
        np.testing.assert_array_equal(a, acts[0])
    other_run = evaluation_policy(load_config("ant-umaze-sql-finetune-quick", [
        "agent.fixed_xi_anneal_steps=100", "run.seed=1"]), obs_space, act_space, 100, weights)
    assert not np.allclose(other_run.act(obs, False), acts[0])  # another run, another set


def test_fixed_xi_size_is_the_exact_ceiling_of_the_linear_schedule_at_every_step():
    """K_xi(t) = ceil(23 - 22 t / 44) in exact arithmetic, for every run step t: one less every
    2 steps from t = 2 on, 1 from t = 44. In floats 23 - 22 * (30 / 44) is 8.000000000000002:
    the documented ceil must still give 8 (the 1e-9 guard), not 9."""
    import math
    from fractions import Fraction

    policy = SQLPolicy(SQLConfig(hidden_sizes=[16, 16], fixed_xi_start=23,
                                 fixed_xi_anneal_steps=44), ANT_OBS, ANT_ACT, seed=0)
    sizes = [policy.fixed_xi_size(t) for t in range(60)]
    exact = [max(1, math.ceil(23 - Fraction(22 * min(t, 44), 44))) for t in range(60)]
    assert sizes == exact
    assert sizes[:4] == [23, 23, 22, 22] and sizes[30] == 8
    assert sizes[43] == 2 and sizes[44:] == [1] * 16  # 1 exactly at the end, then held


def test_a_worker_started_mid_schedule_acts_on_the_right_size_prefix_of_the_set():
    """A worker (re)started at run step 17 of 3 workers (a resume, a Ray restart) takes its
    share 17 // 3 = 5 steps, i.e. run step 15: K_xi = ceil(23 - 22 * 15 / 44) = ceil(15.5) = 16,
    not the start size 23; its 16 members are the first of the run's one set (the 23 a worker
    at step 0 acts on: a fresh randn(16, 2) is not that prefix). Then each worker step is 3 run
    steps, K_xi = ceil(23 - 1.5 s) at share s = 6..16: 14, 13, 11, 10, 8 (s = 10: 8.000000000000002
    in floats), 7, 5, 4, 2, 1 (run step 45 >= 44), 1."""
    cfg = load_config("multigoal-quick", ["agent.hidden_sizes=[16, 16]",
                                          "agent.fixed_xi_start=23",
                                          "agent.fixed_xi_anneal_steps=44"])
    late = RolloutWorker(cfg, worker_index=1, num_workers=3, start_env_steps=17)
    early = RolloutWorker(cfg, worker_index=0, num_workers=3, start_env_steps=0)
    obs_space = late.env.single_observation_space
    weights = SQLPolicy(cfg.agent, obs_space, late.env.single_action_space, seed=5)
    weights = {f"sampler.{k}": v for k, v in weights.sampler.state_dict().items()}
    obs = np.repeat(np.array([[0.3, -0.2]], np.float32), 400, axis=0)  # one state, 400 draws

    def members(worker: RolloutWorker) -> np.ndarray:
        return np.unique(worker.policy.act(obs, False).round(6), axis=0)

    for worker in (late, early):
        worker.set_weights(weights, 0)
        worker.collect(1)  # set_env_steps(own share) before the step: K_xi of the start
    late_set, early_set = members(late), members(early)
    assert (len(late_set), len(early_set)) == (16, 23)
    assert all((np.abs(early_set - row).max(1) < 1e-5).any() for row in late_set)
    sizes = []
    for _ in range(11):  # worker steps 6..16: run steps 18..48
        late.collect(1)
        sizes.append(len(members(late)))
    assert sizes == [14, 13, 11, 10, 8, 7, 5, 4, 2, 1, 1]
    late.close()
    early.close()
