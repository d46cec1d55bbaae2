"""The two sides of a benchmark ratio run on the same device.

``softq bench ddpg`` pins SB3 to the CPU (device="cpu"), so softq's learner must be there too in
both of its modes; ``softq bench runtime`` compares inline against Ray, whose learner takes
CUDA only when it reserved a GPU. With runtime.device 'auto' a GPU host put softq's inline learner
on CUDA in both benchmarks (the pinned-CPU or Ray side stayed on the CPU). SB3's DDPG explores
with the OU process softq's does (its default time step made it another process).
"""

from __future__ import annotations

import numpy as np
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


def test_bench_ddpg_gives_sb3_the_ou_process_softq_explores_with():
    """App. D.1's OU(theta 0.15, sigma 0.3), one step per env step, as agents/noise.py: driven
    by the same normals, SB3's noise must be x_{t+1} = 0.85 x_t + 0.3 eps_t (SB3's default
    dt = 0.01 gave x_{t+1} = 0.9985 x_t + 0.03 eps_t)."""
    pytest.importorskip("stable_baselines3")
    from launch.bench.ddpg import _sb3_ou_noise

    noise = _sb3_ou_noise(6)
    np.random.seed(0)  # SB3 draws from NumPy's global stream
    got = np.stack([noise() for _ in range(4)])  # [4, 6]
    np.random.seed(0)
    x, want = np.zeros(6), []
    for _ in range(4):
        x = 0.85 * x + 0.3 * np.random.normal(size=6)
        want.append(x)
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-6)
