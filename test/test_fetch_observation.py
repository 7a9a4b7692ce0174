"""The observation built from joint states + object pose equals the training env's observation.

The gym env (FetchPickAndPlace-v4, the env the actor trains in) is driven into varied states with
random actions; for each, the joint positions / velocities are read *by name* and the object
pose as a ROS message would carry it (position + x, y, z, w quaternion), the observation is
rebuilt through ``FetchObservationBuilder`` and compared slot by slot with the env's own.
"""
from __future__ import annotations

from pathlib import Path

from gymnasium_robotics.utils import mujoco_utils, rotations
import mujoco
import numpy as np
import pytest

from pick_place_rl.robot.fetch_observation import (
    euler_xyz,
    FetchObservationBuilder,
    GYM_DT,
    ObjectState,
    ObjectVelocityEstimator,
    quat_to_matrix,
    rotation_log,
)
from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.sim import fetch_model
from pick_place_rl.sim.registry import make_env

URDF = Path(__file__).resolve().parents[1] / 'urdf' / 'fetch.urdf'
ARM = fetch_model.ARM_JOINTS
FINGERS = fetch_model.FINGER_JOINTS


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    quats = rng.normal(size=(n, 4))
    return np.array([quat_to_matrix(q) for q in quats])


def test_euler_matches_gym_mat2euler() -> None:
    rng = np.random.default_rng(0)
    mats = list(_random_rotations(rng, 200))
    # Gimbal lock (b = +-90 deg) and identity: the branches the actor can meet on a cube.
    for b in (np.pi / 2, -np.pi / 2):
        cb, sb = np.cos(b), np.sin(b)
        mats.append(np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]]))
    mats.append(np.eye(3))
    for m in mats:
        np.testing.assert_allclose(euler_xyz(m), rotations.mat2euler(m), atol=1e-9)


def test_rotation_log_roundtrip() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(0, np.pi - 1e-3)
        quat = np.concatenate([axis * np.sin(angle / 2), [np.cos(angle / 2)]])
        np.testing.assert_allclose(rotation_log(quat_to_matrix(quat)), axis * angle, atol=1e-6)
    near_pi = np.concatenate([[0.0, 1.0, 0.0], [np.cos((np.pi - 1e-6) / 2)]])
    assert abs(np.linalg.norm(rotation_log(quat_to_matrix(near_pi))) - np.pi) < 1e-4
    with pytest.raises(ValueError, match='norm'):
        quat_to_matrix([0.0, 0.0, 0.0, 0.0])


def _read_state(model: mujoco.MjModel, data: mujoco.MjData) -> dict:
    """What the robot's topics would carry: joints by name, object site pose and twist."""
    def joint(name: str) -> tuple[float, float]:
        j = model.joint(name)
        return float(data.qpos[j.qposadr[0]]), float(data.qvel[j.dofadr[0]])
    arm = np.array([joint(n) for n in ARM])
    fingers = np.array([joint(n) for n in FINGERS])
    site = model.site('object0').id
    quat_wxyz = np.zeros(4)
    mujoco.mju_mat2Quat(quat_wxyz, data.site_xmat[site])
    return {
        'arm_q': arm[:, 0], 'arm_qd': arm[:, 1], 'finger_q': fingers[:, 0],
        'finger_qd': fingers[:, 1], 'obj_pos': data.site_xpos[site].copy(),
        'obj_quat': np.roll(quat_wxyz, -1),
        'obj_velp': mujoco_utils.get_site_xvelp(model, data, 'object0'),
        'obj_velr': mujoco_utils.get_site_xvelr(model, data, 'object0'),
    }


def test_observation_matches_training_env() -> None:
    env = make_env('FetchPickAndPlace-v4')
    raw = env.unwrapped
    model, data = raw.model, raw.data
    builder = FetchObservationBuilder(ArmKinematics(URDF, ARM, fetch_model.GRIP_SITE))
    torso = model.joint(fetch_model.TORSO_JOINT)
    rng = np.random.default_rng(2)
    worst = np.zeros(25)
    checked = 0
    for episode in range(4):
        env.reset(seed=episode)
        torso_q = float(raw.initial_qpos[torso.qposadr[0]])
        for step in range(30):
            # Towards the object with the gripper closing, so the cube gets pushed and turned.
            act = rng.uniform(-1, 1, 4)
            env.step(act)
            if step % 3:
                continue
            # The gym's torso creeps up against its joint limit; the URDF freezes it (as the
            # joint-controlled scene does), so put it back before comparing.
            data.qpos[torso.qposadr[0]] = torso_q
            data.qvel[torso.dofadr[0]] = 0.0
            mujoco.mj_forward(model, data)
            expected = raw._get_obs()['observation']
            s = _read_state(model, data)
            obj = ObjectState(s['obj_pos'], quat_to_matrix(s['obj_quat']), s['obj_velp'],
                              s['obj_velr'])
            obs = builder.build(s['arm_q'], s['arm_qd'], s['finger_q'], s['finger_qd'], obj)
            assert obs.shape == expected.shape == (25,)
            worst = np.maximum(worst, np.abs(obs - expected))
            checked += 1
    env.close()
    assert checked >= 40
    # Positions through the URDF's FK: sub-millimetre; everything else to rounding.
    assert worst[:9].max() < 1e-3, worst[:9]
    assert worst[9:11].max() < 1e-9, worst[9:11]
    # Euler angles: compared modulo 2 pi (the same rotation can wrap at +-pi).
    assert worst[11:14].max() < 1e-6 or np.allclose(np.cos(worst[11:14]), 1.0, atol=1e-6)
    assert worst[14:25].max() < 1e-5, worst[14:25]


def test_finite_differences_give_the_object_twist() -> None:
    """Pose messages 10 ms apart give velocities close to MuJoCo's instantaneous ones."""
    env = make_env('FetchPickAndPlace-v4')
    raw = env.unwrapped
    model, data = raw.model, raw.data
    env.reset(seed=3)
    # Throw the cube: a known twist, then let it fly (no contact, no gravity) for 10 ms.
    adr = model.joint('object0:joint').dofadr[0]
    model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    data.qvel[adr:adr + 6] = [0.4, -0.2, 0.1, 1.0, 2.0, -0.5]
    mujoco.mj_forward(model, data)
    est = ObjectVelocityEstimator()
    model.opt.gravity[:] = 0.0
    first = _read_state(model, data)
    state = est.update(float(data.time), first['obj_pos'], first['obj_quat'])
    np.testing.assert_allclose(state.linear_velocity, 0.0)
    mujoco.mj_step(model, data, nstep=5)
    mujoco.mj_forward(model, data)  # after mj_step, site poses lag qpos by one substep
    s = _read_state(model, data)
    state = est.update(float(data.time), s['obj_pos'], s['obj_quat'])
    # The joint's damping slows the cube: the difference quotient is the interval's mean.
    np.testing.assert_allclose(state.linear_velocity,
                               0.5 * (first['obj_velp'] + s['obj_velp']), atol=5e-3)
    np.testing.assert_allclose(state.angular_velocity,
                               0.5 * (first['obj_velr'] + s['obj_velr']), rtol=3e-2)
    # A repeated stamp keeps the estimate; time running backwards (a reset) restarts it.
    again = est.update(float(data.time), s['obj_pos'], s['obj_quat'])
    np.testing.assert_allclose(again.linear_velocity, state.linear_velocity)
    back = est.update(float(data.time) - 1.0, s['obj_pos'], s['obj_quat'])
    np.testing.assert_allclose(back.linear_velocity, 0.0)
    with pytest.raises(ValueError, match='finite'):
        est.update(5.0, [np.nan, 0.0, 0.0], s['obj_quat'])
    env.close()
    assert GYM_DT == pytest.approx(raw.n_substeps * model.opt.timestep)
