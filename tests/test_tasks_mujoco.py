"""MuJoCo tasks of Haarnoja et al. 2017 (§5.2-5.3): rewards and terminations at hand-placed
states, walls that block, `check_env`, spaces."""

from __future__ import annotations

import pickle

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers softq/ ids)
from envs.ant_tasks import (
    HALLWAY_NARROW_HALF_WIDTH,
    HALLWAY_WIDE_HALF_WIDTH,
    MAZE_COMPACT_TARGET,
    MAZE_COMPACT_UPPER_PASSAGE_MIN_DISTANCE,
    MAZE_TARGET,
    MAZE_UPPER_PASSAGE_MIN_DISTANCE,
    TARGET_SIGMA,
    UMAZE_COMPACT_TARGET,
    UMAZE_TARGET,
)

ANT_IDS = ["softq/AntMaze-v0", "softq/AntAnyDirection-v0", "softq/AntHallwayWide-v0",
           "softq/AntHallwayNarrow-v0", "softq/AntUMaze-v0", "softq/AntMazeCompact-v0",
           "softq/AntUMazeCompact-v0"]
ALL_IDS = ["softq/SwimmerFinishLine-v0", *ANT_IDS]
SPEED_IDS = ["softq/AntAnyDirection-v0", "softq/AntHallwayWide-v0", "softq/AntHallwayNarrow-v0"]


def _unwrapped(env_id: str):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    return env


def _ant_state(env, xy=(0.0, 0.0), z=3.0, vxy=(0.0, 0.0), tilt_deg=0.0):
    """Stock ant pose at (x, y, z), tilted about the world x axis, moving with planar velocity
    vxy, all joint velocities zero. At z = 3 it is in free flight above every wall."""
    qpos = env.init_qpos.copy()
    qpos[0:3] = (xy[0], xy[1], z)
    half = np.deg2rad(tilt_deg) / 2
    qpos[3:7] = (np.cos(half), np.sin(half), 0.0, 0.0)
    qvel = np.zeros(env.model.nv)
    qvel[0:2] = vxy
    return qpos, qvel


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_spaces_and_pickle(env_id):
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == 500  # App. D.2
    check_env(env.unwrapped, skip_render_check=True)
    is_ant = env_id in ANT_IDS
    assert env.observation_space.shape == ((29,) if is_ant else (10,))
    assert env.action_space.shape == ((8,) if is_ant else (2,))
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert type(clone) is type(env.unwrapped)
    assert clone.observation_space == env.observation_space


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_observation_holds_position(env_id):
    env = _unwrapped(env_id)
    qpos, qvel = env.init_qpos.copy(), env.init_qvel.copy()
    qpos[0:2] = (1.25, -0.75)  # inside every arena, clear of every wall
    if env_id in ANT_IDS:
        qpos[2] = 3.0
    env.set_state(qpos, qvel)
    obs, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    np.testing.assert_array_equal(obs, np.concatenate([env.data.qpos, env.data.qvel]))
    assert abs(obs[0] - 1.25) < 0.01 and abs(obs[1] + 0.75) < 0.01


# ---------------------------------------------------------------------- swimmer
def _swimmer_step(env, x: float, vx: float):
    """Straight body along x (heading 0) with its centre of mass at ``x``, gliding at ``vx``.

    The three equal segments are centred at qpos[0] + 1, + 0, - 1, so the centre of mass is
    qpos[0]; a rigid glide moves both alike. Returns the step's reward, flags, info and c'."""
    qpos = np.zeros(env.model.nq)
    qpos[0] = x
    qvel = np.zeros(env.model.nv)
    qvel[0] = vx
    env.set_state(qpos, qvel)
    assert env.com_x() == pytest.approx(x, abs=1e-12)
    _, reward, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))
    assert info["com_x"] == pytest.approx(float(env.data.qpos[0]), abs=1e-9)  # rigid glide
    return reward, terminated, truncated, info, info["com_x"]


def test_swimmer_rewards_speed_in_both_directions():
    env = _unwrapped("softq/SwimmerFinishLine-v0")
    assert env.dt == pytest.approx(0.04) and env.finish_line_x == 2.0 and env.finish_bonus == 1.0
    r_fwd, term, trunc, info, x_fwd = _swimmer_step(env, 0.0, 0.5)
    assert not term and not trunc and not info["crossed"]
    assert r_fwd == pytest.approx(abs(x_fwd - 0.0) / 0.04, rel=1e-9)
    assert 0.3 < r_fwd < 0.5  # drag slows the glide from 0.5 m/s
    r_bwd, _, _, _, x_bwd = _swimmer_step(env, 0.0, -0.5)
    assert x_bwd == pytest.approx(-x_fwd, abs=1e-12)  # a straight body glides symmetrically
    assert r_bwd == pytest.approx(r_fwd, rel=1e-9)  # backward pays the same as forward


@pytest.mark.parametrize("x, bonus", [(2.5, 1.0), (1.9, 0.0), (-2.5, 0.0), (-30.0, 0.0)])
def test_swimmer_finish_line_bonus(x, bonus):
    env = _unwrapped("softq/SwimmerFinishLine-v0")
    reward, terminated, _, info, x_after = _swimmer_step(env, x, 0.3)
    assert not terminated
    assert info["crossed"] == (bonus > 0)
    assert reward == pytest.approx(abs(x_after - x) / 0.04 + bonus, rel=1e-9)


@pytest.mark.parametrize("x, vx, bonus", [(1.995, 0.5, 1.0), (2.005, -0.5, 0.0)])
def test_swimmer_bonus_is_paid_where_the_step_ends(x, vx, bonus):
    """The bonus is 1[c' >= finish_line_x] for c' after the step: a step that crosses the line
    earns it, one that falls back behind it does not."""
    env = _unwrapped("softq/SwimmerFinishLine-v0")
    reward, _, _, info, x_after = _swimmer_step(env, x, vx)
    assert (x_after >= 2.0) == (bonus > 0) != (x >= 2.0)  # the step crossed the line
    assert info["crossed"] == (bonus > 0)
    assert reward == pytest.approx(abs(x_after - x) / 0.04 + bonus, rel=1e-9)


def test_swimmer_reward_follows_the_centre_of_mass_not_the_torso():
    """Bending the joints swings the torso around a fixed centre of mass: the torso's x moves,
    the centre of mass does not, and the speed reward is the centre of mass's (~0)."""
    env = _unwrapped("softq/SwimmerFinishLine-v0")
    qpos, qvel = np.zeros(env.model.nq), np.zeros(env.model.nv)
    qvel[3:5] = (3.0, -3.0)  # joint rates only; the root starts at rest
    env.set_state(qpos, qvel)
    c0, x0 = env.com_x(), float(env.data.qpos[0])
    _, reward, _, _, info = env.step(np.zeros(2, dtype=np.float32))
    torso_speed = abs(float(env.data.qpos[0]) - x0) / env.dt
    com_speed = abs(info["com_x"] - c0) / env.dt
    assert reward == pytest.approx(com_speed, rel=1e-9)
    assert torso_speed > 5 * com_speed  # the old torso-based reward would pay for this


def test_swimmer_pays_little_for_flailing_in_place():
    """Random torques for 500 steps barely move the centre of mass; its summed speed stays far
    below what the torso's back-and-forth would earn (~180 for this policy)."""
    env = _unwrapped("softq/SwimmerFinishLine-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    total, torso_total = 0.0, 0.0
    for _ in range(500):
        x0 = float(env.data.qpos[0])
        total += env.step(rng.uniform(-1, 1, 2).astype(np.float32))[1]
        torso_total += abs(float(env.data.qpos[0]) - x0) / env.dt
    assert total < 40.0
    assert torso_total > 4 * total


# ---------------------------------------------------------------------- ant rewards
@pytest.mark.parametrize("env_id", SPEED_IDS)
def test_ant_speed_reward_in_free_flight(env_id):
    """In free flight the centre of mass keeps its planar velocity: r = ||(1.2, -1.6)|| = 2."""
    env = _unwrapped(env_id)
    env.set_state(*_ant_state(env, vxy=(1.2, -1.6)))
    _, reward, terminated, truncated, info = env.step(np.zeros(8, dtype=np.float32))
    assert reward == pytest.approx(2.0, abs=1e-9)
    assert not terminated and not truncated
    env.set_state(*_ant_state(env, vxy=(-2.0, 0.0)))  # the direction does not matter
    assert env.step(np.zeros(8, dtype=np.float32))[1] == pytest.approx(2.0, abs=1e-9)


@pytest.mark.parametrize("frame_skip", [1, 2, 5])
def test_ant_control_interval_follows_frame_skip(frame_skip):
    """dt = 0.01 s (ant.xml's timestep) x frame_skip, the render rate matches it, and the speed
    reward stays a speed in m/s: the same 2 m/s in free flight at every control interval."""
    env = gym.make("softq/AntAnyDirection-v0", frame_skip=frame_skip).unwrapped
    env.reset(seed=0)
    assert env.dt == pytest.approx(0.01 * frame_skip, rel=1e-12)
    assert env.metadata["render_fps"] == round(100 / frame_skip)
    env.set_state(*_ant_state(env, vxy=(1.2, -1.6)))
    assert env.step(np.zeros(8, dtype=np.float32))[1] == pytest.approx(2.0, abs=1e-9)


@pytest.mark.parametrize("frame_skip", [0, 2.5])
def test_ant_rejects_a_bad_frame_skip(frame_skip):
    with pytest.raises(ValueError, match="frame_skip"):
        gym.make("softq/AntAnyDirection-v0", frame_skip=frame_skip)


@pytest.mark.parametrize("env_id, target, sigma", [
    ("softq/AntMaze-v0", MAZE_TARGET, 2.0), ("softq/AntUMaze-v0", UMAZE_TARGET, 2.0),
    ("softq/AntMazeCompact-v0", MAZE_COMPACT_TARGET, 2.0),
    ("softq/AntUMazeCompact-v0", UMAZE_COMPACT_TARGET, 4.0 / 3.0)])
@pytest.mark.parametrize("offset", [(0.0, 0.0), (1.5, 0.0), (0.0, -2.0), (3.0, 4.0)])
def test_ant_target_reward_is_gaussian(env_id, target, sigma, offset):
    env = _unwrapped(env_id)
    env.set_state(*_ant_state(env))
    com_offset = env.com_xy() - env.data.qpos[0:2]  # centre of mass relative to the torso
    xy = np.asarray(target) + np.asarray(offset) - com_offset
    env.set_state(*_ant_state(env, xy=tuple(xy)))
    _, reward, terminated, _, info = env.step(np.zeros(8, dtype=np.float32))
    d2 = offset[0] ** 2 + offset[1] ** 2  # the ant hangs still in the air: c' = target + offset
    assert TARGET_SIGMA == 2.0 and env.target_sigma == pytest.approx(sigma, rel=1e-12)
    assert reward == pytest.approx(np.exp(-d2 / (2 * sigma**2)), rel=1e-9, abs=1e-12)
    assert info["distance_to_target"] == pytest.approx(np.sqrt(d2), abs=1e-9)
    assert not terminated


def test_ant_target_reward_is_measured_where_the_step_ends():
    """Starting on the target and gliding at 20 m/s along x, the centre of mass ends the
    dt = 0.05 s step 1 m away: r = exp(-1 / (2 sigma^2)), not the start's exp(0) = 1."""
    env = _unwrapped("softq/AntMaze-v0")
    env.set_state(*_ant_state(env))
    xy = np.asarray(MAZE_TARGET) - (env.com_xy() - env.data.qpos[0:2])
    env.set_state(*_ant_state(env, xy=tuple(xy), vxy=(20.0, 0.0)))
    _, reward, _, _, info = env.step(np.zeros(8, dtype=np.float32))
    assert info["distance_to_target"] == pytest.approx(1.0, abs=1e-9)
    assert reward == pytest.approx(np.exp(-1.0 / (2 * 2.0**2)), rel=1e-9)


def test_ant_target_peak_and_survive_reward():
    """The authors' U-maze scale: a bump 10 high plus 0.05 per step alive. At 1.5 m from the
    compact U's target (sigma = 4/3 m): r = 10 exp(-1.5^2 / (2 (4/3)^2)) + 0.05."""
    env = gym.make("softq/AntUMazeCompact-v0", target_peak=10.0, survive_reward=0.05).unwrapped
    env.reset(seed=0)
    env.set_state(*_ant_state(env))
    com_offset = env.com_xy() - env.data.qpos[0:2]
    xy = np.asarray(UMAZE_COMPACT_TARGET) + np.array([1.5, 0.0]) - com_offset
    env.set_state(*_ant_state(env, xy=tuple(xy)))
    _, reward, _, _, info = env.step(np.zeros(8, dtype=np.float32))
    bump = 10.0 * np.exp(-1.5**2 / (2 * (4.0 / 3.0) ** 2))
    assert info["reward_target"] == pytest.approx(bump, rel=1e-9)
    assert info["reward_survive"] == 0.05
    assert reward == pytest.approx(bump + 0.05, rel=1e-9)
    # The bonus is task-independent: a speed task in free flight pays 2 m/s + 0.05.
    speed = gym.make("softq/AntAnyDirection-v0", survive_reward=0.05).unwrapped
    speed.reset(seed=0)
    speed.set_state(*_ant_state(speed, vxy=(1.2, -1.6)))
    assert speed.step(np.zeros(8, dtype=np.float32))[1] == pytest.approx(2.05, abs=1e-9)


@pytest.mark.parametrize("kwargs, match", [({"target_peak": 0.0}, "target_peak"),
                                           ({"survive_reward": float("nan")}, "survive_reward")])
def test_ant_rejects_bad_reward_constants(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("softq/AntUMazeCompact-v0", **kwargs)


@pytest.mark.parametrize("env_id", ANT_IDS)
@pytest.mark.parametrize("tilt_deg, flipped", [(0.0, False), (80.0, False), (100.0, True),
                                               (180.0, True)])
def test_ant_terminates_when_flipped(env_id, tilt_deg, flipped):
    env = _unwrapped(env_id)
    env.set_state(*_ant_state(env, tilt_deg=tilt_deg))
    _, _, terminated, _, info = env.step(np.zeros(8, dtype=np.float32))
    assert info["upright_cos"] == pytest.approx(np.cos(np.deg2rad(tilt_deg)), abs=1e-9)
    assert terminated == flipped


def test_ant_height_does_not_terminate():
    """Only flipping terminates: an upright ant low on the floor (z = 0.3) or high in a jump
    (z = 1.5, above Ant-v5's healthy limit of 1.0) keeps going."""
    env = _unwrapped("softq/AntAnyDirection-v0")
    for z in (0.3, 1.5):
        env.set_state(*_ant_state(env, z=z))
        assert env.step(np.zeros(8, dtype=np.float32))[2] is False


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_control_cost_is_subtracted(env_id):
    """With ctrl_cost_weight w the step pays its task reward minus w ||a||^2 (a = 0.5 on every
    actuator), whatever the task reward is."""
    w = 0.25
    plain, costly = _unwrapped(env_id), gym.make(env_id, ctrl_cost_weight=w).unwrapped
    costly.reset(seed=0)
    action = np.full(plain.action_space.shape, 0.5, dtype=np.float32)
    for env in (plain, costly):
        env.set_state(plain.init_qpos.copy(), plain.init_qvel.copy())
    reward = plain.step(action)[1]
    _, reward_costly, _, _, info = costly.step(action)
    cost = w * 0.25 * action.size
    assert info["reward_ctrl"] == pytest.approx(-cost, rel=1e-6)
    assert reward_costly == pytest.approx(reward - cost, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("tilt_deg, flipped", [(80.0, False), (100.0, True)])
def test_ant_flip_is_tilt_about_any_horizontal_axis(axis, tilt_deg, flipped):
    """The flip test is the tilt of the torso's z axis, about x or y alike; a yaw (rotation about
    the vertical) of any size is no tilt."""
    env = _unwrapped("softq/AntAnyDirection-v0")
    qpos, qvel = _ant_state(env)
    half = np.deg2rad(tilt_deg) / 2
    qpos[3:7] = (np.cos(half), np.sin(half), 0.0, 0.0) if axis == "x" else \
        (np.cos(half), 0.0, np.sin(half), 0.0)
    env.set_state(qpos, qvel)
    _, _, terminated, _, info = env.step(np.zeros(8, dtype=np.float32))
    assert info["upright_cos"] == pytest.approx(np.cos(np.deg2rad(tilt_deg)), abs=1e-9)
    assert terminated == flipped
    qpos[3:7] = (np.cos(np.deg2rad(170.0) / 2), 0.0, 0.0, np.sin(np.deg2rad(170.0) / 2))
    env.set_state(qpos, qvel)
    _, _, terminated, _, info = env.step(np.zeros(8, dtype=np.float32))
    assert info["upright_cos"] == pytest.approx(1.0, abs=1e-9) and not terminated


def test_ant_running_direction_is_measured_from_the_reset_position():
    """info["mode"] is the compass sector of the displacement since the reset: from a start at
    (3, 3), a centre of mass at start + (2, 0) ran east (from the origin it would read NE)."""
    env = gym.make("softq/AntAnyDirection-v0").unwrapped
    env.init_qpos[0:2] = (3.0, 3.0)
    env.reset(seed=0)
    com_start = env.com_xy()
    assert np.linalg.norm(com_start - 3.0) < 0.2
    qpos, qvel = _ant_state(env)
    env.set_state(qpos, qvel)
    com_offset = env.com_xy() - qpos[0:2]
    xy = com_start + np.array([2.0, 0.0]) - com_offset
    env.set_state(*_ant_state(env, xy=tuple(xy)))
    assert env.step(np.zeros(8, dtype=np.float32))[4]["mode"] == "E"
    xy = com_start + np.array([-0.5, 0.5]) - com_offset  # within 1 m of the start: no direction
    env.set_state(*_ant_state(env, xy=tuple(xy)))
    assert env.step(np.zeros(8, dtype=np.float32))[4]["mode"] == "none"


def _mass_weighted_xy(env) -> np.ndarray:
    """The robot's planar centre of mass from every body's own mass and position, [2]."""
    mujoco.mj_kinematics(env.model, env.data)
    mass = env.model.body_mass[1:]  # body 0 is the world
    return (mass[:, None] * env.data.xipos[1:, :2]).sum(0) / mass.sum()


def test_ant_speed_reward_follows_the_centre_of_mass_not_the_torso():
    """In free flight with two hips swinging, the torso moves against the legs: the speed reward
    is the whole robot's centre-of-mass speed (mass-weighted over the bodies), not the torso's."""
    env = _unwrapped("softq/AntAnyDirection-v0")
    qpos, qvel = _ant_state(env)
    qvel[6:14] = (8.0, 0.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    env.set_state(qpos, qvel)
    com_before, torso_before = _mass_weighted_xy(env), env.data.qpos[0:2].copy()
    reward = env.step(np.zeros(8, dtype=np.float32))[1]
    com_speed = np.linalg.norm(_mass_weighted_xy(env) - com_before) / env.dt
    torso_speed = np.linalg.norm(env.data.qpos[0:2] - torso_before) / env.dt
    assert reward == pytest.approx(com_speed, rel=1e-6)
    assert abs(torso_speed - com_speed) > 0.2


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_unstable_simulation_ends_the_episode_without_paying_the_reset(env_id):
    """A velocity MuJoCo finds unstable makes it reset the state to the reference pose, a finite
    state 1 m from where the robot was: the step must end the episode and pay 0, not pay the
    jump back as speed (1 m / dt, 20-25) and go on from the reset pose."""
    env = _unwrapped(env_id)
    zeros = np.zeros(env.action_space.shape, dtype=np.float32)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    qpos[0] += 1.0  # x: the ant's free joint and the swimmer's slide joint
    qvel[-1] = 1e200
    env.set_state(qpos, qvel)
    obs, reward, terminated, truncated, info = env.step(zeros)
    assert info.get("sim_unstable") is True
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert np.isfinite(obs).all()
    env.reset(seed=1)  # the next episode steps normally
    _, _, terminated, _, info = env.step(zeros)
    assert "sim_unstable" not in info and not terminated


# ---------------------------------------------------------------------- walls
def _launch(env, xy, vxy, steps=30):
    """Throw the ant (z = 0.9, below the 1 m walls) and return its centre-of-mass track."""
    env.set_state(*_ant_state(env, xy=xy, z=0.9, vxy=vxy))
    track = []
    for _ in range(steps):
        env.step(np.zeros(8, dtype=np.float32))
        track.append(env.com_xy())
    return np.array(track)  # [steps, 2]


@pytest.mark.parametrize("env_id, half_width",
                         [("softq/AntHallwayWide-v0", HALLWAY_WIDE_HALF_WIDTH),
                          ("softq/AntHallwayNarrow-v0", HALLWAY_NARROW_HALF_WIDTH)])
def test_hallway_walls_block_sideways_motion(env_id, half_width):
    for vy in (10.0, -10.0):
        open_track = _launch(_unwrapped("softq/AntAnyDirection-v0"), (0.0, 0.0), (0.0, vy))
        assert np.abs(open_track[:, 1]).max() > half_width + 1.0  # would pass without walls
        track = _launch(_unwrapped(env_id), (0.0, 0.0), (0.0, vy))
        assert np.abs(track[:, 1]).max() < half_width
    along = _launch(_unwrapped(env_id), (0.0, 0.0), (10.0, 0.0))
    assert along[:, 0].max() > 3.0  # running along the hallway is free


@pytest.mark.parametrize("env_id, half_width",
                         [("softq/AntHallwayWide-v0", HALLWAY_WIDE_HALF_WIDTH),
                          ("softq/AntHallwayNarrow-v0", HALLWAY_NARROW_HALF_WIDTH)])
def test_hallway_wall_faces_are_at_the_documented_half_width(env_id, half_width):
    """The walls' inner faces at y = +-half_width exactly (3 m and 1.25 m), floor to 1 m, and
    longer than a 500-step run: the throw test above only bounds them from outside."""
    env = _unwrapped(env_id)
    faces = {}
    for name in ("hall_north", "hall_south"):
        geom = env.model.geom(name)
        (x, y, z), (hx, hy, hz) = geom.pos, geom.size
        faces[name] = (y - hy, y + hy)
        assert (z - hz, z + hz) == pytest.approx((0.0, 1.0)) and abs(x) < 1e-12 and hx >= 50.0
    assert faces["hall_north"][0] == pytest.approx(half_width, abs=1e-12)
    assert faces["hall_south"][1] == pytest.approx(-half_width, abs=1e-12)


def test_maze_upper_passage_blocked_lower_open():
    env = _unwrapped("softq/AntMaze-v0")
    upper = _launch(env, (3.5, 3.25), (10.0, 0.0))
    assert upper[:, 0].max() < 5.5  # stopped by the barrier at x = 5.5
    dist_upper = np.linalg.norm(upper - np.asarray(MAZE_TARGET), axis=1).min()
    assert dist_upper > MAZE_UPPER_PASSAGE_MIN_DISTANCE == pytest.approx(np.hypot(3.0, 1.5))
    lower = _launch(env, (3.5, -3.25), (10.0, 0.0))  # mirror image, no barrier
    assert lower[:, 0].max() > 6.5  # out past the divider's end, into the target room
    start = _launch(env, (0.0, 0.0), (10.0, 0.0))
    assert start[:, 0].max() < 2.0  # the divider faces the start: no straight way through


def test_compact_maze_upper_passage_blocked_lower_open():
    env = _unwrapped("softq/AntMazeCompact-v0")
    target = np.asarray(MAZE_COMPACT_TARGET)
    assert MAZE_COMPACT_UPPER_PASSAGE_MIN_DISTANCE == pytest.approx(np.hypot(1.75, 0.75))
    upper = _launch(env, (0.3, 2.0), (10.0, 0.0))
    assert upper[:, 0].max() < 1.75  # stopped by the barrier at x = 1.75
    assert np.linalg.norm(upper - target, axis=1).min() > MAZE_COMPACT_UPPER_PASSAGE_MIN_DISTANCE
    lower = _launch(env, (0.3, -2.0), (10.0, 0.0))  # mirror image, no barrier
    assert lower[:, 0].max() > 3.0  # past the divider's end (x = 2.25), into the target room
    start = _launch(env, (0.0, 0.0), (10.0, 0.0))
    assert start[:, 0].max() < 1.25  # the divider faces the start


@pytest.mark.parametrize("env_id, start_distance", [("softq/AntUMaze-v0", 6.0),
                                                     ("softq/AntUMazeCompact-v0", 4.0)])
def test_both_umazes_pay_the_same_at_the_start(env_id, start_distance):
    """The compact U's bump shrinks with the maze: exp(-4.5) per step at the start in both."""
    env = _unwrapped(env_id)
    env.set_state(*_ant_state(env))
    com_offset = env.com_xy() - env.data.qpos[0:2]
    env.set_state(*_ant_state(env, xy=tuple(-com_offset)))  # centre of mass at the origin
    _, reward, _, _, info = env.step(np.zeros(8, dtype=np.float32))
    assert info["distance_to_target"] == pytest.approx(start_distance, abs=1e-9)
    assert reward == pytest.approx(np.exp(-4.5), rel=1e-9)
    assert env.target_sigma == pytest.approx(2.0 * start_distance / 6.0, rel=1e-12)


def test_compact_umaze_divider_blocks_the_straight_line():
    env = _unwrapped("softq/AntUMazeCompact-v0")
    assert _launch(env, (0.0, 0.0), (0.0, 10.0))[:, 1].max() < 1.25  # inner wall at y = 1.25
    assert _launch(env, (3.0, 0.0), (0.0, 10.0))[:, 1].max() > 2.75  # the bend is open


def test_umaze_divider_blocks_the_straight_line():
    env = _unwrapped("softq/AntUMaze-v0")
    straight = _launch(env, (0.0, 0.0), (0.0, 10.0))
    assert straight[:, 1].max() < 1.5  # the U's inner wall at y = 1.5
    around = _launch(env, (5.0, 0.0), (0.0, 10.0))  # the U's bend at x in [3.5, 6.5] is open
    assert around[:, 1].max() > 4.5
