"""The Fetch actor's Cartesian action -> joint position targets, by IK on the URDF.

Gym semantics reproduced (``fetch_env._set_action`` and ``mujoco_utils.mocap_set_action``):
``action[:3] * 0.05 m`` is added to the *current* grip position (the mocap is reset onto the
gripper every step), the gripper orientation is held fixed, and ``action[3]`` is added to each
finger's *current* position to give its position target.

On joints that means: target grip position -> damped least-squares IK from the measured joint
positions (position + orientation, joint limits), then the step from the previously commanded
joint positions is scaled down as a whole (keeping the Cartesian direction) so that no joint
exceeds its velocity limit over one control period. The result always passes
``safety.check_arm_command``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pick_place_rl.robot.kinematics import ArmKinematics


def urdf_velocity_limits(kin: ArmKinematics) -> np.ndarray:
    """Velocity limits (rad/s or m/s) of the controlled joints, from the URDF (inf if none)."""
    model = kin.model
    out = []
    for name in kin.joint_names:
        joint = model.joints[model.getJointId(name)]
        limit = float(model.velocityLimit[joint.idx_v])
        out.append(limit if limit > 0.0 else np.inf)
    return np.array(out)


@dataclass(frozen=True)
class CartesianParams:
    """How actions map to targets (defaults: FetchPickAndPlace-v4)."""
    position_scale: float = 0.05      # m per unit action (gym: 0.05)
    finger_scale: float = 1.0         # m of finger target per unit action (gym: 1.0)
    ik_iterations: int = 10
    ik_tolerance: float = 1e-4        # m
    ik_damping: float = 0.05
    ik_max_step: float = 0.2          # rad per IK iteration
    rot_weight: float = 0.3           # m per rad of orientation error in the IK task
    velocity_scale: float = 1.0       # fraction of the joint velocity limits used


class CartesianController:
    """Joint targets for one control step of a Cartesian (gym Fetch) action."""

    def __init__(self, kin: ArmKinematics, velocity_limits: np.ndarray, period: float,
                 gripper_lower: Sequence[float], gripper_upper: Sequence[float],
                 target_rotation: np.ndarray | None = None,
                 params: CartesianParams = CartesianParams()) -> None:
        self.kin = kin
        self.period = float(period)
        if self.period <= 0:
            raise ValueError('control period must be positive')
        vmax = np.asarray(velocity_limits, dtype=float) * params.velocity_scale
        if vmax.shape != (kin.n,) or np.any(vmax <= 0):
            raise ValueError(f'need {kin.n} positive velocity limits, got {vmax.tolist()}')
        self.max_velocity = vmax
        self.gripper_lower = np.asarray(gripper_lower, dtype=float)
        self.gripper_upper = np.asarray(gripper_upper, dtype=float)
        self.target_rotation = target_rotation
        self.params = params
        self.last_ik_error = 0.0

    def arm_target(self, q_measured: np.ndarray, q_commanded: np.ndarray,
                   action_xyz: np.ndarray) -> np.ndarray:
        """Joint targets moving the grip by ``position_scale * action_xyz`` from where it is."""
        p = self.params
        a = np.clip(np.asarray(action_xyz, dtype=float), -1.0, 1.0)
        q_meas = self.kin.clamp(np.asarray(q_measured, dtype=float))
        target = self.kin.fk(q_meas) + p.position_scale * a
        q_ik, self.last_ik_error = self.kin.ik(
            q_meas, target, iterations=p.ik_iterations, tolerance=p.ik_tolerance,
            damping=p.ik_damping, max_step=p.ik_max_step, target_rot=self.target_rotation,
            rot_weight=p.rot_weight)
        return self.limit_step(np.asarray(q_commanded, dtype=float), q_ik)

    def limit_step(self, q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
        """``q_to``, pulled back towards ``q_from`` so one period respects velocity limits."""
        step = q_to - q_from
        ratio = np.max(np.abs(step) / (self.max_velocity * self.period))
        if ratio > 1.0:
            step = step / ratio
        return self.kin.clamp(q_from + step)

    def gripper_target(self, finger_q: np.ndarray, action_gripper: float) -> np.ndarray:
        """Each finger's target: its current position + ``finger_scale * action``, in range."""
        a = float(np.clip(action_gripper, -1.0, 1.0))
        target = np.asarray(finger_q, dtype=float) + self.params.finger_scale * a
        return np.clip(target, self.gripper_lower, self.gripper_upper)
