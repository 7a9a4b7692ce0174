"""Policy node: drives a ros2_control arm with the DDPG+HER pick-and-place actor.

Sees the robot only through topics (``/joint_states`` by joint name, the object pose), builds
the training env's observation (``robot.fetch_observation``), runs the actor, and publishes
joint targets on the joint_trajectory_controller and gripper forward-command topics. The
episode logic, IK and every safety check live in plain classes (``robot.policy_runner``,
``robot.cartesian_control``, ``robot.safety``); this node converts messages. Topics, services,
parameters and the /pick_place/status layout are listed in the README ("Policy node").

Bad input never stops the node: a malformed message is rejected with a logged reason and
counted in /diagnostics; stale inputs pause the episode (nothing is commanded, so the controller
holds its last point) until fresh data returns; missing or mismatched weights leave the node
``inactive`` (goals refused with the reason) until ``~/reload`` loads good ones.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import json
from pathlib import Path
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger
import torch
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from pick_place_rl.core.checkpoint import CheckpointError
from pick_place_rl.core.config import field
from pick_place_rl.core.policy import GoalPolicy
from pick_place_rl.nodes import policy_msgs as pm
from pick_place_rl.nodes.params import declare_config, spin_node
from pick_place_rl.robot.cartesian_control import (
    CartesianController,
    CartesianParams,
    urdf_velocity_limits,
)
from pick_place_rl.robot.fetch_observation import (
    FetchObservationBuilder,
    GOAL_DIM,
    ObjectState,
    ObjectVelocityEstimator,
    OBS_DIM,
    quat_to_matrix,
)
from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.robot.policy_runner import (
    Phase,
    PickPlaceRunner,
    PolicyInterfaceConfig,
    RobotSample,
    TRIGGERS,
)
from pick_place_rl.robot.safety import InputRejected, joints_by_name, stale_inputs, Workspace

ACTOR_SPEC = {'obs_dim': OBS_DIM, 'goal_dim': GOAL_DIM, 'act_dim': 4}


@dataclass(frozen=True)
class PolicyNodeConfig(PolicyInterfaceConfig):
    """Parameters of the policy node (one ROS parameter per field; YAML in config/)."""
    weights: str = field('', 'actor checkpoint (trainer checkpoint.pt or exported actor.pt); '
                             'relative paths are taken from the package share folder')
    urdf: str = field('urdf/fetch.urdf', 'robot URDF for FK/IK (relative: package share)')
    ee_frame: str = field('robot0:grip', 'URDF frame the actor controls (the gym grip site)')
    arm_joints: tuple[str, ...] = field(
        ('robot0:shoulder_pan_joint', 'robot0:shoulder_lift_joint',
         'robot0:upperarm_roll_joint', 'robot0:elbow_flex_joint', 'robot0:forearm_roll_joint',
         'robot0:wrist_flex_joint', 'robot0:wrist_roll_joint'),
        'joints of the trajectory controller, in the order commands are sent')
    finger_joints: tuple[str, ...] = field(
        ('robot0:r_gripper_finger_joint', 'robot0:l_gripper_finger_joint'),
        'finger joints: observation order and gripper command array order')
    gripper_lower: tuple[float, ...] = field((0.0, 0.0), 'gripper command lower bounds (m)')
    gripper_upper: tuple[float, ...] = field((0.2, 0.2), 'gripper command upper bounds (m)')
    ee_orientation: tuple[float, ...] = field(
        (0.0, 0.70710678, 0.0, 0.70710678),
        'gripper orientation held by the IK, quaternion x y z w (world); empty = keep the one '
        'at the start of each episode')
    control_rate: float = field(25.0, 'actions per second (the gym task: 25 Hz)')
    trigger: str = field('timer', 'timer: act at control_rate on the latest data; '
                                  'joint_states: act once per new joint state that has an '
                                  'object pose of the same stamp (lock-step simulation)',
                         choices=TRIGGERS)
    sync_tolerance: float = field(0.002, 'joint_states trigger: max stamp difference between '
                                         'joint state and object pose, s')
    max_input_age: float = field(0.25, 'joint states / object pose older than this (s, node '
                                       'clock) pause the episode')
    workspace_lower: tuple[float, ...] = field((1.05, 0.40, 0.38),
                                               'goal workspace lower corner x y z (m, world)')
    workspace_upper: tuple[float, ...] = field((1.65, 1.10, 0.95),
                                               'goal workspace upper corner x y z (m, world)')
    world_frame: str = field('world', 'frame of goals and object poses ("" accepted as it)')
    max_steps: int = field(50, 'actions per episode (the gym task: 50)')
    success_threshold: float = field(0.05, 'object-goal distance counted as success, m')
    position_scale: float = field(0.05, 'gripper displacement per unit action, m (gym: 0.05)')
    finger_scale: float = field(1.0, 'finger target offset per unit action, m (gym: 1.0)')
    ik_iterations: int = field(10, 'damped least-squares iterations per control step')
    ik_damping: float = field(0.05, 'damping of the least-squares IK')
    ik_rot_weight: float = field(0.3, 'weight of the orientation error in the IK, m per rad')
    object_pose_topic: str = field('/pick_place/object_pose', 'object PoseStamped input')


def resolve(path: str) -> Path:
    """Absolute paths as given; relative ones from the package share folder (or cwd)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    from pick_place_rl.bringup.graph import share_dir
    return share_dir() / p


def load_policy(path: str) -> GoalPolicy:
    """The actor for the 25-dim Fetch observation; CheckpointError names what is wrong."""
    if not path:
        raise CheckpointError('no weights given (parameter "weights" is empty)')
    return GoalPolicy.from_checkpoint(resolve(path), ACTOR_SPEC)


class PolicyNode(Node):
    """Thin adapter between the ROS graph and a ``PickPlaceRunner``.

    ``nodes/grasp_node.py`` reuses the episode plumbing (goals, e-stop, services, status,
    diagnostics) and overrides the hooks marked below for its camera-driven runner.
    """

    CONFIG: type = PolicyNodeConfig
    DIAGNOSTICS_NAME = 'policy_node: pick_place'

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('policy_node', **kwargs)
        self.config = c = declare_config(self, self.CONFIG)
        torch.set_num_threads(max(1, c.torch_threads))
        self.period = 1.0 / c.control_rate
        self.runner = self._make_runner()
        self._est = ObjectVelocityEstimator()
        self._js: tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._obj: tuple[float, ObjectState] | None = None
        self._last_step_stamp = -np.inf
        self._goal_count = 0
        self._counts = dict.fromkeys(('rejected_joint_states', 'rejected_object_poses',
                                      'rejected_goals', 'stale_events', 'control_steps',
                                      'commands_published'), 0)
        self._last_rejection = ''
        self._latency_ms: deque[float] = deque(maxlen=500)
        self._step_times: deque[float] = deque(maxlen=100)
        self._make_entities()
        self.reload()

    def _make_runner(self) -> PickPlaceRunner:
        c = self.config
        kin = ArmKinematics(resolve(c.urdf), c.arm_joints, c.ee_frame)
        vel = np.asarray(c.velocity_limits, float) if c.velocity_limits else \
            urdf_velocity_limits(kin)
        rot = quat_to_matrix(c.ee_orientation) if c.ee_orientation else None
        params = CartesianParams(position_scale=c.position_scale, finger_scale=c.finger_scale,
                                 ik_iterations=c.ik_iterations, ik_damping=c.ik_damping,
                                 rot_weight=c.ik_rot_weight, velocity_scale=c.velocity_scale)
        controller = CartesianController(kin, vel, self.period, c.gripper_lower,
                                         c.gripper_upper, rot, params)
        workspace = Workspace(tuple(c.workspace_lower), tuple(c.workspace_upper))
        return PickPlaceRunner(FetchObservationBuilder(kin), controller, workspace,
                               c.max_steps, c.success_threshold)

    def _make_entities(self) -> None:
        c = self.config
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._traj_pub = self.create_publisher(JointTrajectory, c.trajectory_topic, reliable)
        self._grip_pub = self.create_publisher(Float64MultiArray, c.gripper_topic, reliable)
        self._status_pub = self.create_publisher(String, c.status_topic, latched)
        self._marker_pub = self.create_publisher(MarkerArray, c.markers_topic, reliable)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', reliable)
        # The e-stop first: when several messages wait, the executor serves it before the rest.
        self.create_subscription(Bool, c.estop_topic, self._on_estop, reliable)
        self.create_subscription(JointState, c.joint_states_topic, self._on_joint_states,
                                 reliable)
        self._make_inputs(reliable)
        self.create_subscription(PoseStamped, c.goal_topic, self._on_goal, reliable)
        self.create_service(Trigger, '~/cancel', self._srv_cancel)
        self.create_service(Trigger, '~/reload', self._srv_reload)
        self.create_service(Trigger, '~/reset_estop', self._srv_reset_estop)
        self.create_timer(self.period, self._on_timer)
        self.create_timer(c.diagnostics_period, self._publish_diagnostics)

    # ---- hooks (overridden by the grasp node) --------------------------------------------
    def _make_inputs(self, qos: QoSProfile) -> None:
        """Subscriptions besides joint states, goal and e-stop."""
        self.create_subscription(PoseStamped, self.config.object_pose_topic,
                                 self._on_object_pose, qos)

    def _load(self, path: str) -> Any:
        """The policy for the runner; CheckpointError names what is wrong."""
        return load_policy(path)

    def _input_stamps(self) -> dict[str, float | None]:
        """Stamps of the inputs an episode needs fresh (for the staleness watchdog)."""
        return {'joint_states': None if self._js is None else self._js[0],
                'object_pose': None if self._obj is None else self._obj[0]}

    def _synced(self) -> bool:
        """joint_states trigger: the inputs of one simulator step have all arrived."""
        if self._js is None or self._obj is None:
            return False
        return abs(self._js[0] - self._obj[0]) <= self.config.sync_tolerance

    def _episode_started(self) -> None:
        # The episode starts at rest, as the gym's does: no velocity carried over a reset.
        self._est.rest()
        if self._obj is not None:
            stamp, o = self._obj
            self._obj = (stamp, ObjectState(o.position, o.rotation, np.zeros(3), np.zeros(3)))

    def _runner_step(self) -> Any:
        """One runner step on the latest inputs; returns its StepCommand or None."""
        js_stamp, arm_q, arm_qd, finger_q, finger_qd = self._js
        return self.runner.step(RobotSample(js_stamp, arm_q, arm_qd, finger_q, finger_qd,
                                            self._obj[1]))

    def _publish_markers(self) -> None:
        grip = self.runner.controller.kin.fk(self._js[1])
        self._marker_pub.publish(pm.markers(
            self.runner.status.goal or None, self._obj[1].position, grip,
            self.config.world_frame, self.get_clock().now().to_msg(),
            self.runner.success_threshold))

    # ---- weights -------------------------------------------------------------------------
    def reload(self) -> tuple[bool, str]:
        """(Re)load the weights named by the ``weights`` parameter (its current value)."""
        path = str(self.get_parameter('weights').value)
        try:
            policy = self._load(path)
        except CheckpointError as exc:
            self.runner.set_policy(None, f'refusing to activate: {exc}')
            self.get_logger().error(f'refusing to activate: {exc}')
            self._publish_status()
            return False, str(exc)
        self.runner.set_policy(policy)
        msg = f'loaded weights {getattr(policy, "meta", {}).get("path", path)}'
        self.get_logger().info(msg)
        self._publish_status()
        return True, msg

    # ---- inputs --------------------------------------------------------------------------
    def _reject(self, counter: str, reason: str) -> None:
        self._counts[counter] += 1
        self._last_rejection = reason
        self.get_logger().warning(reason, throttle_duration_sec=1.0)

    def _on_joint_states(self, msg: JointState) -> None:
        t_in = time.perf_counter()
        c = self.config
        try:
            q, qd = joints_by_name(msg.name, msg.position, msg.velocity,
                                   (*c.arm_joints, *c.finger_joints))
        except InputRejected as exc:
            self._reject('rejected_joint_states', f'joint_states rejected: {exc}')
            return
        n = len(c.arm_joints)
        self._js = (pm.seconds(msg.header.stamp), q[:n], qd[:n], q[n:], qd[n:])
        self._maybe_step_on_data(t_in)

    def _on_object_pose(self, msg: PoseStamped) -> None:
        t_in = time.perf_counter()
        try:
            self._check_frame(msg.header.frame_id, 'object pose')
            pos, quat = pm.pose_arrays(msg)
            stamp = pm.seconds(msg.header.stamp)
            self._obj = (stamp, self._est.update(stamp, pos, quat))
        except (InputRejected, ValueError) as exc:
            self._reject('rejected_object_poses', f'object pose rejected: {exc}')
            return
        self._maybe_step_on_data(t_in)

    def _check_frame(self, frame: str, what: str) -> None:
        if frame not in ('', self.config.world_frame):
            raise InputRejected(f'{what} in frame {frame!r}; expected '
                                f'{self.config.world_frame!r} (no TF lookup)')

    def _on_goal(self, msg: PoseStamped) -> None:
        self._goal_count += 1
        goal_id = self._goal_count
        try:
            self._check_frame(msg.header.frame_id, 'goal')
            goal, _ = pm.pose_arrays(msg)
        except InputRejected as exc:
            self._reject('rejected_goals', f'goal {goal_id} rejected: {exc}')
            self._publish_refusal(goal_id, [], str(exc))
            return
        previous = self.runner.status.to_dict() if self.runner.active else None
        status = self.runner.start(goal, goal_id)
        if status.result != 'rejected' and previous is not None:
            # The preempted episode's own last word, before the new one's first.
            previous.update(phase=Phase.DONE.value, result='preempted',
                            reason=f'preempted by goal {goal_id}')
            self._status_pub.publish(String(data=json.dumps(previous)))
        if status.result == 'rejected':
            self._reject('rejected_goals', f'goal {goal_id} rejected: {status.reason}')
            self._publish_refusal(goal_id, goal.tolist(), status.reason)
            return
        self.get_logger().info(f'goal {goal_id}: {np.round(goal, 3).tolist()}')
        self._episode_started()
        self._last_step_stamp = -np.inf
        self._publish_status()
        self._maybe_step_on_data(time.perf_counter())
        if self.runner.status.step == 0:
            self._check_stale()  # no usable data yet: say so in the status instead of waiting

    def _on_estop(self, msg: Bool) -> None:
        if self.runner.estop_input(bool(msg.data)):
            self.get_logger().error('e-stop: commands stopped until ~/reset_estop')
            self._publish_status()

    # ---- services ------------------------------------------------------------------------
    def _srv_cancel(self, request: Trigger.Request, response: Trigger.Response
                    ) -> Trigger.Response:
        response.success = self.runner.cancel()
        response.message = 'cancelled' if response.success else 'no episode under way'
        self._publish_status()
        return response

    def _srv_reload(self, request: Trigger.Request, response: Trigger.Response
                    ) -> Trigger.Response:
        response.success, response.message = self.reload()
        return response

    def _srv_reset_estop(self, request: Trigger.Request, response: Trigger.Response
                         ) -> Trigger.Response:
        reason = self.runner.reset_estop()
        response.success = reason is None
        response.message = reason or 'e-stop reset'
        self._publish_status()
        return response

    # ---- control -------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _maybe_step_on_data(self, t_in: float) -> None:
        if self.config.trigger != 'joint_states' or not self._synced():
            return
        if self._js[0] <= self._last_step_stamp:
            return
        self._control(t_in)

    def _on_timer(self) -> None:
        if self.config.trigger == 'timer':
            self._control(time.perf_counter())
        elif self.runner.active:
            self._check_stale()  # in lock-step mode, the watchdog only

    def _check_stale(self) -> bool:
        stale = stale_inputs(self._now(), self._input_stamps(), self.config.max_input_age)
        if not stale:
            return False
        reason = f'holding: stale {", ".join(stale)}'
        if self.runner.status.phase is not Phase.HOLDING or self.runner.status.reason != reason:
            self._counts['stale_events'] += 1
            self.get_logger().warning(reason)
            self.runner.hold(reason)
            self._publish_status()
        return True

    def _control(self, t_in: float) -> None:
        if not self.runner.active or self._check_stale():
            return
        self._last_step_stamp = self._js[0]
        try:
            cmd = self._runner_step()
        except ValueError as exc:  # e.g. a non-finite observation: hold, keep running
            self.runner.hold(f'control step failed: {exc}')
            self._reject('rejected_joint_states', f'control step failed: {exc}')
            cmd = None
        if cmd is not None:
            c = self.config
            self._traj_pub.publish(pm.trajectory(c.arm_joints, cmd.arm, self.period))
            self._grip_pub.publish(pm.gripper_command(cmd.gripper))
            self._latency_ms.append(1000.0 * (time.perf_counter() - t_in))
            self._step_times.append(time.monotonic())
            self._counts['commands_published'] += 1
        self._counts['control_steps'] += 1
        self._publish_status()
        self._publish_markers()

    # ---- outputs -------------------------------------------------------------------------
    def _publish_status(self) -> None:
        self._status_pub.publish(String(data=json.dumps(self.runner.status.to_dict())))

    def _publish_refusal(self, goal_id: int, goal: list[float], reason: str) -> None:
        refusal = dict(self.runner.status.to_dict(), goal_id=goal_id, goal=goal,
                       result='rejected', reason=reason, distance=None, step=0)
        self._status_pub.publish(String(data=json.dumps(refusal)))
        # The episode under way (if any) goes on: republish its status after the refusal.
        self._publish_status()

    def _publish_diagnostics(self) -> None:
        st = self.runner.status
        level = DiagnosticStatus.OK
        if st.phase in (Phase.INACTIVE, Phase.HOLDING):
            level = DiagnosticStatus.WARN
        if st.phase is Phase.ESTOPPED:
            level = DiagnosticStatus.ERROR
        lat = np.array(self._latency_ms) if self._latency_ms else np.zeros(1)
        inf = np.array(self.runner.inference_ms[-500:]) if self.runner.inference_ms else \
            np.zeros(1)
        times = np.array(self._step_times)
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 and \
            times[-1] > times[0] else 0.0
        values = {
            'phase': st.phase.value, 'goal_id': st.goal_id, 'reason': st.reason,
            'weights': str(self.get_parameter('weights').value),
            'command_rate_hz': f'{rate:.2f}',
            'step_latency_ms_p50': f'{np.percentile(lat, 50):.3f}',
            'step_latency_ms_p99': f'{np.percentile(lat, 99):.3f}',
            'inference_ms_p99': f'{np.percentile(inf, 99):.3f}',
            'rejected_commands': self.runner.rejected_commands,
            'estop_latched': self.runner.estop.tripped,
            'last_rejection': self._last_rejection, **self._counts,
            'rejected_inputs': sum(v for k, v in self._counts.items()
                                   if k.startswith('rejected_')),
        }
        status = DiagnosticStatus(level=level, name=self.DIAGNOSTICS_NAME,
                                  message=st.reason or st.phase.value,
                                  hardware_id='policy_node')
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return spin_node(PolicyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
