"""Quadruped (Ant) tasks of Haarnoja et al. 2017: the two-passage maze (§5.2, Figure 3b) and the
pretraining / fine-tuning tasks of §5.3 (Figure 4).

``AntMazeCompact`` and ``AntUMazeCompact`` are the two mazes at a small size (2.5 m passages and
arms), for the ``-quick`` presets: a quadruped learning from scratch in minutes of CPU does not
get round the paper-size walls.

Every task is Gymnasium's ``ant.xml`` (unchanged robot, frame_skip 5, dt = 0.05 s) plus static
box walls and a target marker added to the worldbody in code (:func:`ant_xml`). They share
:class:`AntTaskEnv`; a task subclass only lists its walls and its reward. All constants are
documented in docs/tasks.md. Common to all tasks:

- observation: qpos (15: torso x, y, z, quaternion, 8 joint angles) and qvel (14), 29 numbers.
  x and y are kept (the stock Ant drops them) so maze and hallway policies know where they are;
  every task has the same spaces, so a pretrained policy fine-tunes on any of them.
- "centre of mass" (c): the whole robot's centre of mass in the plane, ``subtree_com`` of the
  torso recomputed from the post-step qpos.
- termination: the ant *flipped*, i.e. the world z component of the torso's z axis,
  1 - 2 (q_x^2 + q_y^2) for the unit quaternion q, fell below ``flip_cos = 0.0`` (tilt > 90
  degrees). There is no height-based termination and no survival bonus by default (App. D.2
  adds only this termination); the horizon T = 500 truncates. A step in which the simulation
  went unstable (MuJoCo then resets the state itself; :mod:`envs.mujoco_stability`) also
  terminates, with reward 0 and ``info["sim_unstable"] = True``.
- reset: the stock pose + uniform(-0.1, 0.1) on qpos and N(0, 0.1^2) on qvel (as Ant-v5).
- ``ctrl_cost_weight`` (default 0): optional  - w ||a||^2 term; the paper's rewards have none.
- ``survive_reward`` (default 0): optional constant per step (rllab's ant pays 0.05).

Rewards (c and c' the centre of mass before and after the step):
- speed tasks (AntAnyDirection, hallways): r = ||c' - c|| / dt, speed in any planar direction.
- target tasks (AntMaze, AntUMaze): r = target_peak exp(-||c' - g||^2 / (2 target_sigma^2)), a
  Gaussian bump at the target g (target_peak 1 by default; the co-author's U-maze scripts use 10).

``info["mode"]`` is a behaviour label the evaluation aggregates into shares: speed tasks give the
compass sector ("E", "NE", "N", ... "SE"; 8 sectors of 45 degrees centred on the axes) of the
centre of mass's displacement since the reset, or "none" within ``MIN_RUN_DISTANCE`` of the start;
target tasks give "target" within ``reach_radius`` of the target, else "none".
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box
from gymnasium.utils import EzPickle

from envs.mujoco_stability import simulate_checked

ANT_XML = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "ant.xml")
ANT_TIMESTEP = float(ET.parse(ANT_XML).getroot().find("option").get("timestep"))  # 0.01 s

# (name, centre (x, y), half-sizes (hx, hy)) of a wall box standing on the floor.
Wall = tuple[str, tuple[float, float], tuple[float, float]]
WALL_HEIGHT = 1.0  # m; walls stand from z = 0 to 1 (the torso rides at ~0.55-0.75 m)
WALL_HALF_THICKNESS = 0.25  # m
FLIP_COS = 0.0  # terminate when cos(torso tilt) < this, i.e. tilt > 90 degrees
MIN_RUN_DISTANCE = 1.0  # m; a smaller displacement from the start is no running direction
SECTORS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")  # counter-clockwise from +x


def direction_sector(displacement: np.ndarray, min_distance: float = MIN_RUN_DISTANCE) -> str:
    """Compass sector of a planar displacement [2]; sector k spans (k -+ 1/2) * 45 degrees."""
    dx, dy = float(displacement[0]), float(displacement[1])
    if np.hypot(dx, dy) < min_distance:
        return "none"
    angle = np.arctan2(dy, dx)  # (-pi, pi]
    return SECTORS[int(np.floor(angle / (np.pi / 4) + 0.5)) % 8]


def box_outline(x0: float, x1: float, y0: float, y1: float, prefix: str) -> list[Wall]:
    """Four walls whose *inner* faces bound the rectangle [x0, x1] x [y0, y1]."""
    t = WALL_HALF_THICKNESS
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 + 2 * t, (y1 - y0) / 2
    return [(f"{prefix}_south", (cx, y0 - t), (hx, t)), (f"{prefix}_north", (cx, y1 + t), (hx, t)),
            (f"{prefix}_west", (x0 - t, cy), (t, hy)), (f"{prefix}_east", (x1 + t, cy), (t, hy))]


def block(x0: float, x1: float, y0: float, y1: float, name: str) -> Wall:
    """A solid wall block filling [x0, x1] x [y0, y1]."""
    return (name, ((x0 + x1) / 2, (y0 + y1) / 2), ((x1 - x0) / 2, (y1 - y0) / 2))


def ant_xml(walls: list[Wall], target: tuple[float, float] | None = None) -> str:
    """Gymnasium's ant.xml with wall boxes and an (inert) target marker added to the worldbody."""
    root = ET.parse(ANT_XML).getroot()
    world = root.find("worldbody")
    h = WALL_HEIGHT / 2
    for name, (cx, cy), (hx, hy) in walls:
        ET.SubElement(world, "geom", name=name, type="box", pos=f"{cx} {cy} {h}",
                      size=f"{hx} {hy} {h}", contype="1", conaffinity="1", condim="3",
                      rgba="0.4 0.4 0.5 1")
    if target is not None:
        ET.SubElement(world, "site", name="target", type="sphere",
                      pos=f"{target[0]} {target[1]} 0.3", size="0.3", rgba="1 0.2 0.2 0.6")
    return ET.tostring(root, encoding="unicode")


class AntTaskEnv(MujocoEnv, EzPickle):
    """Ant with walls; subclasses set ``walls``, ``target`` and override :meth:`task_reward`."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"],
                "render_fps": 20}
    walls: list[Wall] = []
    target: tuple[float, float] | None = None
    reach_radius: float = 1.0
    """Target tasks: info["mode"] is "target" when the centre of mass is closer than this."""

    def __init__(self, ctrl_cost_weight: float = 0.0, flip_cos: float = FLIP_COS,
                 reset_noise_scale: float = 0.1, frame_skip: int = 5,
                 survive_reward: float = 0.0, render_mode: str | None = None, **kwargs: Any):
        if ctrl_cost_weight < 0:
            raise ValueError(f"ctrl_cost_weight must be >= 0, got {ctrl_cost_weight}")
        if not np.isfinite(survive_reward):
            raise ValueError(f"survive_reward must be finite, got {survive_reward}")
        if not -1.0 <= flip_cos <= 1.0:
            raise ValueError(f"flip_cos is a cosine and must lie in [-1, 1], got {flip_cos}")
        EzPickle.__init__(self, ctrl_cost_weight=ctrl_cost_weight, flip_cos=flip_cos,
                          reset_noise_scale=reset_noise_scale, frame_skip=frame_skip,
                          survive_reward=survive_reward, render_mode=render_mode, **kwargs)
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.survive_reward = float(survive_reward)
        self.flip_cos = float(flip_cos)
        self.reset_noise_scale = float(reset_noise_scale)
        if int(frame_skip) != frame_skip or frame_skip < 1:
            raise ValueError(f"frame_skip must be a positive integer, got {frame_skip}")
        # MujocoEnv asserts render_fps == 1 / dt, so set it for this frame_skip before building.
        self.metadata = {**self.metadata,
                         "render_fps": int(np.round(1.0 / (ANT_TIMESTEP * frame_skip)))}
        MujocoEnv.__init__(self, ANT_XML, int(frame_skip), observation_space=None,
                           render_mode=render_mode, **kwargs)
        obs_size = self.model.nq + self.model.nv  # 15 + 14
        self.observation_space = Box(-np.inf, np.inf, shape=(obs_size,), dtype=np.float64)
        self._torso_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        self._goal = None if self.target is None else np.asarray(self.target, dtype=np.float64)
        self._com_start = self.com_xy()  # [2], re-read at every reset

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = mujoco.MjModel.from_xml_string(ant_xml(self.walls, self.target))
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    # ------------------------------------------------------------------ state read-outs
    def com_xy(self) -> np.ndarray:
        """Planar centre of mass of the whole robot, [2], consistent with the current qpos."""
        # mj_step leaves position-derived quantities one substep stale; refresh them.
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return self.data.subtree_com[self._torso_id, :2].copy()

    def upright_cos(self) -> float:
        """World z component of the torso's z axis: 1 upright, 0 on its side, -1 upside down."""
        q = self.data.qpos[3:7] / np.linalg.norm(self.data.qpos[3:7])  # (w, x, y, z)
        return float(1.0 - 2.0 * (q[1] * q[1] + q[2] * q[2]))  # R[2, 2] of the rotation

    def is_flipped(self) -> bool:
        return self.upright_cos() < self.flip_cos

    # ------------------------------------------------------------------ task hooks
    def task_reward(self, com_before: np.ndarray, com_after: np.ndarray) -> tuple[float, dict]:
        raise NotImplementedError

    def _speed_reward(self, com_before: np.ndarray, com_after: np.ndarray) -> tuple[float, dict]:
        velocity = (com_after - com_before) / self.dt  # [2]
        speed = float(np.linalg.norm(velocity))
        mode = direction_sector(com_after - self._com_start)
        return speed, {"reward_speed": speed, "mode": mode}

    def _target_reward(self, com_before: np.ndarray, com_after: np.ndarray,
                       sigma: float, peak: float = 1.0) -> tuple[float, dict]:
        dist = float(np.linalg.norm(com_after - self._goal))
        reward = peak * float(np.exp(-dist * dist / (2.0 * sigma * sigma)))
        mode = "target" if dist < self.reach_radius else "none"
        return reward, {"reward_target": reward, "distance_to_target": dist, "mode": mode}

    # ------------------------------------------------------------------ gym API
    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        com_before = self.com_xy()
        if simulate_checked(self, action, self.frame_skip):
            # MuJoCo reset the state to the reference pose: no motion to pay for.
            return self._get_obs(), 0.0, True, False, {"sim_unstable": True, "mode": "none"}
        com_after = self.com_xy()
        reward, info = self.task_reward(com_before, com_after)
        if self.ctrl_cost_weight:
            ctrl_cost = self.ctrl_cost_weight * float(np.sum(np.square(action)))
            reward -= ctrl_cost
            info["reward_ctrl"] = -ctrl_cost
        if self.survive_reward:
            reward += self.survive_reward
            info["reward_survive"] = self.survive_reward
        terminated = self.is_flipped()
        info.update(x_position=float(com_after[0]), y_position=float(com_after[1]),
                    upright_cos=self.upright_cos())
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(reward), terminated, False, info

    def reset_model(self) -> np.ndarray:
        s = self.reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(-s, s, size=self.model.nq)
        qvel = self.init_qvel + s * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        self._com_start = self.com_xy()
        return self._get_obs()

    def _get_reset_info(self) -> dict[str, float]:
        com = self.com_xy()
        return {"x_position": float(com[0]), "y_position": float(com[1])}


# ---------------------------------------------------------------------- §5.3 pretraining
class AntAnyDirectionEnv(AntTaskEnv):
    """Open floor; reward = planar speed of the centre of mass in any direction (§5.3)."""

    def task_reward(self, com_before, com_after):
        return self._speed_reward(com_before, com_after)


# ---------------------------------------------------------------------- §5.3 hallways
HALLWAY_HALF_LENGTH = 100.0  # m; unreachable in 500 steps (25 s)
HALLWAY_WIDE_HALF_WIDTH = 3.0  # m; the ant's legs span ~1.6 m
HALLWAY_NARROW_HALF_WIDTH = 1.25  # m; little room beyond the ant's own width


def hallway_walls(half_width: float) -> list[Wall]:
    """Two walls along x whose inner faces are at y = +-half_width; both ends open."""
    t, length = WALL_HALF_THICKNESS, HALLWAY_HALF_LENGTH
    return [("hall_south", (0.0, -half_width - t), (length, t)),
            ("hall_north", (0.0, half_width + t), (length, t))]


class AntHallwayWideEnv(AntTaskEnv):
    """Speed reward between walls at y = +-3 m: the ant must learn to run along x (§5.3)."""

    walls = hallway_walls(HALLWAY_WIDE_HALF_WIDTH)

    def task_reward(self, com_before, com_after):
        return self._speed_reward(com_before, com_after)


class AntHallwayNarrowEnv(AntHallwayWideEnv):
    """Speed reward between walls at y = +-1.25 m (§5.3)."""

    walls = hallway_walls(HALLWAY_NARROW_HALF_WIDTH)


# ---------------------------------------------------------------------- §5.2 two-passage maze
TARGET_SIGMA = 2.0  # m; std of the Gaussian reward bump (both target tasks)


def two_passage_maze(arena: tuple[float, float, float, float],
                     divider: tuple[float, float, float], barrier: tuple[float, float],
                     prefix: str) -> list[Wall]:
    """Walls of the §5.2 maze: the arena outline (x0, x1, y0, y1), a divider block
    [dx0, dx1] x [-dy, dy] (``divider = (dx0, dx1, dy)``) facing the start, which splits the way
    to the target into an upper and a lower passage (mirror images), and a barrier
    [bx0, bx1] x [dy, y1] (``barrier = (bx0, bx1)``) that closes the upper one."""
    x0, x1, y0, y1 = arena
    dx0, dx1, dy = divider
    bx0, bx1 = barrier
    return box_outline(x0, x1, y0, y1, prefix) + [
        block(dx0, dx1, -dy, dy, f"{prefix}_divider"),
        block(bx0, bx1, dy, y1, f"{prefix}_barrier"),
    ]


# Arena [-2.5, 10.5] x [-5, 5]; a central block [2, 6.5] x [-1.5, 1.5] splits the way to the
# target into an upper (y > 1.5) and a lower (y < -1.5) passage, 3.5 m wide each and mirror
# images of each other, except for a barrier [5.5, 6] x [1.5, 5] that closes the upper one.
MAZE_TARGET = (8.5, 0.0)
MAZE_WALLS: list[Wall] = two_passage_maze((-2.5, 10.5, -5.0, 5.0), (2.0, 6.5, 1.5), (5.5, 6.0),
                                            "maze")
# Closest the centre of mass can get to the target through the upper passage, a lower bound
# (the corner (5.5, 1.5) of the barrier; the ant's body keeps it further): Figure 3b's threshold.
MAZE_UPPER_PASSAGE_MIN_DISTANCE = float(np.hypot(MAZE_TARGET[0] - 5.5, MAZE_TARGET[1] - 1.5))

# The same maze at a small size, for the -quick presets (a quadruped learning from scratch for
# minutes on 2 CPU cores does not get round the paper-size divider, ~12 m of walking): arena
# [-1.5, 5] x [-3.25, 3.25], divider [1.25, 2.25] x [-0.75, 0.75], passages 2.5 m wide (the narrow
# hallway's width), barrier [1.75, 2.25] x [0.75, 3.25], target (3.5, 0), 3.5 m from the start
# (reward exp(-3.5^2/8) = 0.22 there, <= 0.42 at the divider's face).
MAZE_COMPACT_TARGET = (3.5, 0.0)
MAZE_COMPACT_WALLS: list[Wall] = two_passage_maze((-1.5, 5.0, -3.25, 3.25), (1.25, 2.25, 0.75),
                                                  (1.75, 2.25), "maze")
# Barrier corner (1.75, 0.75) to the target: hypot(1.75, 0.75) = 1.904 m.
MAZE_COMPACT_UPPER_PASSAGE_MIN_DISTANCE = float(np.hypot(MAZE_COMPACT_TARGET[0] - 1.75,
                                                         MAZE_COMPACT_TARGET[1] - 0.75))


class AntMazeEnv(AntTaskEnv):
    """Reach the target at (8.5, 0) through the lower passage; the upper one is blocked."""

    walls = MAZE_WALLS
    target = MAZE_TARGET
    # Below Figure 3b's threshold only the lower passage leads: "target" = the better mode.
    reach_radius = MAZE_UPPER_PASSAGE_MIN_DISTANCE

    def __init__(self, target_sigma: float = TARGET_SIGMA, target_peak: float = 1.0,
                 **kwargs: Any):
        if target_sigma <= 0:
            raise ValueError(f"target_sigma must be > 0, got {target_sigma}")
        if not target_peak > 0:
            raise ValueError(f"target_peak must be > 0, got {target_peak}")
        self.target_sigma = float(target_sigma)
        self.target_peak = float(target_peak)
        super().__init__(**kwargs)
        self._ezpickle_kwargs = {"target_sigma": target_sigma, "target_peak": target_peak,
                                 **self._ezpickle_kwargs}

    def task_reward(self, com_before, com_after):
        return self._target_reward(com_before, com_after, self.target_sigma, self.target_peak)


class AntMazeCompactEnv(AntMazeEnv):
    """The two-passage maze at a small size (for the -quick presets): target at (3.5, 0),
    passages 2.5 m wide, the upper one closed by a barrier at x = 1.75."""

    walls = MAZE_COMPACT_WALLS
    target = MAZE_COMPACT_TARGET
    reach_radius = MAZE_COMPACT_UPPER_PASSAGE_MIN_DISTANCE


# ---------------------------------------------------------------------- §5.3 U-shaped maze
def u_maze(arena: tuple[float, float, float, float], divider: tuple[float, float, float, float],
           prefix: str) -> list[Wall]:
    """The arena outline (x0, x1, y0, y1) and the block (x0, x1, y0, y1) that fills the middle of
    the U from the west wall, leaving the lower arm, the bend (east) and the upper arm open."""
    return box_outline(*arena, prefix) + [block(*divider, f"{prefix}_divider")]


# Arena [-1.5, 6.5] x [-1.5, 7.5]; a block [-1.5, 3.5] x [1.5, 4.5] fills the middle of the U,
# leaving 3 m wide arms: start (0, 0) in the lower arm, target (0, 6) in the upper arm.
UMAZE_TARGET = (0.0, 6.0)
UMAZE_WALLS: list[Wall] = u_maze((-1.5, 6.5, -1.5, 7.5), (-1.5, 3.5, 1.5, 4.5), "umaze")

# The U at the narrow hallway's size, for the -quick presets: arena [-1.25, 4.25] x [-1.25,
# 5.25], block [-1.25, 1.75] x [1.25, 2.75], arms and bend 2.5 m wide, target (0, 4); the way
# round is ~10 m instead of ~16 m (arm centrelines).
UMAZE_COMPACT_TARGET = (0.0, 4.0)
UMAZE_COMPACT_WALLS: list[Wall] = u_maze((-1.25, 4.25, -1.25, 5.25), (-1.25, 1.75, 1.25, 2.75),
                                         "umaze")
# The compact U's reward bump shrinks with the maze (start-to-target 4 m instead of 6 m), so the
# task keeps the paper-size U's proportions: exp(-4^2 / (2 (4/3)^2)) = exp(-6^2 / (2 * 2^2)) =
# exp(-4.5) = 0.011 at the start in both. With the unscaled 2 m bump the start earned
# exp(-2) = 0.135 per step (~68 per episode for standing still), 12x the paper-size U's share.
UMAZE_COMPACT_TARGET_SIGMA = TARGET_SIGMA * 4.0 / 6.0


class AntUMazeEnv(AntMazeEnv):
    """Reach the target at (0, 6) around the U's inner wall; Gaussian reward (§5.3)."""

    walls = UMAZE_WALLS
    target = UMAZE_TARGET
    reach_radius = 1.5  # m, half the arm width: inside the upper arm's end


class AntUMazeCompactEnv(AntUMazeEnv):
    """The U-maze at the narrow hallway's size (for the -quick presets): target at (0, 4), reward
    bump scaled with the maze (``UMAZE_COMPACT_TARGET_SIGMA`` = 4/3 m)."""

    walls = UMAZE_COMPACT_WALLS
    target = UMAZE_COMPACT_TARGET
    reach_radius = 1.25  # m, half the arm width

    def __init__(self, target_sigma: float = UMAZE_COMPACT_TARGET_SIGMA, **kwargs: Any):
        super().__init__(target_sigma=target_sigma, **kwargs)
