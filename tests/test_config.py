"""Config system: presets load, unknown keys and wrong types name the key, round trips."""

import pytest

from launch.config import (
    ConfigError,
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
                                        "agent.kernel_particles=2",
                                        "agent.kernel_update_ratio=0.5"])


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
