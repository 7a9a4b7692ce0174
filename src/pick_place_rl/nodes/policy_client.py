"""Python client of a policy node in another process (real rclpy over Fast DDS).

Used by the policy node tests and ``bench/bench_policy.py``: starts ``python -m
pick_place_rl.nodes.policy_node`` as a subprocess, sends goals and e-stops, calls its services,
and records what it publishes (commands with their arrival times, status, diagnostics).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
import json
import subprocess
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
import numpy as np
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from pick_place_rl.nodes.graph_client import GraphClient
from pick_place_rl.nodes.node_process import start_node, stop_node

NODE = '/policy_node'


def start_policy_node(params: Sequence[str] = (), params_file: str | None = None,
                      prefix: Sequence[str] = ()) -> subprocess.Popen:
    """The policy node as a separate process; its log goes to a file read by :func:`stop`.

    ``prefix`` goes before the interpreter (e.g. ``('chrt', '-f', '50')`` for a real-time
    scheduling class, as a robot's control computer would run it).
    """
    args: list[str] = []
    if params_file:
        args += ['--params-file', params_file]
    for item in params:
        args += ['-p', item]
    return start_node('pick_place_rl.nodes.policy_node', args, prefix=prefix)


#: Stop a node process (SIGINT, then kill) and return its log.
stop = stop_node


class PolicyClient(GraphClient):
    """Publishers, recorders and service calls around one policy node."""

    def __init__(self, node: Node | None = None, world_frame: str = 'world') -> None:
        self.node = node or rclpy.create_node('policy_client')
        self.world_frame = world_frame
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        #: (arrival time.monotonic(), message)
        self.trajectories: list[tuple[float, JointTrajectory]] = []
        self.grippers: list[tuple[float, Float64MultiArray]] = []
        self.statuses: list[dict] = []
        self.diagnostics: list[DiagnosticArray] = []
        n = self.node
        n.create_subscription(JointTrajectory, '/arm_controller/joint_trajectory',
                              lambda m: self.trajectories.append((time.monotonic(), m)),
                              reliable)
        n.create_subscription(Float64MultiArray, '/gripper_controller/commands',
                              lambda m: self.grippers.append((time.monotonic(), m)), reliable)
        n.create_subscription(String, '/pick_place/status',
                              lambda m: self.statuses.append(json.loads(m.data)), latched)
        n.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, reliable)
        self.goal_pub = n.create_publisher(PoseStamped, '/pick_place/goal', reliable)
        self.estop_pub = n.create_publisher(Bool, '/pick_place/estop', reliable)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        if any(s.name.startswith('policy_node') for s in msg.status):
            self.diagnostics.append(msg)

    def call(self, name: str, srv_type: Any = Trigger, request: Any = None,
             timeout: float = 30.0) -> Any:
        return self.call_service(srv_type, name, request, timeout)

    def trigger(self, service: str) -> Trigger.Response:
        return self.call(f'{NODE}/{service}')

    def set_param(self, name: str, value: Any) -> None:
        pv = ParameterValue()
        if isinstance(value, str):
            pv.type, pv.string_value = ParameterType.PARAMETER_STRING, value
        elif isinstance(value, bool):
            pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
        else:
            pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, float(value)
        req = SetParameters.Request(parameters=[Parameter(name=name, value=pv)])
        result = self.call(f'{NODE}/set_parameters', SetParameters, req)
        if not all(r.successful for r in result.results):
            raise RuntimeError(f'setting {name} failed: {result.results}')

    def send_goal(self, xyz: Sequence[float], frame: str | None = None) -> None:
        msg = PoseStamped()
        msg.header.frame_id = self.world_frame if frame is None else frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, xyz)
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)

    def estop(self, active: bool) -> None:
        self.estop_pub.publish(Bool(data=active))

    def status(self) -> dict:
        return self.statuses[-1] if self.statuses else {}

    def wait_status(self, predicate: Callable[[dict], bool], timeout: float,
                    since: int | None = None) -> dict | None:
        """The first status satisfying ``predicate`` among those received from index
        ``since`` on (default: only statuses arriving after this call)."""
        start = len(self.statuses) if since is None else since
        found: list[dict] = []

        def check() -> bool:
            for s in self.statuses[start:]:
                if predicate(s):
                    found.append(s)
                    return True
            return False
        self.spin_until(check, timeout)
        return found[0] if found else None

    def diag_values(self) -> dict[str, str]:
        if not self.diagnostics:
            return {}
        status = [s for s in self.diagnostics[-1].status if s.name.startswith('policy_node')]
        return {kv.key: kv.value for kv in status[0].values}

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """The node's services answer and it has matched the goal and e-stop publishers."""
        return self.spin_until(lambda: self.goal_pub.get_subscription_count() > 0
                               and self.estop_pub.get_subscription_count() > 0
                               and bool(self.statuses), timeout)

    def destroy(self) -> None:
        self.node.destroy_node()


def wait_for_driver(node: Node, timeout: float = 60.0) -> bool:
    """A sim driver's reset service answers (in lock-step it publishes no state until then)."""
    client = node.create_client(Trigger, '/sim_driver/reset')
    try:
        return bool(client.wait_for_service(timeout_sec=timeout))
    finally:
        node.destroy_client(client)


TERMINAL = ('success', 'failure', 'cancelled', 'preempted', 'estop')
#: How an episode of ``run_episodes`` can end (a retry preempts the stuck attempt: not an end).
_ENDS = ('success', 'failure', 'cancelled', 'estop', 'rejected')


def _reset_and_wait(driver: Any, seed: int) -> dict:
    """Reset the driver to ``seed`` and wait until the reset state is on the graph."""
    driver.set_params(reset_seed=int(seed))
    n_poses = len(driver.object_poses)
    info = driver.reset()
    want = np.asarray(info['object_position'])

    def reset_seen() -> bool:
        for msg in driver.object_poses[n_poses:]:
            p = msg.pose.position
            if np.allclose([p.x, p.y, p.z], want, atol=1e-9):
                return True
        return False
    if not driver.spin_until(reset_seen, 10.0):
        raise TimeoutError(f'seed {seed}: reset state never arrived')
    return info


def run_episodes(driver: Any, policy: PolicyClient, seeds: Sequence[int],
                 episode_timeout: float = 60.0, attempts: int = 3,
                 place_goal: Sequence[float] | None = None,
                 inputs: Sequence[str] = ('/joint_states', '/pick_place/object_pose')
                 ) -> list[dict]:
    """Seeded pick-place episodes through ROS: driver reset per seed, goal over the topic.

    ``driver`` is a ``sim_client.DriverClient`` sharing ``policy``'s rclpy node. Per seed it
    sets the driver's ``reset_seed``, resets (the gym's initial state for that seed), waits
    until the reset state is on the graph, publishes the seed's goal on /pick_place/goal and
    waits for the node's terminal status. In lock-step the driver publishes the reset state
    once; if the policy node's subscription had not matched yet it holds at step 0 (inputs
    stale), and the seed is reset and sent again (``attempts`` times in all). ``place_goal``
    replaces the seed's goal (the KUKA grasp node's place goal); ``inputs`` are the driver
    topics the policy node must subscribe to first. Returns per seed: ``seed``, ``success``,
    ``distance``, ``steps``, ``result``, ``wall_s``, ``attempts`` and the final ``status``.
    """
    node = policy.node
    if not policy.spin_until(lambda: all(node.count_subscribers(t) >= 2 for t in inputs),
                             30.0):
        raise TimeoutError('the policy node does not subscribe to the driver state')
    policy.spin_for(0.5)
    out = []
    for seed in seeds:
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                # End the stuck episode first, or the next reset state would resume it.
                policy.trigger('cancel')
            info = _reset_and_wait(driver, seed)
            policy.spin_for(0.05)  # the policy node receives the same samples: let them land
            goal = [float(v) for v in (info['goal'] if place_goal is None else place_goal)]
            mark = len(policy.statuses)
            # Goal ids only grow: this attempt's episode is the first with a larger one.
            prev_id = max((int(s.get('goal_id') or 0) for s in policy.statuses), default=0)
            t0 = time.monotonic()
            policy.send_goal(goal)
            stuck_since: list[float] = []

            def ours(s: dict, goal: list[float] = goal, prev_id: int = prev_id) -> bool:
                return (s['result'] in _ENDS and int(s['goal_id']) > prev_id
                        and np.allclose(s['goal'], goal))

            def finished(mark: int = mark, stuck_since: list[float] = stuck_since,
                         ours: Callable[[dict], bool] = ours) -> bool:
                for s in policy.statuses[mark:]:
                    if ours(s):
                        return True
                last = policy.status()
                if last.get('phase') == 'holding' and last.get('step') == 0:
                    stuck_since.append(time.monotonic())
                    return time.monotonic() - stuck_since[0] > 1.0
                return False
            policy.spin_until(finished, episode_timeout)
            done = [s for s in policy.statuses[mark:] if ours(s)]
            if done:
                st = done[0]
                out.append({'seed': int(seed), 'success': st['result'] == 'success',
                            'distance': st['distance'], 'steps': st['step'],
                            'result': st['result'], 'wall_s': time.monotonic() - t0,
                            'attempts': attempt, 'status': st})
                break
            if not stuck_since:
                raise TimeoutError(f'seed {seed}: no result within {episode_timeout} s; last '
                                   f'status {policy.status()}')
        else:
            raise TimeoutError(f'seed {seed}: the policy node never got the reset state in '
                               f'{attempts} attempts; last status {policy.status()}')
    return out
