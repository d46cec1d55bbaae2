"""The two sides of a benchmark ratio run on the same device.

``softq bench ddpg`` pins SB3 to the CPU (device="cpu"), so softq's learner must be there too in
both of its modes; ``softq bench runtime`` compares inline against Ray, whose learner takes
CUDA only when it reserved a GPU. With runtime.device 'auto' a GPU host put softq's inline learner
on CUDA in both benchmarks (the pinned-CPU or Ray side stayed on the CPU).
"""

from __future__ import annotations

import pytest
import torch

from agents.base import resolve_device
from distributed.ray_actors import actor_device
from launch.bench.ddpg import _softq_config
from launch.bench.runtime import _common_overrides
from launch.config import load_config


@pytest.fixture
def a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def _learner_device(cfg) -> str:
    """Where the runtime puts the learner: inline resolves 'auto' itself; a Ray learner actor
    that reserved no GPU (ray.get_gpu_ids() == []) gets the CPU for 'auto'."""
    if cfg.runtime.inline:
        return resolve_device(cfg.runtime.device).type
    assert cfg.runtime.learner_num_gpus == 0
    return torch.device(actor_device(cfg.runtime.device, [])).type


def test_bench_ddpg_trains_softq_on_the_cpu_like_sb3(a_gpu):
    for workers in (None, 2):  # inline, Ray
        cfg = _softq_config(1000, 3000, workers)
        assert _learner_device(cfg) == "cpu", workers
        assert cfg.runtime.num_threads == 1


def test_bench_runtime_puts_every_modes_learner_on_one_device(a_gpu):
    common = _common_overrides(4000, 1, [])
    inline = load_config("halfcheetah", [*common, "runtime.inline=true"])
    ray = load_config("halfcheetah", [*common, "runtime.inline=false", "runtime.workers=2"])
    assert _learner_device(inline) == _learner_device(ray) == "cpu"
    # --set runtime.device=cuda moves both
    cuda = _common_overrides(4000, 1, ["runtime.device=cuda"])
    assert {_learner_device(load_config("halfcheetah", [*cuda, f"runtime.inline={m}"]))
            for m in ("true", "false")} == {"cuda"}
