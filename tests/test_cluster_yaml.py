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
    # the checkout mount leaves out runs (checkpoints can hold gigabytes of replay) and venvs
    assert ".gitignore" in config["rsync_filter"]
    assert {"runs/", ".venv/"} <= set(config["rsync_exclude"])
    # the documented job puts the learner on the GPU node: it asks for a GPU, nothing custom
    doc = (CLUSTER.parent / "README.md").read_text()
    assert "runtime.learner_num_gpus=1" in doc and "RAY_AUTH_MODE=token ray job submit" in doc
    assert all(not t.get("resources") for t in raw["available_node_types"].values())
