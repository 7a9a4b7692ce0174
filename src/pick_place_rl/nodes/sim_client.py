"""Python client of a sim driver running in another process (real rclpy over Fast DDS).

Used by the sim driver tests and benchmarks, and handy in scripts: starts ``python -m
pick_place_rl.nodes.sim_driver`` as a subprocess, drives its lifecycle and parameters, publishes
commands and collects what the driver publishes.
"""
from __future__ import annotations

from collections.abc import Sequence
import json
import os
import subprocess
from typing import Any

from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, PoseArray, PoseStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from pick_place_rl.nodes.graph_client import GraphClient
from pick_place_rl.nodes.node_process import start_node, stop_node


def start_driver(robot: str, extra: Sequence[str] = (), autostart: bool = True,
                 params_file: str | os.PathLike | None = None) -> subprocess.Popen:
    """The driver as a separate process (``extra``: ``name:=value`` parameter overrides)."""
    args: list[str] = []
    if params_file is not None:
        args += ['--params-file', str(params_file)]
    args += ['-p', f'robot:={robot}', '-p', f'autostart:={str(autostart).lower()}']
    for item in extra:
        args += ['-p', item]
    return start_node('pick_place_rl.nodes.sim_driver', args,
                      env={'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl')})


#: Stop the driver (SIGINT, then kill) and return its log.
stop_driver = stop_node


#: Driver output topics a client can collect.
OUTPUTS = ('/joint_states', '/pick_place/object_pose', '/pick_place/sim_goal', '/diagnostics',
           '/camera/image_raw', '/camera/depth/image_raw', '/camera/camera_info', '/camera/pose',
           '/pick_place/object_poses')


class DriverClient(GraphClient):
    """Subscriptions, publishers and service clients of one test node."""

    spin_period = 0.02

    def __init__(self, node_name: str = 'sim_driver_test',
                 topics: Sequence[str] | None = None) -> None:
        """``topics``: the driver outputs to subscribe to (default all of :data:`OUTPUTS`)."""
        self.node: Node = rclpy.create_node(node_name)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.joint_states: list[JointState] = []
        self.object_poses: list[PoseStamped] = []
        self.goals: list[PointStamped] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.images: list[Image] = []
        self.depths: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.camera_poses: list[PoseStamped] = []
        self.all_object_poses: list[PoseArray] = []
        n = self.node
        subs = {
            '/joint_states': (JointState, self.joint_states, reliable),
            '/pick_place/object_pose': (PoseStamped, self.object_poses, reliable),
            '/pick_place/sim_goal': (PointStamped, self.goals, latched),
            '/diagnostics': (DiagnosticArray, self.diagnostics, reliable),
            '/camera/image_raw': (Image, self.images, reliable),
            '/camera/depth/image_raw': (Image, self.depths, reliable),
            '/camera/camera_info': (CameraInfo, self.infos, reliable),
            '/camera/pose': (PoseStamped, self.camera_poses, reliable),
            '/pick_place/object_poses': (PoseArray, self.all_object_poses, reliable),
        }
        for topic in (OUTPUTS if topics is None else topics):
            msg_type, store, qos = subs[topic]
            n.create_subscription(msg_type, topic, store.append, qos)
        self.traj_pub = n.create_publisher(JointTrajectory, '/arm_controller/joint_trajectory',
                                           reliable)
        self.grip_pub = n.create_publisher(Float64MultiArray, '/gripper_controller/commands',
                                           reliable)

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 30.0) -> Any:
        return self.call_service(srv_type, name, request, timeout)

    def transition(self, transition_id: int, timeout: float = 60.0) -> bool:
        req = ChangeState.Request(transition=Transition(id=transition_id))
        return bool(self.call(ChangeState, '/sim_driver/change_state', req, timeout).success)

    def state(self) -> str:
        return self.call(GetState, '/sim_driver/get_state', GetState.Request()).current_state.label

    def set_params(self, **values: Any) -> None:
        params = []
        for name, value in values.items():
            pv = ParameterValue()
            if isinstance(value, bool):
                pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
            elif isinstance(value, int):
                pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
            elif isinstance(value, float):
                pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, value
            elif isinstance(value, str):
                pv.type, pv.string_value = ParameterType.PARAMETER_STRING, value
            else:
                pv.type = ParameterType.PARAMETER_DOUBLE_ARRAY
                pv.double_array_value = [float(v) for v in value]
            params.append(Parameter(name=name, value=pv))
        result = self.call(SetParameters, '/sim_driver/set_parameters',
                           SetParameters.Request(parameters=params))
        assert all(r.successful for r in result.results), result

    def reset(self) -> dict:
        res = self.call(Trigger, '/sim_driver/reset', Trigger.Request())
        assert res.success, res.message
        return json.loads(res.message)

    def latest_positions(self) -> dict[str, float]:
        msg = self.joint_states[-1]
        return dict(zip(msg.name, msg.position))

    def arm(self, names: Sequence[str]) -> np.ndarray:
        pos = self.latest_positions()
        return np.array([pos[n] for n in names])

    def send_trajectory(self, names: Sequence[str], points: Sequence[Sequence[float]],
                        times: Sequence[float], velocities: Sequence[Sequence[float]] = ()
                        ) -> None:
        msg = JointTrajectory(joint_names=list(names))
        for i, (pos, t) in enumerate(zip(points, times)):
            pt = JointTrajectoryPoint(positions=[float(p) for p in pos])
            if velocities:
                pt.velocities = [float(v) for v in velocities[i]]
            pt.time_from_start = Duration(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
            msg.points.append(pt)
        self.traj_pub.publish(msg)

    def send_gripper(self, values: Sequence[float]) -> None:
        self.grip_pub.publish(Float64MultiArray(data=[float(v) for v in values]))

    def diag_values(self) -> dict[str, str]:
        if not self.diagnostics:
            return {}
        return {kv.key: kv.value for kv in self.diagnostics[-1].status[0].values}

    def wait_for_subscribers(self, timeout: float = 30.0, settle: float = 0.5) -> bool:
        """Wait until the driver subscribes to both command topics.

        Our side sees the match before the driver's side does; a message sent in between is
        lost (volatile durability), so wait ``settle`` seconds more.
        """
        matched = self.spin_until(lambda: self.traj_pub.get_subscription_count() > 0
                                  and self.grip_pub.get_subscription_count() > 0, timeout)
        if matched:
            self.spin_until(lambda: False, settle)
        return matched

    def destroy(self) -> None:
        self.node.destroy_node()


TRANSITION_CONFIGURE = Transition.TRANSITION_CONFIGURE
TRANSITION_ACTIVATE = Transition.TRANSITION_ACTIVATE
TRANSITION_DEACTIVATE = Transition.TRANSITION_DEACTIVATE
TRANSITION_CLEANUP = Transition.TRANSITION_CLEANUP
