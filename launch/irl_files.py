"""The files of ``softq irl``: the run directory, and reading its inputs (road graph, path
files, costs) with a one-line error that names a missing, corrupt or foreign file."""

from __future__ import annotations

import csv
import json
import os
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from envs.demonstrations import load_paths
from envs.road_graph import FEATURE_NAMES, RoadGraph
from launch.config import ConfigError
from launch.run_dir import check_no_file_in_the_way, claim_run_dir, open_own_file


def out_dir(arg: str | None) -> Path:
    """The command's output directory: ``--out`` (made if need be), or a new
    ``runs/irl-<timestamp>/`` of its own."""
    out = Path(arg) if arg else Path("runs") / time.strftime("irl-%Y%m%d-%H%M%S")
    check_no_file_in_the_way(out)
    if not arg:  # another command started in the same second must not write into this one
        return claim_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


# what reading a corrupt or hand-edited input file raises (RoadGraphError is a ValueError)
_READ_ERRORS = (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
                csv.Error)


def _unreadable(f: Path, exc: BaseException, what: str) -> ConfigError:
    """The one-line error for an input file ``f`` that could not be read: its name first, then
    the loader's own message (which often names the file already)."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not msg.startswith(str(f)):
        msg = f"{f}: {msg}"
    return ConfigError(f"{msg} (not a valid {what}; see docs/irl.md)")


def load_graph(data: Path) -> RoadGraph:
    npz, csv_dir = data / "graph.npz", data / "graph"
    if npz.exists() and csv_dir.exists():
        raise ConfigError(f"{data} holds both graph.npz and graph/ (one is left from an earlier "
                          "`softq irl generate`); remove the stale one")
    for cand in (npz, csv_dir):
        if cand.exists():
            if cand.suffix == ".npz" and not (cand.is_file() and zipfile.is_zipfile(cand)):
                # np.load would take it for a pickle and refuse it as one (allow_pickle is off)
                raise ConfigError(f"{cand} is not an .npz archive (not a zip file); regenerate "
                                  "it with `softq irl generate` or see docs/irl.md")
            try:
                return RoadGraph.load(cand)
            except FileNotFoundError:  # graph/ without one of its CSV files: names it
                raise
            except _READ_ERRORS as exc:
                raise _unreadable(cand, exc, "road graph") from exc
    raise FileNotFoundError(f"{data}: no graph.npz or graph/ (run `softq irl generate` first)")


def load_checked_paths(f: Path, graph: RoadGraph) -> list[np.ndarray]:
    """``load_paths`` with a bad line, id or step as a one-line error naming the file."""
    try:
        return load_paths(f, graph)
    except FileNotFoundError:
        raise
    except _READ_ERRORS as exc:
        raise _unreadable(f, exc, "path file") from exc


def feature_weights(weights: dict) -> np.ndarray:
    """{feature: weight} -> [n_features] in FEATURE_NAMES order (KeyError/TypeError if not)."""
    return np.array([weights[n] for n in FEATURE_NAMES], dtype=float)


def load_costs(model: Path, need: str | None = None) -> dict[str, np.ndarray]:
    """model name -> cost weights [n_features] from costs.json; ``need``: a model that must be
    there (e.g. 'maxent' for the commands that plan with the learned costs)."""
    f = model / "costs.json"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found (run `softq irl train --out {model}` first)")
    try:
        raw = json.loads(f.read_text())
        costs = {k: feature_weights(v) for k, v in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ConfigError(f"{f} is not a costs file of `softq irl train` (model -> "
                          f"{{feature: weight}} with features {', '.join(FEATURE_NAMES)}): "
                          f"{type(exc).__name__}: {exc}") from exc
    # weights for features this version does not compute: costs of another feature set, refused
    # rather than silently cut down to FEATURE_NAMES
    extra = sorted({n for v in raw.values() for n in v} - set(FEATURE_NAMES))
    if extra:
        raise ConfigError(f"{f} has weights for unknown features {', '.join(extra)} (costs of "
                          f"another feature set; the features are {', '.join(FEATURE_NAMES)})")
    if need is not None and need not in costs:
        raise ConfigError(f"{f} has no {need!r} costs (it holds {', '.join(costs) or 'none'}); "
                          f"train them with `softq irl train --models {need}`")
    return costs


def open_log(path: Path):
    """``open(path, "a")`` that refuses a symbolic link: --out is often --data, a directory
    someone else may have made, where a planted link would have the log appended to the file it
    names."""
    fd = open_own_file(path, os.O_WRONLY | os.O_APPEND, "not a log of softq's: remove the "
                       "link or choose another --out")
    return os.fdopen(fd, "a")


def remove_other_graph(out: Path, fmt: str) -> None:
    """Regenerating in the other ``--format`` would leave the earlier graph beside the new one,
    and the commands reading ``out`` would pick the stale one: remove it (it belongs to the
    paths this call overwrites), or refuse when it is not what `generate` writes."""
    if fmt == "csv":
        stale, files = out / "graph.npz", []
        if stale.exists() and not stale.is_file():
            raise ConfigError(f"{stale} is not a file; move it away to generate into {out}")
    else:
        stale = out / "graph"
        if stale.exists() and not stale.is_dir():
            raise ConfigError(f"{stale} is not a directory; move it away to generate into {out}")
        files = sorted(p.name for p in stale.iterdir()) if stale.is_dir() else []
        if set(files) - {"segments.csv", "transitions.csv"}:
            raise ConfigError(f"{stale}/ holds files other than segments.csv and transitions.csv "
                              f"({', '.join(files)}); move it away to generate into {out}")
    if not stale.exists():
        return
    if stale.is_dir():
        for name in files:
            (stale / name).unlink()
        stale.rmdir()
    else:
        stale.unlink()
    print(f"removed {stale}{'/' if files else ''} of an earlier `softq irl generate` "
          f"(--format {fmt} writes the graph anew)")


def existing_costs(out: Path) -> dict[str, np.ndarray]:
    """The costs ``out/costs.json`` holds already ({} if none). One that cannot be read is
    refused rather than overwritten: nothing already written is lost."""
    if not (out / "costs.json").exists():
        return {}
    try:
        return load_costs(out)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; --out {out} holds it and this run would replace it: move it "
                          "away or choose another --out") from exc


def load_true_cost(data: Path) -> np.ndarray | None:
    """The hidden costs of `generate`'s drivers (data/true_cost.json), None if there are none."""
    f = data / "true_cost.json"
    if not f.exists():
        return None
    try:
        return feature_weights(json.loads(f.read_text()))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ConfigError(f"{f}: not a costs file of `softq irl generate` ({{feature: weight}} "
                          f"with features {', '.join(FEATURE_NAMES)}): "
                          f"{type(exc).__name__}: {exc}") from exc
