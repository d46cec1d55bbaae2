"""Run directories: ``runs/<preset>-<timestamp>/`` with config.yaml, tb/, checkpoint.pt, plots/."""

from __future__ import annotations

import time
from pathlib import Path

from distributed.checkpoint import CHECKPOINT_NAME
from launch.config import ConfigError


def new_run_dir(preset: str, out: str | None) -> Path:
    if out is not None:
        path = Path(out)
        if (path / CHECKPOINT_NAME).exists() or (path / "config.yaml").exists():
            raise ConfigError(f"run directory {path} already holds a run; "
                              f"use --resume {path} or another --out")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{preset}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{preset}-{stamp}-{suffix}"
    path.mkdir(parents=True, exist_ok=True)
    return path
