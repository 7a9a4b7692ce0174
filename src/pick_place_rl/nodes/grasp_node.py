"""Grasp policy node: picks with the DQN grasp net from the camera, places at goals over topics.

The KUKA counterpart of the policy node (same executable slot in ``sim_robot``: the bring-up
graph runs this one for ``robot:=kuka``, under the node name ``policy_node``). It shares the
policy node's episode plumbing: goals on ``/pick_place/goal`` (here: where to put the object),
``/pick_place/status`` (plus ``stage`` and ``grasp``), the latched e-stop, ``~/cancel``,
``~/reload``, ``~/reset_estop`` and ``/diagnostics``. What differs lives in
``robot.grasp_runner``: the camera (RGB, depth, camera_info and the camera pose, one stamp)
becomes the grasp net's RGB + height image; the best grasp is executed by streaming joint
targets on the trajectory topic and finger targets on the gripper topic.

Bad input never stops the node: an image of the wrong size, encoding or with NaN depth is
rejected with the reason (counted as ``rejected_images``); stale joint states or camera frames
pause the episode; missing or mismatched weights leave it ``inactive`` until ``~/reload``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geometry_msgs.msg import PoseStamped
import numpy as np
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

from pick_place_rl.core.checkpoint import CheckpointError
from pick_place_rl.core.config import field
from pick_place_rl.nodes import policy_msgs as pm
from pick_place_rl.nodes.params import spin_node
from pick_place_rl.nodes.policy_node import PolicyNode, resolve, TRIGGERS
from pick_place_rl.robot.cartesian_control import urdf_velocity_limits
from pick_place_rl.robot.fetch_observation import quat_to_matrix
from pick_place_rl.robot.grasp_runner import CameraFrame, GraspParams, GraspRunner, GraspSample
from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.robot.safety import InputRejected, Workspace

KUKA_ARM = tuple(f'lbr_iiwa_joint_{i}' for i in range(1, 8))


@dataclass(frozen=True)
class GraspNodeConfig:
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
    joint_speed: float = field(0.8, 'joint speed of free-space moves, rad/s')
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
    workspace_upper: tuple[float, ...] = field((0.75, 0.30, 0.30),
                                               'place goal workspace upper corner x y z (m)')
    world_frame: str = field('world', 'frame of goals and camera poses ("" accepted as it)')
    control_rate: float = field(25.0, 'joint targets per second')
    trigger: str = field('timer', 'timer: step at control_rate; joint_states: once per new '
                                  'joint state (lock-step simulation)', choices=TRIGGERS)
    max_input_age: float = field(0.5, 'joint states / camera frames older than this (s, node '
                                      'clock) pause the episode')
    max_steps: int = field(1500, 'control steps per episode before it fails')
    velocity_limits: tuple[float, ...] = field((), 'arm joint velocity limits (rad/s); empty = '
                                                   'the URDF limits')
    velocity_scale: float = field(1.0, 'fraction of the velocity limits a command may use')
    joint_states_topic: str = field('/joint_states', 'JointState input')
    camera_namespace: str = field('/camera', 'image_raw, depth/image_raw, camera_info and pose '
                                             '(PoseStamped of the optical frame) under it')
    goal_topic: str = field('/pick_place/goal', 'place goal PoseStamped input')
    estop_topic: str = field('/pick_place/estop', 'std_msgs/Bool e-stop input (latched)')
    trajectory_topic: str = field('/arm_controller/joint_trajectory', 'JointTrajectory output')
    gripper_topic: str = field('/gripper_controller/commands', 'Float64MultiArray output')
    status_topic: str = field('/pick_place/status', 'std_msgs/String JSON status output')
    markers_topic: str = field('/pick_place/markers', 'visualization MarkerArray output')
    diagnostics_period: float = field(1.0, '/diagnostics period, s (node clock)')
    torch_threads: int = field(1, 'torch intra-op threads for the grasp net')


def load_grasp_net(path: str) -> Any:
    """The pixel-wise grasp net; CheckpointError names what is wrong."""
    from pick_place_rl.core.grasp_policy import GraspPolicy
    if not path:
        raise CheckpointError('no weights given (parameter "weights" is empty)')
    net = GraspPolicy(resolve(path))
    if net.spec['in_channels'] != 4:
        raise CheckpointError(f'{path}: grasp net takes {net.spec["in_channels"]} channels, '
                              'this node builds RGB + height (4)')
    return net


class GraspNode(PolicyNode):
    """Thin adapter between the ROS graph and a ``GraspRunner``."""

    CONFIG = GraspNodeConfig
    DIAGNOSTICS_NAME = 'policy_node: grasp'

    def _make_runner(self) -> GraspRunner:
        c = self.config
        kin = ArmKinematics(resolve(c.urdf), c.arm_joints, c.ee_frame)
        tip = ArmKinematics(resolve(c.urdf), c.arm_joints, c.tip_frame)
        q = np.asarray(c.seed_joints, dtype=float)
        pos, rot = kin.fk_pose(q)
        tip_offset = float((rot.T @ (tip.fk(q) - pos))[2])
        vel = np.asarray(c.velocity_limits, float) if c.velocity_limits else \
            urdf_velocity_limits(kin)
        params = GraspParams(
            park_joints=c.park_joints, seed_joints=c.seed_joints, gripper_open=c.gripper_open,
            gripper_closed=c.gripper_closed, tool_orientation=c.tool_orientation,
            surface_z=c.surface_z, grasp_depth=c.grasp_depth,
            approach_height=c.approach_height, lift_z=c.lift_z,
            place_clearance=c.place_clearance, joint_speed=c.joint_speed,
            descend_speed=c.descend_speed, lift_speed=c.lift_speed, close_time=c.close_time,
            release_time=c.release_time, settle_timeout=c.settle_timeout,
            hold_threshold=c.hold_threshold)
        self._images: dict[str, Any] = {}
        self._frame: CameraFrame | None = None
        return GraspRunner(kin, tip_offset, vel * c.velocity_scale, self.period, params,
                           Workspace(tuple(c.workspace_lower), tuple(c.workspace_upper)),
                           Workspace(tuple(c.grasp_lower), tuple(c.grasp_upper)),
                           max_steps=c.max_steps)

    # ---- hooks ---------------------------------------------------------------------------
    def _make_inputs(self, qos: QoSProfile) -> None:
        self._counts['rejected_images'] = 0
        ns = self.config.camera_namespace.rstrip('/')
        self.create_subscription(Image, f'{ns}/image_raw', lambda m: self._on_image('rgb', m),
                                 qos)
        self.create_subscription(Image, f'{ns}/depth/image_raw',
                                 lambda m: self._on_image('depth', m), qos)
        self.create_subscription(CameraInfo, f'{ns}/camera_info',
                                 lambda m: self._on_image('info', m), qos)
        self.create_subscription(PoseStamped, f'{ns}/pose',
                                 lambda m: self._on_image('pose', m), qos)

    def _load(self, path: str) -> Any:
        net = load_grasp_net(path)
        self.runner.image_size = int(net.spec['image_size'])
        return net.grasp

    def _input_stamps(self) -> dict[str, float | None]:
        stamps = {'joint_states': None if self._js is None else self._js[0]}
        if self.runner.status.stage in ('', 'park', 'capture'):
            # The camera matters until the grasp is chosen; a hold there re-parks on recovery.
            stamps['camera'] = None if self._frame is None else self._frame.stamp
        return stamps

    def _synced(self) -> bool:
        return self._js is not None

    def _episode_started(self) -> None:
        pass

    def _runner_step(self) -> Any:
        js_stamp, arm_q, _, finger_q, _ = self._js
        return self.runner.step(GraspSample(js_stamp, arm_q, finger_q), self._frame)

    def _publish_markers(self) -> None:
        grip = self.runner.kin.fk(self._js[1])
        point = self.runner.status.grasp.get('point') if self.runner.status.grasp else None
        self._marker_pub.publish(pm.markers(
            self.runner.status.goal or None, point, grip, self.config.world_frame,
            self.get_clock().now().to_msg(), 0.03))

    # ---- camera --------------------------------------------------------------------------
    def _on_image(self, kind: str, msg: Any) -> None:
        """Collect rgb, depth, info and pose; a complete set with one stamp is a frame."""
        stamp = pm.seconds(msg.header.stamp)
        self._images[kind] = (stamp, msg)
        if len(self._images) < 4 or any(s != stamp for s, _ in self._images.values()):
            return
        try:
            self._frame = self._to_frame(stamp)
        except (InputRejected, ValueError) as exc:
            self._reject('rejected_images', f'camera frame rejected: {exc}')
        finally:
            self._images.clear()

    def _to_frame(self, stamp: float) -> CameraFrame:
        rgb_msg, depth_msg = self._images['rgb'][1], self._images['depth'][1]
        info, pose = self._images['info'][1], self._images['pose'][1]
        self._check_frame(pose.header.frame_id, 'camera pose')
        h, w = rgb_msg.height, rgb_msg.width
        if rgb_msg.encoding != 'rgb8' or len(rgb_msg.data) != h * w * 3:
            raise InputRejected(f'rgb image must be rgb8 {w}x{h}, got {rgb_msg.encoding} with '
                                f'{len(rgb_msg.data)} bytes')
        if depth_msg.encoding != '32FC1' or (depth_msg.height, depth_msg.width) != (h, w) or \
                len(depth_msg.data) != h * w * 4:
            raise InputRejected(f'depth image must be 32FC1 {w}x{h}, got {depth_msg.encoding} '
                                f'{depth_msg.width}x{depth_msg.height}')
        k = np.asarray(info.k, dtype=float)
        if k.shape != (9,) or not np.all(np.isfinite(k)) or k[0] <= 0 or k[4] <= 0:
            raise InputRejected('camera_info K is not a valid pinhole matrix')
        position, quat = pm.pose_arrays(pose)
        rgb = np.frombuffer(bytes(rgb_msg.data), np.uint8).reshape(h, w, 3)
        dtype = '>f4' if depth_msg.is_bigendian else '<f4'
        depth = np.frombuffer(bytes(depth_msg.data), dtype).reshape(h, w).astype(np.float32)
        frame = CameraFrame(stamp, rgb, depth, k[0], k[4], k[2], k[5], position,
                            quat_to_matrix(quat))
        self.runner.net_input(frame)  # size and depth checks now, not mid-episode
        return frame


def main(args: list[str] | None = None) -> int:
    return spin_node(GraspNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
