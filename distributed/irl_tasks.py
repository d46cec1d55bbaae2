"""Spread MaxEnt IRL destination batches over Ray tasks (DESIGN.md: one backward/forward pass per
destination MDP; passes for different destinations are independent).

``ray_map(fn, items)`` has the signature of ``agents.irl.learning.serial_map``: pass it as the
objective's ``map_fn``. When Ray is not initialised it runs serially in this process, so the same
code serves ``--inline`` runs and tests. The function (a ``functools.partial`` holding the graph,
features and current rewards) is put in the object store once per call, not once per task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ray

from distributed.ray_address import check_reachable


@ray.remote
def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def ray_map(fn: Callable[[Any], Any], items: Sequence[Any], num_cpus: float = 1.0) -> list[Any]:
    """[fn(item) for item in items], as Ray tasks when Ray is running (results in input order)."""
    if not ray.is_initialized() or len(items) <= 1:
        return [fn(it) for it in items]
    fn_ref = ray.put(fn)
    refs = [_apply.options(num_cpus=num_cpus).remote(fn_ref, it) for it in items]
    return ray.get(refs)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start (``address=None``) or join (``'auto'``) Ray unless it is already running."""
    if not ray.is_initialized():
        if address:
            check_reachable(address)
        ray.init(address=address, num_cpus=num_cpus if address is None else None,
                 include_dashboard=False, log_to_driver=False)
