"""The two sides of a benchmark ratio run on the same device.

``softq bench ddpg`` pins SB3 to the CPU (device="cpu"), so softq's learner must be there too in
both of its modes. With runtime.device 'auto' a GPU host put softq's inline learner on CUDA.
"""

from __future__ import annotations

import pytest
import torch

from agents.base import resolve_device
from distributed.ray_actors import actor_device
from launch.bench.ddpg import _softq_config


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

