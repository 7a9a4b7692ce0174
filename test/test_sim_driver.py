"""The sim driver on the real ROS graph: driver in its own process, this test a second node.

Covers: lifecycle transitions, a trajectory followed to convergence on /joint_states, rejection
(with reason counted in /diagnostics) of rule-breaking commands while the robot holds, reset to
the gym's initial state for a seed, and lock-step determinism.
"""
from __future__ import annotations

import numpy as np
import pytest
import rclpy

from pick_place_rl.nodes import sim_client as sc
from pick_place_rl.sim import fetch_model, kuka_scene

pytestmark = pytest.mark.ros
ARM = fetch_model.ARM_JOINTS


@pytest.fixture()
def client():
    rclpy.init()
    c = sc.DriverClient()
    yield c
    c.destroy()
    rclpy.shutdown()


def _run(proc, client, body):
    """Run ``body`` and attach the driver's log to any failure."""
    try:
        body()
    except BaseException:
        log = sc.stop_driver(proc)
        print(log[-5000:])
        raise
    log = sc.stop_driver(proc)
    assert 'Traceback' not in log, log[-5000:]


def test_fetch_lifecycle_trajectory_bad_input_and_reset(client: sc.DriverClient) -> None:
    proc = sc.start_driver('fetch', ['clock_mode:=realtime', 'diagnostics_period:=0.2',
                                     'camera_rate:=10.0', 'cmd_timeout:=0.5'], autostart=False)

    def body() -> None:
        assert client.spin_until(lambda: _service_ready(client), 60), 'driver did not start'
        assert client.state() == 'unconfigured'
        # A bad parameter fails the transition, not the process.
        client.set_params(robot='bogus')
        assert not client.transition(sc.TRANSITION_CONFIGURE)
        assert client.state() == 'unconfigured'
        client.set_params(robot='fetch')
        assert client.transition(sc.TRANSITION_CONFIGURE)
        assert client.state() == 'inactive'
        assert client.transition(sc.TRANSITION_ACTIVATE)
        assert client.wait_for_subscribers()
        assert client.spin_until(lambda: len(client.joint_states) > 5 and client.images, 30)
        assert client.goals, 'no latched goal'
        img, info = client.images[-1], client.infos[-1]
        assert (img.width, img.height, img.encoding) == (320, 240, 'rgb8')
        assert client.depths[-1].encoding == '32FC1' and info.k[0] > 0
        assert client.spin_until(lambda: client.camera_poses, 5), 'no camera pose'

        q0 = client.arm(ARM)
        target = q0 + np.array([0.3, -0.2, 0.2, -0.3, 0.2, 0.3, -0.2])
        mid = 0.5 * (q0 + target)
        client.send_trajectory(list(reversed(ARM)), [mid[::-1], target[::-1]], [0.4, 0.8])
        assert client.spin_until(lambda: np.abs(client.arm(ARM) - target).max() < 5e-3, 15), (
            f'joint_states did not converge: error {np.abs(client.arm(ARM) - target).max()}')
        # Commands stop: after cmd_timeout the controller holds the measured position.
        assert client.spin_until(
            lambda: int(client.diag_values().get('command_timeouts', 0)) >= 1, 5)
        assert np.abs(client.arm(ARM) - target).max() < 5e-3

        # Rule-breaking commands: each rejected and counted; the arm stays where it is.
        before = int(client.diag_values().get('rejected_commands', 0))
        bad = [
            (ARM, [], []),                                  # no points
            (ARM[:6], [q0[:6]], [0.5]),                     # missing joint
            ((*ARM[:6], 'robot0:bogus'), [q0], [0.5]),      # unknown joint
            (ARM, [q0[:5]], [0.5]),                         # wrong size
            (ARM, [np.full(7, np.nan)], [0.5]),             # NaN
            (ARM, [q0, q0], [0.5, 0.5]),                    # times not increasing
            (ARM, [q0 + [9.0, 0, 0, 0, 0, 0, 0]], [0.5]),   # beyond joint limits
        ]
        for names, points, times in bad:
            client.send_trajectory(names, points, times)
        client.send_gripper([0.01])                         # wrong size
        client.send_gripper([np.inf, 0.0])                  # inf
        want = before + len(bad) + 2
        assert client.spin_until(
            lambda: int(client.diag_values().get('rejected_commands', 0)) >= want, 10), (
            client.diag_values())
        client.spin_until(lambda: False, 0.5)
        assert np.abs(client.arm(ARM) - target).max() < 5e-3, 'arm moved on a rejected command'
        # Topics are not ordered among each other: the last reason is either kind's.
        assert client.diag_values()['last_rejection'].startswith(('gripper', 'trajectory'))

        # Reset to the gym's initial state of seed 7.
        client.set_params(reset_seed=7)
        episode = client.reset()
        gym_obs = _gym_reset(7)
        np.testing.assert_allclose(episode['goal'], gym_obs['desired_goal'], atol=1e-9)
        np.testing.assert_allclose(episode['object_position'], gym_obs['observation'][3:6],
                                   atol=1e-9)
        assert client.spin_until(lambda: np.abs(client.arm(ARM) - q0).max() < 2e-3, 5)
        assert client.spin_until(lambda: np.allclose(
            [client.goals[-1].point.x, client.goals[-1].point.y, client.goals[-1].point.z],
            gym_obs['desired_goal']), 5)

        # A placement applies to one reset; the next one samples again.
        client.set_params(reset_seed=-1, reset_object_xy=[1.3, 0.7],
                          reset_goal=[1.25, 0.8, 0.6])
        placed = client.reset()
        np.testing.assert_allclose(placed['object_position'][:2], [1.3, 0.7])
        np.testing.assert_allclose(placed['goal'], [1.25, 0.8, 0.6])
        sampled = client.reset()
        assert np.linalg.norm(np.subtract(sampled['goal'], placed['goal'])) > 1e-3

        assert client.transition(sc.TRANSITION_DEACTIVATE)
        assert client.transition(sc.TRANSITION_CLEANUP)
        assert client.state() == 'unconfigured'

    _run(proc, client, body)


def test_fetch_lockstep_is_deterministic(client: sc.DriverClient) -> None:
    proc = sc.start_driver('fetch', ['clock_mode:=lockstep', 'camera_rate:=0.0'])

    def body() -> None:
        assert client.spin_until(lambda: _service_ready(client), 60), 'driver did not start'
        assert client.wait_for_subscribers()
        runs = []
        for _ in range(2):
            client.set_params(reset_seed=11)
            client.joint_states.clear()
            client.reset()  # publishes the initial state
            assert client.spin_until(lambda: client.joint_states, 5)
            q = client.arm(ARM)
            trace = []
            for k in range(6):
                n_before = len(client.joint_states)
                q = q + 0.02
                client.send_gripper([0.05 * (k % 2), 0.05 * (k % 2)])
                client.send_trajectory(ARM, [q], [0.04])
                assert client.spin_until(lambda n=n_before: len(client.joint_states) > n, 10)
                msg = client.joint_states[-1]
                trace.append((msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec,
                              list(msg.position)))
            runs.append(trace)
        steps = np.diff([t for t, _ in runs[0]])
        np.testing.assert_allclose(steps, 0.04, atol=1e-6)
        np.testing.assert_array_equal([p for _, p in runs[0]], [p for _, p in runs[1]])

    _run(proc, client, body)


def _service_ready(client: sc.DriverClient) -> bool:
    return any(name == '/sim_driver/get_state'
               for name, _ in client.node.get_service_names_and_types())


def _gym_reset(seed: int) -> dict:
    from pick_place_rl.sim.registry import make_env
    env = make_env('FetchPickAndPlace-v4')
    obs, _ = env.reset(seed=seed)
    env.close()
    return obs


@pytest.mark.parametrize('robot', ['fetch', 'kuka'])
def test_shipped_params_file_brings_the_driver_up(client: sc.DriverClient, robot: str) -> None:
    """config/<robot>_sim.yaml parses (joint lists included) and the driver runs with it."""
    from pathlib import Path
    params = Path(__file__).resolve().parents[1] / 'config' / f'{robot}_sim.yaml'
    proc = sc.start_driver(robot, ['camera_rate:=0.0'], params_file=params)

    def body() -> None:
        assert client.spin_until(lambda: len(client.joint_states) > 3, 60), 'no joint_states'
        names = set(client.joint_states[-1].name)
        arm = fetch_model.ARM_JOINTS if robot == 'fetch' else kuka_scene.ARM_JOINT_NAMES
        assert set(arm) <= names

    _run(proc, client, body)
