"""cluster.yaml passes Ray's own cluster-config validation and keeps the security settings."""

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER = Path(__file__).resolve().parents[1] / "cluster.yaml"


def test_cluster_yaml_passes_ray_validation_and_is_locked_down():
    raw = yaml.safe_load(CLUSTER.read_text())
    config = prepare_config(raw)
    validate_config(config)  # raises on any schema error
    types = config["available_node_types"]
    assert {"head", "learner_gpu", "rollout_cpu"} <= set(types)
    # every node sits in the one pre-created group (no launcher default that opens SSH wide)
    for node_type in types.values():
        assert node_type["node_config"]["SecurityGroupIds"]
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    assert "~/.ray/auth_token" in config["file_mounts"]
