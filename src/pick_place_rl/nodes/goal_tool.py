"""``pick-place-rl goal X Y Z`` (or ``goal_tool X Y Z``): send one place goal, wait for its result.

Publishes a ``geometry_msgs/PoseStamped`` on ``/pick_place/goal`` once a policy node listens,
follows that goal's ``/pick_place/status`` (std_msgs/String JSON, see README "Policy node") and
prints the phases and the result. Ctrl-C while waiting cancels the goal (``~/cancel``).

Exit codes: 0 success; 1 the episode ended without success (failure, cancelled, preempted,
e-stop); 2 the goal was rejected (outside the workspace, no weights, ...); 3 no policy node on
the graph; 4 no result in time; 130 interrupted.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
import signal
import sys
import time

from geometry_msgs.msg import PoseStamped
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String
from std_srvs.srv import Trigger

TERMINAL = ('success', 'failure', 'cancelled', 'preempted', 'estop', 'rejected')
EXIT_CODES = {'success': 0, 'rejected': 2}
NO_NODE, TIMED_OUT, INTERRUPTED = 3, 4, 130


class GoalClient:
    """Goal publisher and status follower around an rclpy node (shared with the demo)."""

    def __init__(self, node: Node, goal_topic: str = '/pick_place/goal',
                 status_topic: str = '/pick_place/status', policy_node: str = '/policy_node'
                 ) -> None:
        self.node = node
        self.policy_node = policy_node
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        # as the policy node publishes it: the latest statuses reach late joiners
        latched = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.statuses: list[dict] = []
        self.goal_pub = node.create_publisher(PoseStamped, goal_topic, reliable)
        self.status_sub = node.create_subscription(String, status_topic, self._on_status,
                                                   latched)

    def _on_status(self, msg: String) -> None:
        try:
            self.statuses.append(json.loads(msg.data))
        except json.JSONDecodeError:
            self.node.get_logger().warning(f'unreadable status: {msg.data[:200]!r}')

    def spin_until(self, predicate: Callable[[], bool], timeout: float,
                   tick: Callable[[], None] | None = None) -> bool:
        """Spin until ``predicate()``; ``tick`` runs every turn (e.g. process supervision)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            rclpy.spin_once(self.node, timeout_sec=0.02)
            if tick is not None:
                tick()
        return predicate()

    def wait_for_policy(self, timeout: float, tick: Callable[[], None] | None = None) -> bool:
        """A policy node subscribes to goals and its (latched) status has arrived."""
        return self.spin_until(lambda: self.goal_pub.get_subscription_count() > 0
                               and bool(self.statuses), timeout, tick)

    def last_goal_id(self) -> int:
        return max((int(s.get('goal_id') or 0) for s in self.statuses), default=0)

    def send(self, xyz: Sequence[float], frame: str = 'world') -> tuple[int, int]:
        """Publish a goal; returns (status index, last goal id) marking what came before it."""
        # Collect the latched history first; meanwhile the policy node's reader, which drops
        # samples of writers it has not matched yet, gets time to match this one.
        self.spin_until(lambda: False, 0.5)
        mark = (len(self.statuses), self.last_goal_id())
        msg = PoseStamped()
        msg.header.frame_id = frame
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, xyz)
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)
        return mark

    def follow(self, mark: tuple[int, int], xyz: Sequence[float], timeout: float,
               on_status: Callable[[dict], None] | None = None,
               tick: Callable[[], None] | None = None) -> dict | None:
        """The terminal status of the goal sent at ``mark`` (None on timeout)."""
        index, last_id = mark
        seen = [index]
        found: list[dict] = []

        def ours(s: dict) -> bool:
            if int(s.get('goal_id') or 0) <= last_id:
                return False
            goal = s.get('goal') or []
            same = len(goal) == 3 and all(abs(a - b) < 1e-6 for a, b in zip(goal, xyz))
            return same or s.get('result') == 'rejected'

        def check() -> bool:
            for s in self.statuses[seen[0]:]:
                seen[0] += 1
                if not ours(s):
                    continue
                if on_status is not None:
                    on_status(s)
                if s.get('result') in TERMINAL:
                    found.append(s)
                    return True
            return False
        self.spin_until(check, timeout, tick)
        return found[0] if found else None

    def cancel(self, timeout: float = 3.0) -> bool:
        client = self.node.create_client(Trigger, f'{self.policy_node}/cancel')
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                return False
            future = client.call_async(Trigger.Request())
            self.spin_until(future.done, timeout)
            return future.done() and future.result().success
        finally:
            self.node.destroy_client(client)


def describe(status: dict) -> str:
    """One line for a status: phase or result, distance, step."""
    parts = [status.get('result') or status.get('phase', '?')]
    if status.get('distance') is not None:
        parts.append(f'distance {status["distance"]:.3f} m')
    if status.get('max_steps'):
        parts.append(f'step {status.get("step", 0)}/{status["max_steps"]}')
    if status.get('reason'):
        parts.append(status['reason'])
    return ', '.join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for axis in 'xyz':
        parser.add_argument(axis, type=float, help=f'place goal {axis}, m, in --frame')
    parser.add_argument('--frame', default='world', help='frame id of the goal (default world)')
    parser.add_argument('--timeout', type=float, default=120.0,
                        help='seconds to wait for the result')
    parser.add_argument('--wait-node', type=float, default=20.0,
                        help='seconds to wait for a policy node to listen')
    parser.add_argument('--json', action='store_true', help='print the final status as JSON')
    parser.add_argument('--quiet', action='store_true', help='print only the result')


def run(args: argparse.Namespace) -> int:
    # Ctrl-C stays a KeyboardInterrupt (even where SIGINT was ignored at start), so the goal
    # can still be cancelled over the graph.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('goal_tool', start_parameter_services=False)
    try:
        return _run(args, GoalClient(node))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        signal.signal(signal.SIGINT, previous)


def _run(args: argparse.Namespace, client: GoalClient) -> int:
    say = (lambda text: None) if args.quiet else (lambda text: print(text, flush=True))
    xyz = [args.x, args.y, args.z]
    try:
        if not client.wait_for_policy(args.wait_node):
            print('goal: no policy node listens on /pick_place/goal (start one, e.g. '
                  '`pick-place-rl launch sim_robot`)', file=sys.stderr)
            return NO_NODE
        t0 = time.monotonic()
        mark = client.send(xyz, args.frame)
        say(f'goal {xyz} ({args.frame}) sent')
        last = ['']

        def progress(s: dict) -> None:
            phase = s.get('result') or s.get('phase', '')
            if phase != last[0] and not s.get('result'):
                say(f'  goal {s.get("goal_id")}: {describe(s)}')
            last[0] = phase
        final = client.follow(mark, xyz, args.timeout, progress)
    except KeyboardInterrupt:
        cancelled = client.cancel()
        print('goal: interrupted' + (', goal cancelled' if cancelled else ''), file=sys.stderr)
        return INTERRUPTED
    if final is None:
        print(f'goal: no result within {args.timeout:g} s', file=sys.stderr)
        return TIMED_OUT
    elapsed = time.monotonic() - t0
    if args.json:
        print(json.dumps(dict(final, wall_s=round(elapsed, 3))))
    else:
        print(f'goal {final.get("goal_id")}: {describe(final)} ({elapsed:.1f} s)', flush=True)
    return EXIT_CODES.get(final['result'], 1)


def main(argv: list[str] | None = None) -> int:
    """``goal_tool`` console script (``ros2 run pick_place_rl goal_tool X Y Z``)."""
    from rclpy.utilities import remove_ros_args
    argv = remove_ros_args(sys.argv)[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog='goal_tool', description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
