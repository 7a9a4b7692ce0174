"""Simulated robot on the ROS 2 graph, looking like a ros2_control robot (lifecycle node).

``robot:=fetch`` (MuJoCo FetchPickAndPlace scene) or ``robot:=kuka`` (PyBullet iiwa over a tray).
The simulator is created on *configure* and released on *cleanup*; it runs while *active*.
Topics, services and parameters are listed in the README ("Simulated robots"). The node only
converts messages; clock, controllers and counters live in ``sim.backend.DriverCore``.

Clock modes (``clock_mode``):
  ``realtime``  physics paced to the wall clock;
  ``fast``      as fast as the CPU allows, ``/clock`` advancing;
  ``lockstep``  one control period per command (an arm trajectory, plus a gripper command when
                ``lockstep_require_gripper``), then state is published: deterministic evaluation.
"""
from __future__ import annotations

import array
from dataclasses import dataclass
import json
import os
import time
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, Pose, PoseArray, PoseStamped
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from pick_place_rl.core.config import field
from pick_place_rl.nodes.params import declare_config, read_config
from pick_place_rl.robot.trajectory import TrajectoryCommand
from pick_place_rl.sim.backend import CameraImage, DriverCore, EpisodeInfo, make_backend, ROBOTS

CLOCK_MODES = ('realtime', 'fast', 'lockstep')
#: Wall seconds between callback rounds in fast mode (command latency there, in wall time).
FAST_SPIN_INTERVAL = 0.005
#: Lock-step: while no command comes, the current state is published again this often (same
#: stamp), so a subscriber that matched after the last step still gets it. Consumers that act
#: on each state (the policy node's joint_states trigger) skip stamps they already used.
LOCKSTEP_IDLE_REPUBLISH = 0.5


@dataclass(frozen=True)
class SimDriverConfig:
    """Parameters of the sim driver node (one ROS parameter per field)."""
    robot: str = field('fetch', 'simulated robot: fetch (MuJoCo) or kuka (PyBullet)',
                       choices=ROBOTS)
    autostart: bool = field(False, 'configure and activate at startup (no lifecycle manager)')
    clock_mode: str = field('realtime', 'realtime | fast | lockstep (see module docstring)',
                            choices=CLOCK_MODES)
    control_period: float = field(0.04, 'sim seconds advanced per command in lockstep mode')
    lockstep_require_gripper: bool = field(
        True, 'lockstep waits for a gripper command as well as an arm trajectory')
    joint_state_rate: float = field(100.0, '/joint_states and object pose rate, Hz of sim time')
    camera_rate: float = field(10.0, 'camera rate, Hz of sim time (0 = no camera)')
    camera_width: int = field(320, 'camera image width, pixels')
    camera_height: int = field(240, 'camera image height, pixels')
    camera_name: str = field('', 'simulator camera to render ("" = the robot default)')
    diagnostics_period: float = field(1.0, '/diagnostics period, wall seconds')
    cmd_timeout: float = field(0.5, 'hold measured position this long after a trajectory ends '
                                    'with no new one (0 = hold the last point forever)')
    allow_nonzero_velocity_at_trajectory_end: bool = field(
        False, 'accept trajectories whose last point has non-zero velocity')
    arm_joints: tuple[str, ...] = field(
        (), 'arm joints (trajectory controller joints); empty = all of the simulator arm')
    gripper_joints: tuple[str, ...] = field(
        (), 'gripper command joints, in the order of the command array; empty = simulator')
    world_frame: str = field('world', 'frame id of poses and goals')
    joint_states_topic: str = field('/joint_states', 'JointState output topic')
    trajectory_topic: str = field('/arm_controller/joint_trajectory', 'JointTrajectory input')
    gripper_topic: str = field('/gripper_controller/commands', 'Float64MultiArray input')
    object_pose_topic: str = field('/pick_place/object_pose', 'ground-truth object pose output')
    object_poses_topic: str = field('/pick_place/object_poses',
                                    'ground-truth PoseArray of every object (scenes with several '
                                    'objects), published with the camera')
    goal_topic: str = field('/pick_place/sim_goal', 'current task goal output (latched)')
    camera_namespace: str = field('/camera', 'prefix of image_raw, depth/image_raw, camera_info')
    seed: int = field(0, 'seed of the episode set up on configure')
    reset_seed: int = field(-1, 'seed used by the next reset call (-1 = next episode of the '
                                'simulator RNG); read when reset is called')
    reset_object_xy: tuple[float, ...] = field(
        (), 'object x, y for the next reset only (Fetch: with reset_goal; empty = sampled)')
    reset_goal: tuple[float, ...] = field(
        (), 'goal x, y, z for the next reset only (empty = sampled)')
    kuka_object_set: str = field('train', 'kuka: object split (train | test | all)')
    kuka_num_objects: int = field(5, 'kuka: objects dropped into the tray per episode')


def _stamp(seconds: float) -> Time:
    sec = int(seconds)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def _set_stamp(stamp: Time, seconds: float) -> None:
    sec = int(seconds)
    stamp.sec = sec
    stamp.nanosec = int(round((seconds - sec) * 1e9)) % 1_000_000_000


def _set_pose(pose: Any, position: np.ndarray, xyzw: np.ndarray) -> None:
    x, y, z = position.tolist()
    p = pose.position
    p.x, p.y, p.z = x, y, z
    qx, qy, qz, qw = xyzw.tolist()
    o = pose.orientation
    o.x, o.y, o.z, o.w = qx, qy, qz, qw


def _seconds(msg_time: Any) -> float:
    return float(msg_time.sec) + 1e-9 * float(msg_time.nanosec)


def trajectory_command(msg: JointTrajectory) -> TrajectoryCommand:
    """JointTrajectory -> plain arrays (no validation here: the controller checks the rules)."""
    return TrajectoryCommand(
        joint_names=tuple(msg.joint_names),
        times=tuple(_seconds(p.time_from_start) for p in msg.points),
        positions=tuple(tuple(p.positions) for p in msg.points),
        velocities=tuple(tuple(p.velocities) for p in msg.points),
        stamp=_seconds(msg.header.stamp))


class SimDriverNode(LifecycleNode):
    """Lifecycle adapter between the ROS graph and a ``DriverCore``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('sim_driver', **kwargs)
        self.config = declare_config(self, SimDriverConfig)
        self.core: DriverCore | None = None
        self._active = False
        self._entities: list[Any] = []
        self._pending_arm = False
        self._pending_gripper = False
        self._last_spin = 0.0
        self._last_state_wall = 0.0

    # ---- lifecycle ---------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        backend = None
        try:
            # parameters may have changed since start (reset placement, clock mode)
            self.config = c = read_config(self, SimDriverConfig)
            if c.clock_mode not in CLOCK_MODES:
                raise ValueError(f'clock_mode {c.clock_mode!r} not in {CLOCK_MODES}')
            backend = make_backend(c.robot, **self._backend_kwargs())
            self._check_joint_names(backend)
        except Exception as exc:  # a bad parameter must fail the transition, not the process
            if backend is not None:
                backend.close()
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.core = DriverCore(backend, c.cmd_timeout, c.allow_nonzero_velocity_at_trajectory_end)
        self._gripper_order = self._order(c.gripper_joints, backend.gripper_joint_names)
        self._make_entities()
        self._episode = self.core.reset(seed=c.seed)
        self._publish_goal()
        self.get_logger().info(f'configured {c.robot} ({c.clock_mode}), tick '
                               f'{backend.tick * 1000:.1f} ms')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = True
        self._restart_pacing()
        self._publish_state(camera=True)
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        # Through the node's destroy_* so the executor stops waiting on them first.
        destroy = ((Publisher, self.destroy_publisher),
                   (Subscription, self.destroy_subscription),
                   (Service, self.destroy_service), (Timer, self.destroy_timer))
        for entity in self._entities:
            for cls, destroy_entity in destroy:
                if isinstance(entity, cls):
                    destroy_entity(entity)
        self._entities = []
        if self.core is not None:
            self.core.backend.close()
            self.core = None

    # ---- setup helpers -------------------------------------------------------------------
    def _backend_kwargs(self) -> dict[str, Any]:
        c = self.config
        kwargs: dict[str, Any] = {}
        if c.camera_name:
            kwargs['camera'] = c.camera_name
        if c.robot == 'kuka':
            kwargs.update(object_set=c.kuka_object_set, num_objects=c.kuka_num_objects)
        return kwargs

    def _check_joint_names(self, backend: Any) -> None:
        c = self.config
        for given, actual, what in ((c.arm_joints, backend.arm_joint_names, 'arm_joints'),
                                    (c.gripper_joints, backend.gripper_joint_names,
                                     'gripper_joints')):
            if given and sorted(given) != sorted(actual):
                raise ValueError(f'{what} {list(given)} do not match the simulator joints '
                                 f'{list(actual)}')

    @staticmethod
    def _order(given: tuple[str, ...], actual: tuple[str, ...]) -> np.ndarray:
        """Index into the command array for each simulator joint."""
        if not given:
            return np.arange(len(actual))
        return np.array([given.index(name) for name in actual])

    def _make_entities(self) -> None:
        c = self.config
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        cam = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        pub = self.create_publisher
        self._js_pub = pub(JointState, c.joint_states_topic, reliable)
        self._clock_pub = pub(Clock, '/clock', reliable)
        self._obj_pub = pub(PoseStamped, c.object_pose_topic, reliable)
        self._goal_pub = pub(PointStamped, c.goal_topic, latched)
        self._diag_pub = pub(DiagnosticArray, '/diagnostics', reliable)
        ns = c.camera_namespace.rstrip('/')
        self._rgb_pub = pub(Image, f'{ns}/image_raw', cam)
        self._depth_pub = pub(Image, f'{ns}/depth/image_raw', cam)
        self._info_pub = pub(CameraInfo, f'{ns}/camera_info', cam)
        self._cam_pose_pub = pub(PoseStamped, f'{ns}/pose', reliable)
        self._poses_pub = pub(PoseArray, c.object_poses_topic, reliable)
        self._entities = [
            self._js_pub, self._clock_pub, self._obj_pub, self._goal_pub, self._diag_pub,
            self._rgb_pub, self._depth_pub, self._info_pub, self._cam_pose_pub, self._poses_pub,
            self.create_subscription(JointTrajectory, c.trajectory_topic, self._on_trajectory,
                                     reliable),
            self.create_subscription(Float64MultiArray, c.gripper_topic, self._on_gripper,
                                     reliable),
            self.create_service(Trigger, '~/reset', self._on_reset),
            self.create_service(Trigger, '~/spawn_objects', self._on_spawn),
            self.create_timer(c.diagnostics_period, self._publish_diagnostics),
        ]
        # Messages published every tick are built once and refilled.
        self._js_msg = JointState(name=list(self.core.backend.joint_names))
        self._clock_msg = Clock()
        self._obj_msg = PoseStamped()
        self._obj_msg.header.frame_id = c.world_frame
        self._diag_last = (time.monotonic(), 0.0)
        self._published = {'joint_states': 0, 'camera': 0}
        self._dropped_frames = 0
        self._next_js = 0.0
        self._next_cam = 0.0

    # ---- command callbacks ---------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if self.core is None or not self._active:
            return
        try:
            reason = self.core.on_trajectory(trajectory_command(msg))
        except Exception as exc:  # never let a message take the driver down
            reason = f'unreadable trajectory: {exc}'
            self.core.stats.rejected_trajectories += 1
            self.core.stats.last_rejection = reason
        if reason is not None:
            self.get_logger().warning(f'rejected trajectory: {reason}',
                                      throttle_duration_sec=1.0)
        self._pending_arm = True

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        if self.core is None or not self._active:
            return
        values = np.asarray(msg.data, dtype=float)
        if values.size == len(self._gripper_order):
            values = values[self._gripper_order]
        reason = self.core.on_gripper(values)
        if reason is not None:
            self.get_logger().warning(f'rejected gripper command: {reason}',
                                      throttle_duration_sec=1.0)
        self._pending_gripper = True

    # ---- services ------------------------------------------------------------------------
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        if self.core is None:
            response.success, response.message = False, 'not configured'
            return response
        seed = int(self._param('reset_seed'))
        xy = list(self._param('reset_object_xy') or [])
        goal = list(self._param('reset_goal') or [])
        try:
            info = self.core.reset(seed=None if seed < 0 else seed,
                                   object_xy=xy or None, goal=goal or None)
        except (ValueError, TypeError) as exc:
            response.success, response.message = False, f'reset failed: {exc}'
            return response
        if xy or goal:
            # A placement is for one reset: clearing it here spares users from having to set
            # an empty typed array (which `ros2 param set` cannot express).
            empty = [Parameter(n, Parameter.Type.DOUBLE_ARRAY, [])
                     for n in ('reset_object_xy', 'reset_goal')]
            self.set_parameters(empty)
        return self._episode_response(info, response)

    def _on_spawn(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        if self.core is None:
            response.success, response.message = False, 'not configured'
            return response
        seed = int(self._param('reset_seed'))
        info = self.core.backend.spawn_objects(None if seed < 0 else seed)
        return self._episode_response(info, response)

    def _param(self, name: str) -> Any:
        """Current value of a parameter; None while it is declared but unset (empty list)."""
        if not self.has_parameter(name):
            return None
        try:
            return self.get_parameter(name).value
        except rclpy.exceptions.ParameterUninitializedException:
            return None

    def _episode_response(self, info: EpisodeInfo, response: Trigger.Response
                          ) -> Trigger.Response:
        self._episode = info
        self._pending_arm = self._pending_gripper = False
        self._publish_goal()
        self._publish_state(camera=False)
        self._restart_pacing()
        response.success = True
        response.message = json.dumps({
            'seed': info.seed, 'goal': np.asarray(info.goal).tolist(),
            'object_position': np.asarray(info.object_position).tolist(),
            'time': self.core.time, **info.details})
        return response

    # ---- stepping ------------------------------------------------------------------------
    def _restart_pacing(self) -> None:
        self._wall0 = time.monotonic()
        self._sim0 = self.core.time if self.core is not None else 0.0

    def spin_step(self, executor: SingleThreadedExecutor) -> None:
        """One turn of the main loop: serve callbacks, advance the simulation as the mode says."""
        core = self.core
        if core is None or not self._active:
            executor.spin_once(timeout_sec=0.05)
            return
        mode = self.config.clock_mode
        if mode == 'realtime':
            due = self._wall0 + (core.time + core.tick - self._sim0)
            wait = due - time.monotonic()
            if wait > 0:
                executor.spin_once(timeout_sec=wait)
                return
            if wait < -0.5:  # far behind (a stall): do not fast-forward to catch up
                self._restart_pacing()
            # Behind schedule there is no idle time to serve callbacks in: serve them anyway,
            # once per tick, or commands and services would starve on a busy machine.
            executor.spin_once(timeout_sec=0.0)
            if self.core is not None and self._active:
                self._advance(1)
        elif mode == 'fast':
            # An rclpy wait costs 0.2-2 ms (more on a loaded machine), several physics steps:
            # serve callbacks every FAST_SPIN_INTERVAL of wall time, not every step.
            now = time.monotonic()
            if now - self._last_spin >= FAST_SPIN_INTERVAL:
                self._last_spin = now
                executor.spin_once(timeout_sec=0.0)
            if self.core is not None and self._active:
                self._advance(core.ticks_per(self.config.control_period))
        else:
            executor.spin_once(timeout_sec=0.05)
            ready = self._pending_arm and (self._pending_gripper
                                           or not self.config.lockstep_require_gripper)
            if ready and self.core is not None and self._active:
                self._pending_arm = self._pending_gripper = False
                # One state per step (the policy waits for it); the camera when it is due.
                self._advance(core.ticks_per(self.config.control_period), stream=False)
                due = self.config.camera_rate > 0 and core.time >= self._next_cam - 1e-9
                if due:
                    self._next_cam = core.time + 1.0 / self.config.camera_rate
                self._publish_state(camera=due)
            elif (self.core is not None and self._active and time.monotonic()
                  - self._last_state_wall > LOCKSTEP_IDLE_REPUBLISH):
                self._publish_state(camera=False)

    def _advance(self, n_ticks: int, stream: bool = True) -> None:
        """Step ``n_ticks``; with ``stream``, publish state and camera at their sim rates."""
        core = self.core
        c = self.config
        for _ in range(n_ticks):
            core.step(1)
            _set_stamp(self._clock_msg.clock, core.time)
            self._clock_pub.publish(self._clock_msg)
            if not stream:
                continue
            if c.joint_state_rate > 0 and core.time >= self._next_js - 1e-9:
                self._next_js = core.time + 1.0 / c.joint_state_rate
                self._publish_state(camera=False)
            if c.camera_rate > 0 and core.time >= self._next_cam - 1e-9:
                self._next_cam = core.time + 1.0 / c.camera_rate
                # Real time on a machine too busy to render every frame: drop frames (as a real
                # camera driver does) rather than fall behind the wall clock.
                if self._behind() > 1.0 / c.camera_rate:
                    self._dropped_frames += 1
                else:
                    self._publish_camera()
                    self._publish_object_poses()

    def _behind(self) -> float:
        """Wall seconds the simulation lags the wall clock (0 outside real-time mode)."""
        if self.config.clock_mode != 'realtime' or self.core is None:
            return 0.0
        return time.monotonic() - (self._wall0 + self.core.time - self._sim0)

    # ---- publishing ----------------------------------------------------------------------
    def _publish_state(self, camera: bool) -> None:
        core = self.core
        if core is None:
            return
        self._last_state_wall = time.monotonic()
        pose = self._obj_msg
        _set_stamp(pose.header.stamp, core.time)
        _set_pose(pose.pose, *core.backend.object_pose())
        self._obj_pub.publish(pose)
        q, v, e = core.backend.joint_state()
        msg = self._js_msg
        _set_stamp(msg.header.stamp, core.time)
        # array.array('d') skips the per-element type checks a list assignment runs.
        msg.position = array.array('d', np.ascontiguousarray(q, dtype=np.float64).tobytes())
        msg.velocity = array.array('d', np.ascontiguousarray(v, dtype=np.float64).tobytes())
        msg.effort = array.array('d', np.ascontiguousarray(e, dtype=np.float64).tobytes())
        self._js_pub.publish(msg)
        self._published['joint_states'] += 1
        if camera and self.config.camera_rate > 0:
            self._publish_camera()
            self._publish_object_poses()

    def _publish_object_poses(self) -> None:
        poses = getattr(self.core.backend, 'object_poses', None)
        if poses is None:
            return
        msg = PoseArray()
        msg.header.stamp = _stamp(self.core.time)
        msg.header.frame_id = self.config.world_frame
        for row in poses():
            pose = Pose()
            _set_pose(pose, row[:3], row[3:])
            msg.poses.append(pose)
        self._poses_pub.publish(msg)

    def _pose(self, stamp: Time, position: np.ndarray, xyzw: np.ndarray) -> PoseStamped:
        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = self.config.world_frame
        _set_pose(pose.pose, position, xyzw)
        return pose

    def _publish_goal(self) -> None:
        goal = np.asarray(self.core.backend.goal(), dtype=float)
        if goal.shape != (3,):
            return
        msg = PointStamped()
        msg.header.stamp = _stamp(self.core.time)
        msg.header.frame_id = self.config.world_frame
        msg.point.x, msg.point.y, msg.point.z = map(float, goal)
        self._goal_pub.publish(msg)

    def _publish_camera(self) -> None:
        c = self.config
        image: CameraImage = self.core.backend.render(c.camera_width, c.camera_height)
        stamp = _stamp(self.core.time)
        h, w = image.depth.shape
        rgb = Image(height=h, width=w, encoding='rgb8', step=3 * w, is_bigendian=0)
        rgb.header.stamp, rgb.header.frame_id = stamp, image.frame_id
        rgb.data = np.ascontiguousarray(image.rgb).tobytes()
        depth = Image(height=h, width=w, encoding='32FC1', step=4 * w, is_bigendian=0)
        depth.header.stamp, depth.header.frame_id = stamp, image.frame_id
        depth.data = np.ascontiguousarray(image.depth, dtype=np.float32).tobytes()
        info = CameraInfo(height=h, width=w, distortion_model='plumb_bob')
        info.header.stamp, info.header.frame_id = stamp, image.frame_id
        info.d = [0.0] * 5
        info.k = [image.fx, 0.0, image.cx, 0.0, image.fy, image.cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [image.fx, 0.0, image.cx, 0.0, 0.0, image.fy, image.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        pose = self._pose(stamp, image.position, image.orientation)
        self._rgb_pub.publish(rgb)
        self._depth_pub.publish(depth)
        self._info_pub.publish(info)
        self._cam_pose_pub.publish(pose)
        self._published['camera'] += 1

    def _publish_diagnostics(self) -> None:
        core = self.core
        if core is None:
            return
        now = time.monotonic()
        wall0, sim0 = self._diag_last
        rtf = (core.time - sim0) / max(now - wall0, 1e-9)
        self._diag_last = (now, core.time)
        s = core.stats
        status = DiagnosticStatus(name=f'sim_driver: {self.config.robot}',
                                  hardware_id=f'sim_{self.config.robot}')
        running = self._active
        lagging = running and self.config.clock_mode == 'realtime' and rtf < 0.95
        status.level = DiagnosticStatus.WARN if lagging else DiagnosticStatus.OK
        status.message = ('running' if running else 'inactive') + (' (behind real time)'
                                                                   if lagging else '')
        values = {
            'real_time_factor': f'{rtf:.3f}', 'step_time_ms': f'{s.step_time_ms():.4f}',
            'sim_time': f'{core.time:.3f}', 'clock_mode': self.config.clock_mode,
            'ticks': s.ticks, 'accepted_trajectories': s.accepted_trajectories,
            'rejected_trajectories': s.rejected_trajectories,
            'accepted_gripper_commands': s.accepted_gripper,
            'rejected_gripper_commands': s.rejected_gripper,
            'rejected_commands': s.rejected_trajectories + s.rejected_gripper,
            'command_timeouts': core.arm.timeouts, 'last_rejection': s.last_rejection,
            'joint_states_published': self._published['joint_states'],
            'camera_frames_published': self._published['camera'],
            'camera_frames_dropped': self._dropped_frames,
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    os.environ.setdefault('MUJOCO_GL', 'egl')   # headless offscreen rendering by default
    rclpy.init(args=args)
    node = None
    try:
        node = SimDriverNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if node.config.autostart:
            node.trigger_configure()
            node.trigger_activate()
        while rclpy.ok():
            try:
                node.spin_step(executor)
            except Exception:
                if rclpy.ok():
                    raise
                # SIGINT/SIGTERM shut the context down mid-publish: a normal exit.
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node._active = False
            node._release()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
