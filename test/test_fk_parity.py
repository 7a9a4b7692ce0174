"""The shipped URDFs reproduce the simulators' kinematics (Pinocchio FK vs MuJoCo / PyBullet)."""
from pathlib import Path

import mujoco
import numpy as np
import pytest

from pick_place_rl.robot.kinematics import ArmKinematics, KinematicsError
from pick_place_rl.sim import fetch_model
from pick_place_rl.sim.fetch_task import FetchTaskSampler
from pick_place_rl.sim.fetch_urdf import fetch_urdf_text

URDF_DIR = Path(__file__).resolve().parents[1] / 'urdf'
N_CONFIGS = 200
TOLERANCE_M = 1e-3


def _random_configs(kin: ArmKinematics, rng: np.random.Generator, n: int) -> np.ndarray:
    lower = np.where(np.isfinite(kin.lower), kin.lower, -np.pi)
    upper = np.where(np.isfinite(kin.upper), kin.upper, np.pi)
    return rng.uniform(lower, upper, size=(n, kin.n))


@pytest.fixture(scope='module')
def fetch_sampler() -> FetchTaskSampler:
    return FetchTaskSampler()


def test_fetch_urdf_matches_mujoco(fetch_sampler: FetchTaskSampler) -> None:
    model = fetch_model.build_fetch_model()
    data = mujoco.MjData(model)
    kin = ArmKinematics(URDF_DIR / 'fetch.urdf', fetch_model.ARM_JOINTS, fetch_model.GRIP_SITE)
    adr = [model.joint(n).qposadr[0] for n in fetch_model.ARM_JOINTS]
    site = model.site(fetch_model.GRIP_SITE).id
    errors = []
    for q in _random_configs(kin, np.random.default_rng(0), N_CONFIGS):
        data.qpos[:] = fetch_sampler.initial_qpos
        data.qpos[adr] = q
        mujoco.mj_kinematics(model, data)
        errors.append(np.linalg.norm(data.site_xpos[site] - kin.fk(q)))
    assert max(errors) < TOLERANCE_M, f'worst FK mismatch {max(errors) * 1000:.3f} mm'


def test_fetch_urdf_file_is_up_to_date(fetch_sampler: FetchTaskSampler) -> None:
    """The committed URDF equals what the generator writes from the current model."""
    assert (URDF_DIR / 'fetch.urdf').read_text() == fetch_urdf_text(), (
        'urdf/fetch.urdf is stale: run python -m pick_place_rl.sim.fetch_urdf')


def test_ik_reaches_target_within_limits() -> None:
    kin = ArmKinematics(URDF_DIR / 'fetch.urdf', fetch_model.ARM_JOINTS, fetch_model.GRIP_SITE)
    q0 = np.array([0.01, -0.8256, -0.0036, 1.4439, 0.0031, 0.9532, 0.0055])
    pos, rot = kin.fk_pose(q0)
    target = pos + np.array([0.08, -0.1, -0.12])
    q = q0.copy()
    for _ in range(60):
        q_next = kin.ik_step(q, target, max_step=0.05, target_rot=rot)
        assert np.max(np.abs(q_next - q)) <= 0.05 + 1e-12
        q = q_next
    assert np.linalg.norm(kin.fk(q) - target) < 1e-3
    assert np.all(q >= kin.lower) and np.all(q <= kin.upper)
    # An unreachable target drives joints to limits but never past them.
    q_far, err = kin.ik(q0, pos + np.array([3.0, 0.0, 0.0]), iterations=100)
    assert err > 1.0 and np.all(q_far >= kin.lower) and np.all(q_far <= kin.upper)


def test_kinematics_rejects_bad_names_and_input() -> None:
    urdf = URDF_DIR / 'fetch.urdf'
    with pytest.raises(KinematicsError, match='not in'):
        ArmKinematics(urdf, ('robot0:no_such_joint',), fetch_model.GRIP_SITE)
    with pytest.raises(KinematicsError, match='frame'):
        ArmKinematics(urdf, fetch_model.ARM_JOINTS, 'no_such_frame')
    kin = ArmKinematics(urdf, fetch_model.ARM_JOINTS, fetch_model.GRIP_SITE)
    with pytest.raises(KinematicsError, match='shape'):
        kin.fk(np.zeros(6))
    with pytest.raises(KinematicsError, match='NaN'):
        kin.fk(np.full(7, np.nan))


def test_kuka_urdf_matches_pybullet() -> None:
    """Flange and gripper tip (gripper yaw joint included) against the PyBullet scene."""
    from pick_place_rl.sim import kuka_scene
    client = kuka_scene.connect()
    try:
        scene = kuka_scene.KukaScene(client)
        urdf = URDF_DIR / 'kuka_iiwa.urdf'
        flange = ArmKinematics(urdf, kuka_scene.ARM_JOINT_NAMES, 'lbr_iiwa_link_7')
        tip = ArmKinematics(urdf, (*kuka_scene.ARM_JOINT_NAMES, kuka_scene.GRIPPER_YAW_JOINT),
                            'gripper_tip')
        p, robot = scene.p, scene.robot
        links = {p.getJointInfo(robot, j)[12].decode(): j for j in range(p.getNumJoints(robot))}
        rng = np.random.default_rng(1)
        flange_err, tip_err = [], []
        for q in _random_configs(flange, rng, N_CONFIGS):
            yaw = rng.uniform(-np.pi, np.pi)
            scene.reset_robot(arm=q, yaw=-yaw)   # the scene turns the joint by -yaw
            flange_err.append(np.linalg.norm(scene.ee_pose()[0] - flange.fk(q)))
            tips = [p.getLinkState(robot, links[n], computeForwardKinematics=True)[4]
                    for n in ('left_finger_tip', 'right_finger_tip')]
            tip_err.append(np.linalg.norm(np.mean(tips, axis=0) - tip.fk(np.append(q, yaw))))
    finally:
        import pybullet as pb
        pb.disconnect(client)
    assert max(flange_err) < TOLERANCE_M, f'flange: worst {max(flange_err) * 1000:.3f} mm'
    assert max(tip_err) < TOLERANCE_M, f'gripper tip: worst {max(tip_err) * 1000:.3f} mm'


def test_kuka_urdf_file_is_up_to_date() -> None:
    from pick_place_rl.sim.kuka_urdf import kuka_urdf_text
    assert (URDF_DIR / 'kuka_iiwa.urdf').read_text() == kuka_urdf_text(), (
        'urdf/kuka_iiwa.urdf is stale: run python -m pick_place_rl.sim.kuka_urdf')
