"""The 25-number FetchPickAndPlace observation, built from what a robot publishes.

The actor was trained on ``gymnasium_robotics`` ``FetchPickAndPlace-v4``, whose observation reads
MuJoCo internals. A robot on the ROS graph offers joint states and an object pose instead, so this
module rebuilds each slot from those, in the gym's order and units:

====  ==========================  ============================================================
 idx  slot                        from
====  ==========================  ============================================================
 0:3  grip_pos (m, world)         forward kinematics of the arm joints (grip frame of the URDF)
 3:6  object_pos (m)              object pose
 6:9  object_rel_pos              object_pos - grip_pos
 9:11 gripper_state (m)           the two finger joint positions
11:14 object_rot (rad)            XYZ Euler angles of the object orientation (gym convention)
14:17 object_velp                 (object linear velocity - grip linear velocity) * dt
17:20 object_velr                 object angular velocity (world axes) * dt
20:23 grip_velp                   grip linear velocity * dt, with grip velocity = J(q) q_dot
23:25 gripper_vel                 finger joint velocities * dt
====  ==========================  ============================================================

``dt`` is the gym env's step (20 substeps x 2 ms = 0.04 s), a scale baked into the trained
network, not the robot's control period. Object velocities are not in a PoseStamped, so
:class:`ObjectVelocityEstimator` takes finite differences of poses over their header stamps.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pick_place_rl.robot.kinematics import ArmKinematics

#: FetchPickAndPlace-v4 step: n_substeps (20) x MuJoCo timestep (0.002 s).
GYM_DT = 0.04
OBS_DIM = 25
GOAL_DIM = 3
_EPS4 = np.finfo(np.float64).eps * 4.0


def quat_to_matrix(quat_xyzw: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a quaternion given as (x, y, z, w), the ROS order; normalized first."""
    x, y, z, w = np.asarray(quat_xyzw, dtype=float)
    norm = np.sqrt(x * x + y * y + z * z + w * w)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f'quaternion {quat_xyzw} has no usable norm')
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def euler_xyz(rot: np.ndarray) -> np.ndarray:
    """Angles (a, b, c) with ``rot = Rx(a) @ Ry(b) @ Rz(c)``: the gym's ``mat2euler`` layout.

    In the gimbal-lock case (``cos b`` ~ 0) ``a`` is set to 0 and ``c`` takes the whole
    rotation about the shared axis, as the training env does, so the actor never sees a slot
    it was not trained on.
    """
    r = np.asarray(rot, dtype=float)
    cos_b = np.hypot(r[2, 2], r[1, 2])
    b = np.arctan2(r[0, 2], cos_b)
    if cos_b > _EPS4:
        return np.array([np.arctan2(-r[1, 2], r[2, 2]), b, np.arctan2(-r[0, 1], r[0, 0])])
    return np.array([0.0, b, np.arctan2(r[1, 0], r[1, 1])])


def rotation_log(rot: np.ndarray) -> np.ndarray:
    """Axis * angle (rad) of a rotation matrix; stable near 0 and pi."""
    r = np.asarray(rot, dtype=float)
    cos_angle = np.clip(0.5 * (np.trace(r) - 1.0), -1.0, 1.0)
    angle = float(np.arccos(cos_angle))
    vee = 0.5 * np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-6:
        return vee
    if np.pi - angle < 1e-4:
        # sin(angle) ~ 0: take the axis from the symmetric part instead.
        axis = np.sqrt(np.clip((np.diag(r) + 1.0) / 2.0, 0.0, None))
        k = int(np.argmax(axis))
        signs = np.sign(np.array([r[k, 0] + r[0, k], r[k, 1] + r[1, k], r[k, 2] + r[2, k]]))
        signs[k] = 1.0
        axis = axis * np.where(signs == 0, 1.0, signs)
        return angle * axis / np.linalg.norm(axis)
    return angle * vee / np.sin(angle)


@dataclass(frozen=True)
class ObjectState:
    """Object pose and velocities, world frame (m, rad, m/s, rad/s)."""
    position: np.ndarray
    rotation: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray


class ObjectVelocityEstimator:
    """Object twist from successive poses, by finite differences over their stamps.

    Keeps the last pose; each new pose with a later stamp gives the velocity over that interval
    (linear: position difference; angular: log of the relative rotation, world axes). A pose
    with the same stamp as the previous one (a repeated message) keeps the last estimate; an
    older stamp (time ran backwards: a simulator reset) restarts the estimate at zero velocity.
    """

    def __init__(self, max_gap: float = 0.5) -> None:
        self.max_gap = float(max_gap)
        self._last: tuple[float, np.ndarray, np.ndarray] | None = None
        self._velp = np.zeros(3)
        self._velr = np.zeros(3)

    def reset(self) -> None:
        self._last = None
        self._velp = np.zeros(3)
        self._velr = np.zeros(3)

    def rest(self) -> None:
        """Zero the estimate but keep the last pose: the next difference starts from it."""
        self._velp = np.zeros(3)
        self._velr = np.zeros(3)

    def update(self, stamp: float, position: Sequence[float], quat_xyzw: Sequence[float]
               ) -> ObjectState:
        pos = np.asarray(position, dtype=float)
        if pos.shape != (3,) or not np.all(np.isfinite(pos)):
            raise ValueError(f'object position must be 3 finite numbers, got {position}')
        rot = quat_to_matrix(quat_xyzw)
        last = self._last
        if last is None or stamp < last[0] or stamp - last[0] > self.max_gap:
            self._velp = np.zeros(3)
            self._velr = np.zeros(3)
        elif stamp > last[0]:
            dt = stamp - last[0]
            self._velp = (pos - last[1]) / dt
            self._velr = rotation_log(rot @ last[2].T) / dt
        self._last = (float(stamp), pos, rot)
        return ObjectState(pos, rot, self._velp.copy(), self._velr.copy())


class FetchObservationBuilder:
    """Joint states + object state -> the FetchPickAndPlace observation (25,)."""

    def __init__(self, kinematics: ArmKinematics, gym_dt: float = GYM_DT) -> None:
        self.kin = kinematics
        self.gym_dt = float(gym_dt)

    def grip(self, arm_q: np.ndarray, arm_qd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grip position (m) and linear velocity (m/s) from arm joint positions / velocities."""
        pos = self.kin.fk(arm_q)
        vel = self.kin.jacobian(arm_q) @ np.asarray(arm_qd, dtype=float)
        return pos, vel

    def build(self, arm_q: np.ndarray, arm_qd: np.ndarray, finger_q: np.ndarray,
              finger_qd: np.ndarray, obj: ObjectState) -> np.ndarray:
        """The observation vector, in the gym's slot order (see the module table)."""
        finger_q = np.asarray(finger_q, dtype=float)
        finger_qd = np.asarray(finger_qd, dtype=float)
        if finger_q.shape != (2,) or finger_qd.shape != (2,):
            raise ValueError('the Fetch observation needs exactly two finger joints')
        grip_pos, grip_vel = self.grip(arm_q, arm_qd)
        dt = self.gym_dt
        grip_velp = grip_vel * dt
        obs = np.concatenate([
            grip_pos, obj.position, obj.position - grip_pos, finger_q,
            euler_xyz(obj.rotation), obj.linear_velocity * dt - grip_velp,
            obj.angular_velocity * dt, grip_velp, finger_qd * dt,
        ])
        if not np.all(np.isfinite(obs)):
            raise ValueError('observation is not finite')
        return obs
