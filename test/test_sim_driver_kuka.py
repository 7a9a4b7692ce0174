"""The PyBullet KUKA sim driver on the real ROS graph (driver in its own process)."""
from __future__ import annotations

import numpy as np
import pytest
import rclpy
from std_srvs.srv import Trigger

from pick_place_rl.nodes import sim_client as sc
from pick_place_rl.sim import kuka_scene

pytestmark = pytest.mark.ros
ARM = kuka_scene.ARM_JOINT_NAMES
FINGERS = kuka_scene.FINGER_JOINT_NAMES


@pytest.fixture()
def client():
    rclpy.init()
    c = sc.DriverClient()
    yield c
    c.destroy()
    rclpy.shutdown()


def test_kuka_trajectory_gripper_bad_input_reset_and_spawn(client: sc.DriverClient) -> None:
    proc = sc.start_driver('kuka', ['clock_mode:=realtime', 'diagnostics_period:=0.2',
                                    'kuka_num_objects:=3', 'seed:=4'])
    try:
        assert client.wait_for_subscribers(60), 'driver did not come up'
        assert client.spin_until(lambda: client.joint_states and client.images, 30)
        q0 = client.arm(ARM)
        np.testing.assert_allclose(q0, kuka_scene.HOME_ARM, atol=2e-3)
        target = q0 + np.array([0.2, -0.15, 0.2, 0.2, -0.2, 0.25, 0.3])
        client.send_trajectory(ARM, [target], [0.6])
        client.send_gripper([-0.1, 0.1])
        assert client.spin_until(lambda: np.abs(client.arm(ARM) - target).max() < 5e-3, 15), (
            f'no convergence: {np.abs(client.arm(ARM) - target).max()} {client.diag_values()}')
        assert client.spin_until(
            lambda: np.abs(client.arm(FINGERS) - [-0.1, 0.1]).max() < 0.02, 5)

        client.send_trajectory(ARM[::-1], [q0[:3]], [0.3])           # wrong size
        client.send_trajectory(ARM, [np.full(7, np.inf)], [0.3])     # inf
        client.send_gripper([0.1, 0.1, 0.1])                         # wrong size
        assert client.spin_until(
            lambda: int(client.diag_values().get('rejected_commands', 0)) >= 3, 10)
        assert np.abs(client.arm(ARM) - target).max() < 5e-3

        client.set_params(reset_seed=9)
        first = client.reset()
        assert client.spin_until(
            lambda: np.abs(client.arm(ARM) - kuka_scene.HOME_ARM).max() < 2e-3, 5)
        again = client.reset()
        assert first['objects'] == again['objects'] and len(first['objects']) == 3
        assert all(i % 10 != 0 for i in first['objects']), 'test-split object in train set'
        spawn = client.call(Trigger, '/sim_driver/spawn_objects', Trigger.Request())
        assert spawn.success
    except BaseException:
        print(sc.stop_driver(proc)[-5000:])
        raise
    log = sc.stop_driver(proc)
    assert 'Traceback' not in log, log[-5000:]
