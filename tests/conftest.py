import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n 2 --dist loadgroup`, what .ci/run uses) the tests that start Ray
    run one after another on one worker: each starts its own local Ray and expects the cores."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def _ray_for_the_session():
    """Shuts down, at the end of the session, the local Ray that ``local_ray`` keeps running."""
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(autouse=True)
def _no_shared_ray_outside_ray_tests(request):
    """A test not marked ``ray`` runs without the Ray that ``local_ray`` leaves running: in one
    ``pytest tests`` process the Ray tests are not all together (test_finetune's comes before
    the IRL tests, whose ``ray_map`` would then run on Ray the tests meant without it)."""
    if request.node.get_closest_marker("ray") is None and "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    yield


@pytest.fixture
def local_ray(_ray_for_the_session):
    """A local 2-CPU Ray shared by the Ray tests: started once (~5 s) rather than by every test
    or module. A test that needs a Ray of its own (the two-node cluster) shuts this one down
    first; the next test that asks for it starts it again."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield
