"""Destination batches as Ray tasks give the same objective and gradient as the serial map."""

from __future__ import annotations

import numpy as np
import pytest

from agents.irl import GraphMDP
from agents.irl.inference import maxent_policy
from agents.irl.learning import MaxEntObjective
from envs.city_generator import generate_city
from envs.demonstrations import synthetic_drivers
from launch.irl_cli import TRUE_COST


@pytest.mark.ray
def test_ray_tasks_match_serial(local_ray):
    import ray

    from distributed.irl_tasks import ray_map

    g = generate_city(10, 10, seed=0)
    mdp = GraphMDP(g.n_segments, g.src, g.dst)
    phi = g.action_features()
    dests = np.arange(0, 60, 10)
    demos = synthetic_drivers(g, TRUE_COST, lambda c, d: maxent_policy(mdp, -(phi @ c), d)[0],
                              120, dests, seed=0, min_length=3)
    c = np.ones(phi.shape[1])
    serial = MaxEntObjective(mdp, phi, demos.paths, dest_batch=2).value_and_grad(c)
    assert ray.is_initialized()  # else ray_map runs the tasks serially, here
    obj = MaxEntObjective(mdp, phi, demos.paths, dest_batch=2, map_fn=ray_map)
    assert len(obj.items) == 3  # three tasks
    par = obj.value_and_grad(c)
    assert par[0] == pytest.approx(serial[0], rel=1e-12)
    np.testing.assert_allclose(par[1], serial[1], rtol=1e-10)
