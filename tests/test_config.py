"""Config system: presets load, unknown keys and wrong types name the key, round trips."""

import pytest

from launch.config import (
    ConfigError,
    ReplayConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    load_preset_dict,
    preset_names,
    read_config,
    save_config,
)


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_loads_and_round_trips(name, tmp_path):
    cfg = load_config(name)
    assert cfg.preset == name
    save_config(cfg, tmp_path / "config.yaml")
    again = read_config(tmp_path / "config.yaml")
    assert config_to_dict(again) == config_to_dict(cfg)


def test_quick_preset_inherits_and_overrides_its_base():
    base, quick = load_config("multigoal"), load_config("multigoal-quick")
    assert quick.agent.alpha == base.agent.alpha == 10.0  # inherited
    assert base.agent.kernel_particles == 100 and quick.agent.kernel_particles == 16


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"'replay\.batchsize'"):
        load_config("multigoal-quick", ["replay.batchsize=3"])
    with pytest.raises(ConfigError, match=r"'agent\.alhpa'"):
        load_config("multigoal-quick", ["agent.alhpa=3"])
    with pytest.raises(ConfigError, match=r"'bogus'"):
        config_from_dict({"bogus": 1})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"'replay\.batch_size'.*integer"):
        load_config("multigoal-quick", ["replay.batch_size=big"])
    with pytest.raises(ConfigError, match=r"'run\.total_env_steps'"):
        load_config("multigoal-quick", ["run.total_env_steps=1.5"])
    with pytest.raises(ConfigError, match=r"'runtime\.inline'"):
        load_config("multigoal-quick", ["runtime.inline=3"])


def test_dataclass_validation_becomes_config_error():
    with pytest.raises(ConfigError, match="alpha"):
        load_config("multigoal-quick", ["agent.alpha=-1"])
    with pytest.raises(ConfigError, match="kernel_bandwidth.*'median'"):
        load_config("multigoal-quick", ["agent.kernel_bandwidth=median"])
    with pytest.raises(ConfigError, match="kernel_bandwidth='reference'.*>= 2 scoring"):
        load_config("multigoal-quick", ["agent.kernel_bandwidth=reference",
                                        "agent.kernel_particles=3",
                                        "agent.kernel_update_ratio=0.5"])
    with pytest.raises(ConfigError, match="kernel_particles must be >= 3, got 2"):
        load_config("multigoal-quick", ["agent.kernel_particles=2"])
    with pytest.raises(ConfigError, match="ou_theta must be in \\(0, 2\\)"):
        load_config("multigoal-quick", ["agent.ou_theta=2.5"])
    with pytest.raises(ConfigError, match="ou_sigma must be >= 0"):
        load_config("multigoal-quick", ["agent.ou_sigma=-0.3"])


def test_sql_refuses_n_step_returns_that_would_drop_the_entropy_bonus():
    """Eq. 11's soft target bootstraps one step; an n-step return would leave out the alpha H
    terms of the states in between. DDPG's hard target takes n-step returns."""
    with pytest.raises(ConfigError, match=r"'replay\.n_step': 'sql' learns from one-step"):
        load_config("multigoal-quick", ["replay.n_step=3"])
    assert load_config("multigoal-ddpg-quick", ["replay.n_step=3"]).replay.n_step == 3


@pytest.mark.parametrize("override,message", [
    # each of these ran before: a hang (batch 0; no rollout workers), a Gymnasium traceback
    # after the run directory was made (seed -1), a traceback in the env builder
    # (envs_per_worker 0), or a run that never learns or evaluates to nan
    ("replay.batch_size=0", "replay.batch_size must be >= 1, got 0"),
    ("replay.updates_per_step=0", "replay.updates_per_step must be > 0, got 0.0"),
    ("replay.rate_tolerance=-0.5", "replay.rate_tolerance must be >= 0, got -0.5"),
    ("replay.min_size=2000000", "replay.min_size (2000000) exceeds replay.capacity"),
    ("run.seed=-1", "run.seed must be >= 0, got -1"),
    ("run.total_env_steps=0", "run.total_env_steps must be >= 1, got 0"),
    ("run.eval_episodes=0", "run.eval_episodes must be >= 1, got 0"),
    ("run.eval_every=-1", "run.eval_every must be >= 0 (0 turns it off), got -1"),
    ("runtime.workers=0", "runtime.workers must be >= 1, got 0"),
    ("runtime.envs_per_worker=0", "runtime.envs_per_worker must be >= 1, got 0"),
    ("runtime.learner_num_gpus=-1", "runtime.learner_num_gpus must be >= 0, got -1.0"),
    ("runtime.learner_train_s=0", "runtime.learner_train_s must be > 0, got 0.0"),
    ("runtime.device=cdua", "runtime.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'cdua'"),
    ("runtime.device=meta", "runtime.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'meta'"),
])
def test_out_of_range_runtime_values_name_their_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("multigoal-quick", [override])
    assert message in str(err.value)


def test_zero_turns_periodic_work_off():
    cfg = load_config("multigoal-quick", ["run.eval_every=0", "run.checkpoint_every=0",
                                          "run.log_every=0", "run.image_every=0"])
    assert (cfg.run.eval_every, cfg.run.checkpoint_every, cfg.run.log_every) == (0, 0, 0)


def test_unknown_preset_and_algorithm():
    with pytest.raises(ConfigError, match="nope"):
        load_preset_dict("nope")
    with pytest.raises(ConfigError, match="'algo'.*quantum"):
        config_from_dict({"algo": "quantum"})


def test_overrides_parse_yaml_values_and_int_widens_to_float():
    cfg = load_config("multigoal-quick", ["agent.alpha=2", "agent.hidden_sizes=[8, 8]",
                                          "env.max_episode_steps=null"])
    assert cfg.agent.alpha == 2.0 and isinstance(cfg.agent.alpha, float)
    assert cfg.agent.hidden_sizes == [8, 8]
    assert cfg.env.max_episode_steps is None
    data = apply_overrides({"a": {"b": 1}}, ["a.c=x"])
    assert data == {"a": {"b": 1, "c": "x"}}
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["novalue"])


def test_numbers_in_exponent_form_load_and_non_finite_ones_are_refused():
    # YAML 1.1 reads 3e-4 (no dot) as a string: a float key takes it as the number it is
    assert load_config("multigoal-quick", ["agent.q_lr=3e-4"]).agent.q_lr == 3e-4
    for bad in (".nan", ".inf", "-.inf", "nan"):
        with pytest.raises(ConfigError, match="'agent.alpha': expected a finite number"):
            load_config("multigoal-quick", [f"agent.alpha={bad}"])
    with pytest.raises(ConfigError, match="'agent.alpha': expected a number, got 'fast'"):
        load_config("multigoal-quick", ["agent.alpha=fast"])


def test_broken_user_presets_are_named(tmp_path, monkeypatch):
    import launch.config as config

    monkeypatch.setattr(config, "PRESET_DIR", tmp_path)
    (tmp_path / "a.yaml").write_text("base: b\n")
    (tmp_path / "b.yaml").write_text("base: a\n")
    (tmp_path / "c.yaml").write_text("base: missing\n")
    (tmp_path / "d.yaml").write_text("- algo: sql\n")
    with pytest.raises(ConfigError, match="preset 'a': its base: chain loops \\(a -> b -> a\\)"):
        load_preset_dict("a")
    with pytest.raises(ConfigError, match="unknown preset 'missing' \\(the base of preset 'c'\\)"):
        load_preset_dict("c")
    with pytest.raises(ConfigError, match="d.yaml must hold a mapping.*list"):
        load_preset_dict("d")


def test_a_mapping_for_a_section_merges_into_it_and_an_empty_one_resets_it():
    """--set 'replay={batch_size: 32}' changes that key only (it used to put every other replay
    key back to its default: min_size 10000, no updates for a short run); {} gives the
    defaults (switching algo); env.kwargs is replaced whole, as presets do."""
    preset = load_config("cartpole-soft-dqn")
    merged = load_config("cartpole-soft-dqn", ["replay={batch_size: 32}"])
    assert merged.replay.batch_size == 32
    assert (merged.replay.capacity, merged.replay.min_size) == (preset.replay.capacity,
                                                               preset.replay.min_size)
    assert preset.replay.min_size != ReplayConfig().min_size  # so the check above means it
    reset = load_config("cartpole-soft-dqn", ["replay={}"])
    assert reset.replay == ReplayConfig()
    kwargs = load_config("multigoal-quick", ["env.kwargs={goal_reward: 2.0}"])
    assert kwargs.env.kwargs == {"goal_reward": 2.0}
    for section in ("run", "agent", "env"):
        with pytest.raises(ConfigError, match=f"override '{section}': a section needs"):
            load_config("cartpole-soft-dqn", [f"{section}="])
