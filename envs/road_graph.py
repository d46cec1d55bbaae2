"""Road networks as deterministic graph MDPs (Ziebart et al. 2008, "Route Choice as an MDP").

A state is a directed road segment; an action is a transition from one segment to a next one at an
intersection. Each segment has a length (miles), a speed limit (mph), a road type and a lane count;
each transition has a turn type. The paper's 22 path features plus a constant per-edge cost are
computed per *transition* (the features of the segment it enters, plus its turn, plus 1):

    miles by road type (5) | miles by speed category (6) | miles by lane category (6) |
    counts of straight, left, right, hard-left, hard-right transitions (5) | per-edge constant (1)

Plain formats (see docs/irl.md): a directory with ``segments.csv`` and ``transitions.csv``, or one
``.npz`` file holding the same columns as arrays.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from envs.atomic_files import atomic_write

ROAD_TYPES = ("interstate", "highway", "arterial", "collector", "local")
SPEED_EDGES_MPH = (22.5, 27.5, 37.5, 47.5, 57.5)  # 6 categories: <=20, 25, 30-35, 40-45, 50-55, 60+
SPEED_NAMES = ("speed_le20", "speed_25", "speed_30_35", "speed_40_45", "speed_50_55", "speed_ge60")
LANE_NAMES = ("lanes_1", "lanes_2", "lanes_3", "lanes_4", "lanes_5", "lanes_ge6")
TURNS = ("straight", "left", "right", "hard_left", "hard_right")
FEATURE_NAMES = (
    tuple(f"miles_{t}" for t in ROAD_TYPES)
    + tuple(f"miles_{s}" for s in SPEED_NAMES)
    + tuple(f"miles_{s}" for s in LANE_NAMES)
    + tuple(f"turn_{t}" for t in TURNS)
    + ("edge_constant",)
)
N_FEATURES = len(FEATURE_NAMES)  # 23 = the paper's 22 + constant per-edge cost

SEGMENT_COLUMNS = ("length_miles", "speed_mph", "road_type", "lanes", "x", "y")
TRANSITION_COLUMNS = ("src", "dst", "turn")
INTEGER_COLUMNS = ("road_type", "lanes", "src", "dst", "turn")


class RoadGraphError(ValueError):
    """A malformed road graph or file; the message names the column or row."""


@dataclass
class RoadGraph:
    length_miles: np.ndarray  # [n] float
    speed_mph: np.ndarray  # [n] float
    road_type: np.ndarray  # [n] int in [0, 5)
    lanes: np.ndarray  # [n] int >= 1
    x: np.ndarray  # [n] float, segment midpoint (miles), for plots
    y: np.ndarray  # [n] float
    src: np.ndarray  # [m] int, transition from segment
    dst: np.ndarray  # [m] int, transition to segment
    turn: np.ndarray  # [m] int in [0, 5), index into TURNS

    def __post_init__(self) -> None:
        for f in fields(self):
            setattr(self, f.name, np.asarray(getattr(self, f.name)))
        self.validate()

    @property
    def n_segments(self) -> int:
        return int(self.length_miles.size)

    @property
    def n_transitions(self) -> int:
        return int(self.src.size)

    def validate(self) -> None:
        n = self.length_miles.size
        for name in SEGMENT_COLUMNS:
            if getattr(self, name).shape != (n,):
                raise RoadGraphError(f"segment column {name!r} must have shape ({n},)")
        m = self.src.size
        for name in TRANSITION_COLUMNS:
            if getattr(self, name).shape != (m,):
                raise RoadGraphError(f"transition column {name!r} must have shape ({m},)")
        if n == 0:
            raise RoadGraphError("road graph has no segments")
        if not (np.isfinite(self.length_miles).all() and (self.length_miles > 0).all()):
            raise RoadGraphError("length_miles must be finite and > 0")
        if not (np.isfinite(self.speed_mph).all() and (self.speed_mph > 0).all()):
            raise RoadGraphError("speed_mph must be finite and > 0")
        if self.road_type.min() < 0 or self.road_type.max() >= len(ROAD_TYPES):
            raise RoadGraphError(f"road_type must be in [0, {len(ROAD_TYPES)})")
        if self.lanes.min() < 1:
            raise RoadGraphError("lanes must be >= 1")
        lo = min(self.src.min(), self.dst.min()) if m else 0
        if m and (lo < 0 or max(self.src.max(), self.dst.max()) >= n):
            raise RoadGraphError(f"transition src/dst must be segment ids in [0, {n})")
        if m and (self.turn.min() < 0 or self.turn.max() >= len(TURNS)):
            raise RoadGraphError(f"turn must be in [0, {len(TURNS)})")

    # ---- features ---------------------------------------------------------------------------
    def segment_features(self) -> np.ndarray:
        """[n, 17] miles by road type, speed category and lane category."""
        n = self.n_segments
        speed_cat = np.searchsorted(np.asarray(SPEED_EDGES_MPH), self.speed_mph)
        lane_cat = np.minimum(self.lanes, 6) - 1
        F = np.zeros((n, 17))
        rows = np.arange(n)
        F[rows, self.road_type] = self.length_miles
        F[rows, 5 + speed_cat] = self.length_miles
        F[rows, 11 + lane_cat] = self.length_miles
        return F

    def action_features(self) -> np.ndarray:
        """[m, 23] features of each transition: entered segment's miles, turn one-hot, constant."""
        phi = np.zeros((self.n_transitions, N_FEATURES))
        phi[:, :17] = self.segment_features()[self.dst]
        phi[np.arange(self.n_transitions), 17 + self.turn] = 1.0
        phi[:, 22] = 1.0
        return phi

    def travel_time_s(self) -> np.ndarray:
        """[n] seconds to drive each segment at its speed limit."""
        return self.length_miles / self.speed_mph * 3600.0

    # ---- IO ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """``*.npz`` -> one archive; anything else -> directory with the two CSV files."""
        path = Path(path)  # each file written atomically: a crash leaves the previous one whole
        if path.suffix == ".npz":
            arrays = {f.name: getattr(self, f.name) for f in fields(self)}
            atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))
            return path
        path.mkdir(parents=True, exist_ok=True)
        seg = np.column_stack([self.length_miles, self.speed_mph, self.road_type, self.lanes,
                               self.x, self.y])
        atomic_write(path / "segments.csv", lambda fh: np.savetxt(
            fh, seg, delimiter=",", comments="", header=",".join(SEGMENT_COLUMNS),
            fmt=["%.9g", "%.6g", "%d", "%d", "%.9g", "%.9g"]))
        tr = np.column_stack([self.src, self.dst, self.turn])
        atomic_write(path / "transitions.csv", lambda fh: np.savetxt(
            fh, tr, delimiter=",", comments="", fmt="%d", header=",".join(TRANSITION_COLUMNS)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RoadGraph:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"road graph {path} does not exist")
        if path.suffix == ".npz":
            with np.load(path) as z:
                missing = [c for c in SEGMENT_COLUMNS + TRANSITION_COLUMNS if c not in z.files]
                if missing:
                    raise RoadGraphError(f"{path}: missing arrays {missing}")
                cols = {c: np.asarray(z[c]) for c in SEGMENT_COLUMNS + TRANSITION_COLUMNS}
            for c in INTEGER_COLUMNS:  # as the CSV loader: integral values, stored as int64
                cols[c] = _as_int(cols[c], f"{path}: {c}")
            return cls(**cols)
        seg = _read_csv(path / "segments.csv", SEGMENT_COLUMNS)
        tr = _read_csv(path / "transitions.csv", TRANSITION_COLUMNS)
        return cls(length_miles=seg[:, 0], speed_mph=seg[:, 1],
                   road_type=_as_int(seg[:, 2], "road_type"), lanes=_as_int(seg[:, 3], "lanes"),
                   x=seg[:, 4], y=seg[:, 5], src=_as_int(tr[:, 0], "src"),
                   dst=_as_int(tr[:, 1], "dst"), turn=_as_int(tr[:, 2], "turn"))


def _as_int(col: np.ndarray, name: str) -> np.ndarray:
    col = np.asarray(col)
    if not np.issubdtype(col.dtype, np.number) or not np.all(col == np.round(col)):
        raise RoadGraphError(f"column {name!r} must hold integers")
    return col.astype(np.int64)


def _read_csv(path: Path, columns: tuple[str, ...]) -> np.ndarray:
    """Numeric CSV with a header naming ``columns`` (in any order; extra columns are ignored)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with open(path, newline="") as fh:
        header = [h.strip() for h in next(csv.reader(fh), [])]
    missing = [c for c in columns if c not in header]
    if missing:
        raise RoadGraphError(f"{path}: header lacks columns {missing} (has {header})")
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2,
                          usecols=[header.index(c) for c in columns])
    except ValueError as e:
        raise RoadGraphError(f"{path}: non-numeric value ({e})") from e
    return data
