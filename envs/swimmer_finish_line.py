"""The bi-directional swimmer with a finish line (Haarnoja et al. 2017, §5.2, Figures 3a and 6).

Gymnasium's three-link ``swimmer.xml`` (unchanged; ``Swimmer-v5`` dynamics, frame_skip 4, so
dt = 0.04 s) is rewarded for the speed of its centre of mass along x in *either* direction, and
once the centre of mass is past a finish line ahead of the start it also earns a bonus on every
step it stays there:

    r_t = |c' - c| / dt + finish_bonus * 1[c' >= finish_line_x] - ctrl_cost_weight * ||a||^2

with c, c' the x coordinate of the whole swimmer's centre of mass before and after the step
(``subtree_com`` of the root body, as the original code's ``get_body_comvel("torso")``). The
three equal segments are centred at x = 1, 0, -1 in the straight start pose, so c = qpos[0] = 0
there up to the reset noise. Not the torso's slide joint qpos[0]: the torso swings back and forth
around the centre of mass with every stroke, and |d qpos[0] / dt| pays ~180 per 500 steps for
flailing in place (random or sinusoidal torques; the centre of mass earns ~13-19 for the same
motions), which trained agents exploited (returns ~900 without ever reaching the line) instead of
swimming. Both swimming directions pay the same until the bonus is discovered, which is what
makes a unimodal explorer commit prematurely (§5.2). The paper gives no numbers, so they are
chosen here (all constructor arguments, documented in docs/tasks.md):

- ``finish_line_x = 2.0`` m: a swimmer averaging 0.1 m/s (a return of 100 per 1000 steps on
  Swimmer-v5, typical of DDPG) reaches it by the end of the 500-step (20 s) horizon.
- ``finish_bonus = 1.0`` per step: several times the speed term (|v| is ~0.1-0.4 m/s for
  trained swimmers), so the forward mode is clearly better once found.
- ``ctrl_cost_weight = 0.0``: the paper's reward is the speed alone (Swimmer-v5 uses 1e-4).
- ``reset_noise_scale = 0.1``: uniform noise on qpos and qvel at reset, as in Swimmer-v5.

The observation is the full qpos (x, y, heading, two joint angles) and qvel, 10 numbers: unlike
Swimmer-v5 it keeps x and y, because the bonus depends on x (the task must stay Markov).
Episodes never terminate early, except after a step in which the simulation went unstable
(MuJoCo then resets the state itself; :mod:`envs.mujoco_stability`): that step pays 0, sets
``info["sim_unstable"]`` and terminates. The registered horizon (T = 500, App. D.2) truncates.
``info`` carries ``x_position`` (torso, qpos[0]), ``com_x``, ``x_velocity`` (centre of mass),
``crossed`` (c >= finish_line_x) and ``mode``, the behaviour label the evaluation aggregates:
"forward" past the finish line, "backward" as far behind the origin (c <= -finish_line_x), else
"none".
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv
from gymnasium.utils import EzPickle

from envs.mujoco_stability import simulate_checked

FINISH_LINE_X = 2.0
FINISH_BONUS = 1.0


class SwimmerFinishLineEnv(SwimmerEnv):
    """Swimmer-v5 dynamics; reward |v_x| plus a per-step bonus past the finish line."""

    def __init__(self, finish_line_x: float = FINISH_LINE_X, finish_bonus: float = FINISH_BONUS,
                 ctrl_cost_weight: float = 0.0, reset_noise_scale: float = 0.1,
                 frame_skip: int = 4, render_mode: str | None = None, **kwargs: Any):
        if finish_line_x <= 0:
            raise ValueError(f"finish_line_x must be > 0 (ahead of the start), got {finish_line_x}")
        if finish_bonus < 0 or ctrl_cost_weight < 0:
            raise ValueError("finish_bonus and ctrl_cost_weight must be >= 0, got "
                             f"{finish_bonus} and {ctrl_cost_weight}")
        super().__init__(frame_skip=frame_skip, forward_reward_weight=1.0,
                         ctrl_cost_weight=ctrl_cost_weight, reset_noise_scale=reset_noise_scale,
                         exclude_current_positions_from_observation=False,
                         render_mode=render_mode, **kwargs)
        EzPickle.__init__(self, finish_line_x, finish_bonus, ctrl_cost_weight,
                          reset_noise_scale, frame_skip, render_mode, **kwargs)
        self.finish_line_x = float(finish_line_x)
        self.finish_bonus = float(finish_bonus)
        self._root_body = self.model.body("torso").id  # its subtree is the whole swimmer

    def com_x(self) -> float:
        """x of the whole swimmer's centre of mass, consistent with the current qpos."""
        mujoco.mj_kinematics(self.model, self.data)  # mj_step leaves it one substep stale
        mujoco.mj_comPos(self.model, self.data)
        return float(self.data.subtree_com[self._root_body, 0])

    def mode_at(self, x: float) -> str:
        """Behaviour label at centre-of-mass x: which direction's mode the swimmer is in."""
        if x >= self.finish_line_x:
            return "forward"
        if x <= -self.finish_line_x:
            return "backward"
        return "none"

    def task_reward(self, x_before: float, x_after: float,
                    action: np.ndarray) -> tuple[float, dict]:
        """Reward of a step that moved the centre of mass from ``x_before`` to ``x_after``."""
        x_velocity = (x_after - x_before) / self.dt
        speed = abs(x_velocity)
        crossed = x_after >= self.finish_line_x
        bonus = self.finish_bonus if crossed else 0.0
        ctrl_cost = self._ctrl_cost_weight * float(np.sum(np.square(action)))
        info = {"com_x": x_after, "x_velocity": x_velocity, "crossed": bool(crossed),
                "mode": self.mode_at(x_after),
                "reward_speed": speed, "reward_bonus": bonus, "reward_ctrl": -ctrl_cost}
        return speed + bonus - ctrl_cost, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        x_before = self.com_x()
        if simulate_checked(self, action, self.frame_skip):
            # MuJoCo reset the state to the reference pose: no motion to pay for.
            return self._get_obs(), 0.0, True, False, {"sim_unstable": True, "mode": "none"}
        reward, info = self.task_reward(x_before, self.com_x(), action)
        info["x_position"] = float(self.data.qpos[0])
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, False, False, info
