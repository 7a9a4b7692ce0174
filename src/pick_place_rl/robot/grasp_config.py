"""The grasp policy node's parameters, and the runner they build (no ROS imports).

Shared by the node (``nodes/grasp_node.py``) and the in-process reference loop
(``sim/joint_grasp_loop.py``), so both execute grasps with the same settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pick_place_rl.core.config import field
from pick_place_rl.robot.cartesian_control import urdf_velocity_limits
from pick_place_rl.robot.grasp_runner import GraspParams, GraspRunner
from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.robot.policy_runner import PolicyInterfaceConfig, TRIGGERS
from pick_place_rl.robot.safety import Workspace

KUKA_ARM = tuple(f'lbr_iiwa_joint_{i}' for i in range(1, 8))


@dataclass(frozen=True)
class GraspNodeConfig(PolicyInterfaceConfig):
    """Parameters of the grasp policy node (one ROS parameter per field; config/kuka_policy)."""
    weights: str = field('models/dqn_pixel/qnet.pt', 'grasp net checkpoint (dqn_grasp_qmap); '
                         'relative paths are taken from the package share folder')
    urdf: str = field('urdf/kuka_iiwa.urdf', 'robot URDF for FK/IK (relative: package share)')
    ee_frame: str = field('lbr_iiwa_link_7', 'flange frame the IK places (tool axis = its z)')
    tip_frame: str = field('gripper_tip', 'frame at the open fingertips: sets the tool length')
    arm_joints: tuple[str, ...] = field(KUKA_ARM, 'joints of the trajectory controller')
    finger_joints: tuple[str, ...] = field(
        ('base_left_finger_joint', 'base_right_finger_joint'),
        'finger joints: gripper command array order')
    gripper_open: tuple[float, ...] = field((-0.3, 0.3), 'finger targets when open')
    gripper_closed: tuple[float, ...] = field((0.0, 0.0), 'finger targets when closed')
    hold_threshold: float = field(0.1, 'fingers stopped above this fraction of their travel '
                                       'from closed = an object is held')
    park_joints: tuple[float, ...] = field(
        (1.6, 0.0, -0.011401, -1.589317, 0.005379, 1.137684, -0.006539),
        'arm pose out of the camera view, taken before each picture')
    seed_joints: tuple[float, ...] = field(
        (0.006418, 0.413184, -0.011401, -1.589317, 0.005379, 1.137684, -0.006539),
        'IK seed for grasps: a pose with the tool pointing down over the tray')
    tool_orientation: tuple[float, ...] = field((0.0, 1.0, 0.0, 0.0),
                                                'flange orientation at grasp yaw 0, x y z w')
    surface_z: float = field(-0.188, 'height of the surface the image heights are measured '
                                     'from (the tray floor), m world')
    grasp_depth: float = field(0.04, 'fingertips go this far below the surface seen at the '
                                     'grasp pixel, m (as in training)')
    approach_height: float = field(0.12, 'approach this far above the grasp point, m')
    lift_z: float = field(0.55, 'flange height after the lift, m world')
    place_clearance: float = field(0.03, 'release with the fingertips this far above the goal')
    joint_speed: float = field(0.8, 'peak joint speed of free-space moves, rad/s')
    carry_speed: float = field(0.5, 'peak joint speed while carrying the object, rad/s')
    descend_speed: float = field(0.2, 'tool speed of the descent, m/s')
    lift_speed: float = field(0.4, 'tool speed of the lift, m/s')
    close_time: float = field(0.4, 'time given to the fingers to close, s')
    release_time: float = field(0.4, 'time given to the fingers to open, s')
    settle_timeout: float = field(3.0, 'a move that has not arrived this long after its last '
                                       'target fails the episode, s')
    grasp_lower: tuple[float, ...] = field((0.38, -0.17, -0.25),
                                           'grasp points allowed: lower corner x y z (m)')
    grasp_upper: tuple[float, ...] = field((0.72, 0.17, 0.2),
                                           'grasp points allowed: upper corner x y z (m)')
    workspace_lower: tuple[float, ...] = field((0.40, -0.15, -0.12),
                                               'place goal workspace lower corner x y z (m)')
    workspace_upper: tuple[float, ...] = field((0.75, 0.35, 0.30),
                                               'place goal workspace upper corner x y z (m)')
    world_frame: str = field('world', 'frame of goals and camera poses ("" accepted as it)')
    control_rate: float = field(25.0, 'joint targets per second')
    trigger: str = field('timer', 'timer: step at control_rate; joint_states: once per new '
                                  'joint state (lock-step simulation)', choices=TRIGGERS)
    max_input_age: float = field(0.5, 'joint states / camera frames older than this (s, node '
                                      'clock) pause the episode')
    max_steps: int = field(1500, 'control steps per episode before it fails')
    camera_namespace: str = field('/camera', 'image_raw, depth/image_raw, camera_info and pose '
                                             '(PoseStamped of the optical frame) under it')


def build_grasp_runner(c: GraspNodeConfig, period: float, urdf: Path) -> GraspRunner:
    """The runner the node drives, from its parameters (``urdf`` resolved by the caller)."""
    kin = ArmKinematics(urdf, c.arm_joints, c.ee_frame)
    tip = ArmKinematics(urdf, c.arm_joints, c.tip_frame)
    q = np.asarray(c.seed_joints, dtype=float)
    pos, rot = kin.fk_pose(q)
    tip_offset = float((rot.T @ (tip.fk(q) - pos))[2])
    vel = np.asarray(c.velocity_limits, float) if c.velocity_limits else \
        urdf_velocity_limits(kin)
    params = GraspParams(
        park_joints=c.park_joints, seed_joints=c.seed_joints, gripper_open=c.gripper_open,
        gripper_closed=c.gripper_closed, tool_orientation=c.tool_orientation,
        surface_z=c.surface_z, grasp_depth=c.grasp_depth, approach_height=c.approach_height,
        lift_z=c.lift_z, place_clearance=c.place_clearance, joint_speed=c.joint_speed,
        carry_speed=c.carry_speed,
        descend_speed=c.descend_speed, lift_speed=c.lift_speed, close_time=c.close_time,
        release_time=c.release_time, settle_timeout=c.settle_timeout,
        hold_threshold=c.hold_threshold)
    return GraspRunner(kin, tip_offset, vel * c.velocity_scale, period, params,
                       Workspace(tuple(c.workspace_lower), tuple(c.workspace_upper)),
                       Workspace(tuple(c.grasp_lower), tuple(c.grasp_upper)),
                       max_steps=c.max_steps)
