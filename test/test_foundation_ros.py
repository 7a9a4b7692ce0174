"""Two separate processes exchange ``sensor_msgs/JointState`` over real Fast DDS.

The processes are this file run as a script (``talker`` / ``listener``), so nothing is mocked:
each one has its own rclpy context, its own DDS participant and discovers the other through the
isolated ``ROS_DOMAIN_ID`` that ``conftest.py`` sets. A listener on another domain must hear
nothing while the same-domain listener hears the talker, which shows that the isolation is
real.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

NAMES = ['joint_b', 'joint_a', 'joint_c']  # deliberately not sorted: map by name, not order
POSITIONS = [0.5, -1.25, 2.0]
#: joint_states under a per-run name: a listener on another domain must hear nothing even if a
#: concurrent session happens to use that domain for its own /joint_states.
TOPIC = f'/foundation_{os.getpid()}/joint_states'


def talker(seconds: float, topic: str) -> int:
    """Publish JointState at 20 Hz for ``seconds`` (like joint_state_broadcaster)."""
    import rclpy
    from sensor_msgs.msg import JointState

    rclpy.init()
    node = rclpy.create_node('foundation_talker')
    pub = node.create_publisher(JointState, topic, 10)
    count = 0

    def publish() -> None:
        nonlocal count
        msg = JointState()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.name = NAMES
        msg.position = POSITIONS
        msg.velocity = [0.0] * len(NAMES)
        pub.publish(msg)
        count += 1

    node.create_timer(0.05, publish)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    print(json.dumps({'published': count}), flush=True)
    return 0


def listener(seconds: float, topic: str) -> int:
    """Wait up to ``seconds`` for one JointState; print it as JSON keyed by joint name."""
    import rclpy
    from sensor_msgs.msg import JointState

    rclpy.init()
    node = rclpy.create_node('foundation_listener')
    got: dict = {}

    def on_msg(msg: JointState) -> None:
        if not got:
            got.update(dict(zip(msg.name, msg.position)))

    node.create_subscription(JointState, topic, on_msg, 10)
    end = time.monotonic() + seconds
    while not got and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    print(json.dumps({'received': got, 'domain': os.environ.get('ROS_DOMAIN_ID')}), flush=True)
    return 0 if got else 1


def _start(role: str, seconds: float, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, role, str(seconds), TOPIC],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, stdin=subprocess.DEVNULL)


@pytest.mark.ros
def test_joint_state_crosses_processes_and_stays_in_its_domain() -> None:
    """Same domain: the listener gets the message by name. Another domain: it hears nothing."""
    assert os.environ.get('RMW_IMPLEMENTATION') == 'rmw_fastrtps_cpp'
    domain = int(os.environ['ROS_DOMAIN_ID'])
    other_env = dict(os.environ, ROS_DOMAIN_ID=str((domain + 50) % 101 + 1))
    talk = _start('talker', 60.0)
    same = _start('listener', 30.0)
    other = _start('listener', 6.0, env=other_env)
    try:
        out, err = same.communicate(timeout=60)
        other_out, _ = other.communicate(timeout=60)
    finally:
        for proc in (talk, same, other):
            proc.kill()
            proc.wait()
    assert same.returncode == 0, f'listener heard nothing\n{err[-2000:]}'
    result = json.loads(out.strip().splitlines()[-1])
    assert result['domain'] == str(domain)
    assert result['received'] == dict(zip(NAMES, POSITIONS))
    assert other.returncode == 1, f'a listener on another domain heard us: {other_out}'
    assert json.loads(other_out.strip().splitlines()[-1])['received'] == {}


if __name__ == '__main__':
    roles = {'talker': talker, 'listener': listener}
    sys.exit(roles[sys.argv[1]](float(sys.argv[2]), sys.argv[3]))
