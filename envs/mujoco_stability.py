"""Noticing a MuJoCo step that went numerically unstable.

When a position, velocity or acceleration becomes NaN, infinite or huge, ``mj_step`` raises one of
the warnings below and, unless auto-reset is disabled, resets the whole state to the model's
reference pose and carries on. The state handed back is finite, so a task that only looks for
non-finite numbers never notices, and a reward computed from the motion of the centre of mass pays
the jump back to the origin as speed (a 0.3 m jump is 6.6 reward in one ant step). The tasks call
:func:`simulate_checked` instead of ``do_simulation`` and end such an episode with reward 0.
"""

from __future__ import annotations

import mujoco
import numpy as np

UNSTABLE_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                     mujoco.mjtWarning.mjWARN_BADQACC)


def simulate_checked(env, action: np.ndarray, frame_skip: int) -> bool:
    """``env.do_simulation(action, frame_skip)``; True when MuJoCo found the state unstable (and
    reset it) in any of the substeps."""
    data = env.data
    for warning in UNSTABLE_WARNINGS:
        data.warning[warning].number = 0  # mj_resetData zeroes them too; counted per step here
    env.do_simulation(action, frame_skip)
    return any(data.warning[warning].number > 0 for warning in UNSTABLE_WARNINGS)
