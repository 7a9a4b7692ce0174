"""The ROS side of ``pick-place-rl demo``: one node that resets the simulator per seed, sends the
goals, collects camera frames for the animation and (optionally) records the topics.

Kept in ``nodes/`` (the only layer that talks ROS); ``pick_place_rl.demo`` does the bring-up,
the printing and the pictures.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
import time
from typing import Any

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from pick_place_rl.nodes import policy_client as pc
from pick_place_rl.nodes import sim_client as sc
from pick_place_rl.nodes.recorder import TopicRecorder


class DemoFailed(RuntimeError):
    """The demo cannot go on (a node died, no answer in time): the message says why."""


def _ticking(predicate: Callable[[], bool], tick: Callable[[], None],
             period: float = 0.25) -> Callable[[], bool]:
    """``predicate`` that also runs ``tick`` every ``period`` s (it is polled on every spin)."""
    due = [0.0]

    def check() -> bool:
        if time.monotonic() >= due[0]:
            due[0] = time.monotonic() + period
            tick()
        return predicate()
    return check


class _Driver(sc.DriverClient):
    """The driver client whose waits also supervise the graph (a crash ends them at once)."""

    def __init__(self, tick: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tick = tick

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return super().spin_until(_ticking(predicate, self.tick), timeout)


class _Policy(pc.PolicyClient):
    """The policy client whose waits also supervise the graph."""

    def __init__(self, tick: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tick = tick

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return super().spin_until(_ticking(predicate, self.tick), timeout)


class DemoSession:
    """Context manager: rclpy up, the demo node, its clients; everything closed on exit.

    ``supervise`` runs a few times a second while waiting (it raises :class:`DemoFailed` when a
    node of the graph died), so a crash ends the demo at once rather than at a timeout.
    """

    def __init__(self, supervise: Callable[[], None], record: Path | None,
                 record_topics: Sequence[str], collect_frames: bool,
                 domain_id: int | None = None, max_frames: int = 2000) -> None:
        self.supervise = supervise
        self.record_path = record
        self.record_topics = tuple(record_topics)
        self.collect_frames = collect_frames
        self.domain_id = domain_id
        self.max_frames = max_frames
        #: (episode index, RGB array) of the camera while an episode runs
        self.frames: list[tuple[int, np.ndarray]] = []
        #: (path, topics, messages) once the recording is closed
        self.recorded: tuple[Path, int, int] | None = None
        self._episode: int | None = None
        self.recorder: TopicRecorder | None = None

    def __enter__(self) -> DemoSession:
        kwargs = {} if self.domain_id is None else {'domain_id': self.domain_id}
        # Ctrl-C stays a KeyboardInterrupt for the demo to handle (rclpy's own handler would
        # shut the context down under the waiting code instead).
        rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO, **kwargs)
        try:
            self.driver = _Driver(self._tick, 'pick_place_demo', topics=(
                '/joint_states', '/pick_place/object_pose', '/pick_place/sim_goal'))
            self.node = self.driver.node
            self.policy = _Policy(self._tick, node=self.node)
            if self.collect_frames:
                self.node.create_subscription(
                    Image, '/camera/image_raw', self._on_image,
                    QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
            if self.record_path is not None:
                self.recorder = TopicRecorder(self.node, self.record_path, self.record_topics)
        except BaseException:
            rclpy.try_shutdown()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.recorder is not None:
                # Messages already taken by the clients' callbacks may still wait for the
                # recorder's (the last status, say): serve those before closing the file.
                end = time.monotonic() + 0.5
                while time.monotonic() < end:
                    rclpy.spin_once(self.node, timeout_sec=0.05)
                self.recorder.close()
                self.recorded = (self.recorder.path, len(self.recorder.counts),
                                 sum(self.recorder.counts.values()))
            self.driver.destroy()
        finally:
            rclpy.try_shutdown()

    def _on_image(self, msg: Image) -> None:
        if self._episode is None or len(self.frames) >= self.max_frames:
            return
        if msg.encoding != 'rgb8':
            return
        rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        if msg.width < 160:
            # The KUKA's grasp camera is the net's 32x32: enlarge it (whole pixels) to see it.
            k = -(-160 // msg.width)
            rgb = rgb.repeat(k, axis=0).repeat(k, axis=1)
        self.frames.append((self._episode, rgb.copy()))

    def _tick(self) -> None:
        self.supervise()
        if self.recorder is not None:
            self.recorder.poll()

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return self.driver.spin_until(predicate, timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Driver publishing, policy node listening with weights loaded, recorder subscribed."""
        if not self.spin_until(lambda: bool(self.driver.joint_states), timeout):
            raise DemoFailed(f'the sim driver published no /joint_states in {timeout:g} s')
        if not self.spin_until(lambda: self._goal_matched() and bool(self.policy.statuses),
                               timeout):
            raise DemoFailed(f'the policy node did not come up in {timeout:g} s')
        # Our side has matched the policy node's goal reader; give its side (which drops
        # samples of a writer it has not matched yet) time to match ours too.
        self.spin_until(lambda: False, 1.0)
        status = self.policy.status()
        if status.get('phase') == 'inactive':
            raise DemoFailed(f'the policy node has no usable weights: {status.get("reason")}')
        if self.recorder is not None:
            wanted = set(self.record_topics)
            self.spin_until(lambda: set(self.recorder.counts) >= wanted, 5.0)

    def _goal_matched(self) -> bool:
        """The policy node's goal subscription is matched to our publisher (the recorder's,
        on this same node, counts too, so ask the graph who subscribes)."""
        subs = self.node.get_subscriptions_info_by_topic('/pick_place/goal')
        if not any(s.node_name == 'policy_node' for s in subs):
            return False
        return self.policy.goal_pub.get_subscription_count() >= len(subs)

    def episode(self, index: int, seed: int, timeout: float,
                place_goal: Sequence[float] | None = None) -> dict:
        """One seeded pick-place episode through ROS (``policy_client.run_episodes``).

        ``place_goal``: the KUKA grasp node's goal (where to put the object it picks); None =
        the seed's own goal (Fetch).
        """
        self._tick()
        self._episode = index
        inputs = ('/joint_states',) if place_goal is not None else \
            ('/joint_states', '/pick_place/object_pose')
        try:
            (result,) = pc.run_episodes(self.driver, self.policy, [seed], timeout,
                                        place_goal=place_goal, inputs=inputs)
        except (TimeoutError, AssertionError) as exc:
            self._tick()
            raise DemoFailed(f'goal {index + 1} (seed {seed}): {exc}') from exc
        finally:
            self._episode = None
        result['goal'] = list(self.policy.status().get('goal') or [])
        return result
