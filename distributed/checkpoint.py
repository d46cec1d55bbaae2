"""Atomic checkpoints: ``torch.save`` of tensors and plain types, loaded with weights_only=True.

A checkpoint is written to a temporary file in the same directory, fsynced, then renamed over
``checkpoint.pt`` (rename is atomic on POSIX), so a crash mid-write leaves the previous
checkpoint intact and readable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.atomic_files import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a softq checkpoint."""


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    path = Path(run_dir) / CHECKPOINT_NAME
    atomic_torch_save({"format": "softq-checkpoint-v1", **state}, path)
    return path


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint file, or ``checkpoint.pt`` inside a run directory."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        raise CheckpointError(f"corrupt or unsafe checkpoint {path}: "
                              f"{_load_failure(exc)}") from exc
    if not isinstance(state, dict) or state.get("format") != "softq-checkpoint-v1":
        raise CheckpointError(f"{path} is not a softq checkpoint")
    problem = _layout_problem(state)
    if problem:
        raise CheckpointError(f"{path} is not a whole softq checkpoint: {problem}")
    return state


def _layout_problem(state: dict[str, Any]) -> str:
    """What every reader of a checkpoint takes as given and finds missing or malformed ('' if
    nothing): counters with a step count, the runner's state, a list of replay shard states."""
    counters, replay = state.get("counters"), state.get("replay")
    if not isinstance(counters, dict):
        return f"'counters' is {counters!r}, not a mapping"
    steps = counters.get("env_steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        return f"counters 'env_steps' is {steps!r}, not a count of steps"
    if not isinstance(state.get("runner"), dict):
        return f"'runner' is {type(state.get('runner')).__name__}, not a mapping"
    if replay is not None and not (isinstance(replay, list)
                                   and all(isinstance(r, dict) for r in replay)):
        return f"'replay' is {type(replay).__name__}, not a list of replay shard states"
    return ""


def _load_failure(exc: Exception) -> str:
    """One line on why torch.load refused a file. Its weights-only refusal advises loading with
    weights_only=False, which softq never does (that would run the file's pickled code): keep
    only the unpickler's reason."""
    text = str(exc)
    if "Weights only load failed" not in text:
        return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
    reason = next((line.split("WeightsUnpickler error:", 1)[1].strip()
                   for line in text.splitlines() if "WeightsUnpickler error:" in line), "")
    reason = reason.split(". ")[0]  # not its advice to allowlist the global
    return ("not a file of tensors and plain types, the only kind softq loads"
            + (f" ({reason})" if reason else ""))


def check_replay_shards(saved: list[dict], servers: int, inline: bool) -> None:
    """A run resumes its replay shard by shard: the checkpoint must hold one state per server
    (an inline run saves one; a Ray run one per replay.shards)."""
    if len(saved) == servers:
        return
    if inline:
        hint = "a Ray run's; resume it with --set runtime.inline=false"
    else:
        hint = (f"this Ray run has {servers}" if len(saved) != 1 else
                "an inline run's; resume it with --set runtime.inline=true")
    raise CheckpointError(f"the checkpoint holds {len(saved)} replay shard state(s) ({hint}): "
                          "resuming would lose replay contents or counts")


def map_leaves(obj: Any, is_leaf: Callable[[Any], bool], fn: Callable[[Any], Any]) -> Any:
    """A nested state (dicts, lists, tuples) with ``fn(x)`` in place of every ``x`` that
    ``is_leaf``; everything else kept as it is."""
    if is_leaf(obj):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_leaves(v, is_leaf, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_leaves(v, is_leaf, fn) for v in obj)
    return obj


def cpu_state(obj: Any) -> Any:
    """A nested state with every tensor as a detached CPU tensor: what a learner on a GPU sends
    to a driver that may have no CUDA (Ray unpickles a tensor on the device it was saved from)."""
    return map_leaves(obj, torch.is_tensor, lambda t: t.detach().cpu())


def _shared_tensor(a: np.ndarray) -> torch.Tensor:
    if a.size == 0:  # Ray hands out an object's zero-length arrays at one address (see below)
        a = np.empty(a.shape, a.dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def arrays_as_tensors(obj: Any) -> Any:
    """A nested state with every numpy array as a tensor sharing its memory: replay states are
    arrays (their shard actors run without torch), and ``weights_only=True`` loads tensors.
    Arrays from Ray's object store are read-only; torch warns about sharing them, but
    ``torch.save`` only reads them. Ray hands out an object's zero-length arrays at one address,
    which torch.save refuses to save as tensors of different dtypes: those get memory of their
    own (nothing to copy)."""
    return map_leaves(obj, lambda x: isinstance(x, np.ndarray), _shared_tensor)


def tensors_as_arrays(obj: Any) -> Any:
    """The inverse of :func:`arrays_as_tensors` for a loaded checkpoint's replay states: every
    (CPU) tensor as its numpy array, so that a shard actor unpickles them without torch."""
    return map_leaves(obj, torch.is_tensor, lambda t: t.numpy())


def non_finite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Paths ('learner.q.out.weight') of the floating-point tensors in a nested state that hold
    a nan or an inf: a diverged learner, whose state must not replace a good checkpoint."""
    if torch.is_tensor(state):
        finite = not state.is_floating_point() or bool(torch.isfinite(state).all())
        return [] if finite else [prefix]
    items: Any = ()
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    out = []
    for key, value in items:
        out.extend(non_finite_tensors(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def shape_differences(theirs: Any, ours: Any, prefix: str = "",
                      skip: tuple[str, ...] = ()) -> list[str]:
    """Where a checkpoint's nested state dict (``theirs``) lacks a key of ``ours`` or holds a
    tensor of another shape, as 'path is [a, b] there, [c, d] here' lines in ``ours``' key order.
    Keys only ``theirs`` has are not listed: a fresh optimizer has no per-parameter state yet.
    Top-level keys in ``skip`` are not compared (a random generator's state is 5,056 bytes on a
    CPU and 16 on CUDA: its shape says which device saved it, not whether the networks fit)."""
    if torch.is_tensor(theirs) and torch.is_tensor(ours):
        if theirs.shape == ours.shape:
            return []
        return [f"{prefix} is {list(theirs.shape)} there, {list(ours.shape)} here"]
    if not (isinstance(theirs, dict) and isinstance(ours, dict)):
        return []
    out = []
    for key in ours:
        if key in skip:
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in theirs:
            out.append(f"{path} is missing there")
        else:
            out.extend(shape_differences(theirs[key], ours[key], path))
    return out
