"""Driver logic without ROS: gym-identical resets and how well the Fetch gripper tracks IK targets.

The policy node turns each Cartesian action of the gym task (up to 5 cm per 0.04 s step) into
joint targets by IK; the driver's position servos must get the gripper there within the step,
the way the gym's mocap weld does.
"""
from pathlib import Path

import numpy as np
import pytest

from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.robot.trajectory import TrajectoryCommand
from pick_place_rl.sim import fetch_model
from pick_place_rl.sim.backend import DriverCore
from pick_place_rl.sim.fetch_backend import FetchBackend
from pick_place_rl.sim.registry import make_env

URDF = Path(__file__).resolve().parents[1] / 'urdf' / 'fetch.urdf'
STEP = 0.04


@pytest.fixture(scope='module')
def core() -> DriverCore:
    backend = FetchBackend()
    yield DriverCore(backend)
    backend.close()


def test_reset_reproduces_gym_initial_state(core: DriverCore) -> None:
    env = make_env('FetchPickAndPlace-v4')
    for seed in (0, 1, 123, 99991):
        obs, _ = env.reset(seed=seed)
        info = core.reset(seed=seed)
        np.testing.assert_array_equal(info.goal, obs['desired_goal'])
        np.testing.assert_array_equal(core.backend.object_pose()[0], obs['observation'][3:6])
        np.testing.assert_allclose(core.backend.grip_position(), obs['observation'][:3],
                                   atol=1e-12)
        np.testing.assert_array_equal(core.backend.data.qpos, env.unwrapped.data.qpos)
    env.close()


def test_placement_reset_and_bad_placement(core: DriverCore) -> None:
    info = core.reset(object_xy=[1.3, 0.7], goal=[1.25, 0.8, 0.6])
    np.testing.assert_allclose(info.object_position[:2], [1.3, 0.7])
    np.testing.assert_allclose(core.backend.goal(), [1.25, 0.8, 0.6])
    with pytest.raises(ValueError, match='finite'):
        core.reset(object_xy=[np.nan, 0.7], goal=[1.25, 0.8, 0.6])
    with pytest.raises(ValueError, match='both'):
        core.reset(object_xy=[1.3, 0.7])


def test_gripper_tracks_ik_targets_as_well_as_the_gym_mocap(core: DriverCore) -> None:
    """Random gym actions: target = grip + 5 cm * a, IK'd and sent as 0.04 s trajectories.

    The same action sequence goes through the gym env (mocap weld); the joint servos must
    leave the gripper at least as close to its per-step targets as the weld does.
    """
    actions = np.random.default_rng(0).uniform(-1, 1, (50, 3))
    env = make_env('FetchPickAndPlace-v4')
    obs, _ = env.reset(seed=3)
    gym_errors = []
    for a in actions:
        target = obs['observation'][:3] + 0.05 * a
        obs, *_ = env.step(np.append(a, 0.0).astype(np.float32))
        gym_errors.append(np.linalg.norm(obs['observation'][:3] - target))
    env.close()

    core.reset(seed=3)
    backend: FetchBackend = core.backend
    kin = ArmKinematics(URDF, fetch_model.ARM_JOINTS, fetch_model.GRIP_SITE)
    _, down = kin.fk_pose(backend.arm_positions())
    ticks = core.ticks_per(STEP)
    errors = []
    for a in actions:
        target = backend.grip_position() + 0.05 * a
        q = backend.arm_positions()          # what /joint_states would say
        for _ in range(5):
            q = kin.ik_step(q, target, target_rot=down, max_step=0.5)
        reason = core.on_trajectory(TrajectoryCommand(
            fetch_model.ARM_JOINTS, (STEP,), (tuple(q),), ()))
        assert reason is None, reason
        core.step(ticks)
        errors.append(np.linalg.norm(backend.grip_position() - target))
    ours, gym = float(np.mean(errors)), float(np.mean(gym_errors))
    print(f'mean error per step: joint servos {ours * 1000:.1f} mm, gym mocap {gym * 1000:.1f} mm')
    assert ours < gym, f'servos {ours * 1000:.1f} mm vs mocap {gym * 1000:.1f} mm'
    core.step(ticks)
    assert np.linalg.norm(backend.grip_position() - kin.fk(q)) < 2e-3, 'did not settle'


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _check_camera_geometry(image, point: np.ndarray, surface_below: float) -> None:
    """``point`` projects into the image, and the depth there meets a surface just before it."""
    rot = _quat_matrix(image.orientation)
    p_cam = rot.T @ (point - image.position)
    assert p_cam[2] > 0, 'point behind the camera'
    u = image.fx * p_cam[0] / p_cam[2] + image.cx
    v = image.fy * p_cam[1] / p_cam[2] + image.cy
    h, w = image.depth.shape
    assert -0.5 <= u < w - 0.5 and -0.5 <= v < h - 0.5, f'point projects outside: {(u, v)}'
    depth = float(image.depth[int(round(v)), int(round(u))])
    assert p_cam[2] - surface_below < depth <= p_cam[2] + 1e-3, (depth, p_cam[2])


def test_fetch_camera_intrinsics_pose_and_depth_agree(core: DriverCore) -> None:
    core.reset(seed=5)
    backend: FetchBackend = core.backend
    image = backend.render(320, 240)
    assert image.rgb.shape == (240, 320, 3) and image.depth.dtype == np.float32
    # The block (5 cm cube): the depth ray to its centre meets its surface within 4.5 cm.
    _check_camera_geometry(image, backend.object_pose()[0], 0.045)


def test_kuka_camera_intrinsics_pose_and_depth_agree() -> None:
    from pick_place_rl.sim.kuka_backend import KukaBackend
    backend = KukaBackend(num_objects=1)
    try:
        image = backend.render(160, 120)
        # The first object rests in the tray; its surface lies within ~8 cm of its origin.
        _check_camera_geometry(image, backend.object_pose()[0], 0.08)
    finally:
        backend.close()


def test_fetch_spawn_moves_object_and_goal_not_arm(core: DriverCore) -> None:
    info0 = core.reset(seed=1)
    q = core.backend.arm_positions()
    info1 = core.backend.spawn_objects(seed=2)
    np.testing.assert_array_equal(core.backend.arm_positions(), q)
    assert np.linalg.norm(info1.object_position - info0.object_position) > 1e-3
    assert np.linalg.norm(info1.goal - info0.goal) > 1e-3


def test_kuka_episodes_replay_and_placement() -> None:
    """Same seed and commands: bit-identical states; object_xy puts the first object there."""
    from pick_place_rl.sim import kuka_scene
    from pick_place_rl.sim.kuka_backend import KukaBackend
    backend = KukaBackend(num_objects=2)
    try:
        core = DriverCore(backend)
        runs = []
        for _ in range(2):
            info = core.reset(seed=5)
            q = backend.arm_positions()
            trace = []
            for k in range(6):
                q = q + 0.02
                assert core.on_trajectory(TrajectoryCommand(
                    kuka_scene.ARM_JOINT_NAMES, (STEP,), (tuple(q),), ())) is None
                assert core.on_gripper([-0.1 * (k % 2), 0.1 * (k % 2)]) is None
                core.step(core.ticks_per(STEP))
                trace.append(np.concatenate([backend.joint_state()[0],
                                             backend.object_pose()[0]]))
            runs.append((info.details['objects'], np.array(trace)))
        assert runs[0][0] == runs[1][0]
        np.testing.assert_array_equal(runs[0][1], runs[1][1])
        placed = core.reset(seed=6, object_xy=[0.6, 0.05])
        # Dropped from 15 cm at that spot, it may bounce off the other object a few cm.
        np.testing.assert_allclose(placed.object_position[:2], [0.6, 0.05], atol=0.06)
        assert core.on_gripper([0.1, 0.1]) is None      # clipped into the left joint's range
        np.testing.assert_allclose(backend.gripper_targets(), [0.0, 0.1])
    finally:
        backend.close()


def test_camera_quaternion_survives_half_turns() -> None:
    """A camera looking straight down is a half turn (w = 0): the signs must still agree."""
    import pinocchio as pin

    from pick_place_rl.robot.fetch_observation import quat_to_matrix
    from pick_place_rl.sim.backend import quat_xyzw
    axes = [*np.eye(3), (1, -1, 0), (1, 1, 0), (0, 1, -1), (1, 1, 1), (1, -2, 3)]
    rotations = [pin.exp3(np.pi * np.asarray(a, float) / np.linalg.norm(a)) for a in axes]
    rng = np.random.default_rng(0)
    rotations += [pin.exp3(rng.normal(size=3)) for _ in range(200)]
    for rot in rotations:
        q = quat_xyzw(rot)
        assert q[3] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
        assert np.allclose(quat_to_matrix(q), rot, atol=1e-9), (rot, q)
