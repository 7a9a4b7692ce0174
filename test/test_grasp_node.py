"""The grasp policy node: camera -> grasp net -> joint commands, in-process and on the graph.

In-process: the node's image is the training env's image (same camera, same height channel,
same pixel-to-point mapping) and the reference loop picks and places. On the graph: the KUKA
sim driver (lock-step) and the grasp node as separate processes; missing and wrong weights,
goals outside the workspace, a camera frame of the wrong size, a whole pick-and-place with every
command checked against the URDF limits, and the e-stop.
"""
from __future__ import annotations

from pathlib import Path
import time

from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from pick_place_rl.core.grasp_policy import GraspPolicy
from pick_place_rl.nodes import policy_client as pc
from pick_place_rl.nodes import sim_client as sc
from pick_place_rl.nodes.node_process import start_node, stop_node
from pick_place_rl.nodes.policy_msgs import seconds
from pick_place_rl.robot.fetch_observation import quat_to_matrix
from pick_place_rl.robot.grasp_config import build_grasp_runner, GraspNodeConfig
from pick_place_rl.robot.grasp_runner import CameraFrame
from pick_place_rl.sim.joint_grasp_loop import judge, run_loop
from pick_place_rl.sim.joint_grasp_loop import PLACE_GOAL as PLACE
from pick_place_rl.sim.kuka_backend import KukaBackend
from pick_place_rl.sim.kuka_grasp_env import PARK_ARM

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / 'models' / 'dqn_pixel' / 'qnet.pt'
URDF = ROOT / 'urdf' / 'kuka_iiwa.urdf'
#: a test-split seed the shipped net picks and places (in-process and through ROS, lock-step)
GOOD_SEED = 0


def _frame(backend: KukaBackend, size: int) -> CameraFrame:
    img = backend.render(size, size)
    return CameraFrame(0.0, img.rgb, img.depth, img.fx, img.fy, img.cx, img.cy, img.position,
                       quat_to_matrix(img.orientation))


def test_node_image_and_grasp_points_match_the_training_env() -> None:
    """Driver camera -> CameraFrame -> net input equals KukaPixelGraspEnv's observation."""
    backend = KukaBackend(camera='overhead', object_set='test', num_objects=5)
    try:
        backend.reset(seed=3)
        backend.scene.reset_robot(PARK_ARM)
        runner = build_grasp_runner(GraspNodeConfig(), 0.04, URDF)
        image, points = runner.net_input(_frame(backend, 32))
        # The env's own computation on the same scene (KukaPixelGraspEnv._obs, grasp_point).
        scene, cam = backend.scene, backend.camera
        rgb, depth = scene.render(cam, 32, 32, depth=True)
        height = np.clip(cam.eye[2] - depth - scene.tray_floor_z, 0.0, 0.5)
        assert np.allclose(image[:3], rgb.transpose(2, 0, 1) / 255.0, atol=1e-6)
        assert np.allclose(image[3], height - (GraspNodeConfig().surface_z - scene.tray_floor_z),
                           atol=2e-3)
        rows, cols = np.nonzero(height > 0.01)
        assert rows.size > 10, 'no object in view'
        env_points = scene.unproject(cam, 32, 32, cols, rows, depth[rows, cols])
        assert np.max(np.abs(points[rows, cols] - env_points)) < 1e-4
        # Twice the resolution, averaged 2x2: the same image up to rendering detail.
        image2, _ = runner.net_input(_frame(backend, 64))
        assert np.median(np.abs(image2[3] - image[3])) < 5e-3
        # Any other size: refused with both sizes named.
        with pytest.raises(ValueError, match='not a multiple of the grasp net input 32x32'):
            runner.net_input(_frame(backend, 40))
    finally:
        backend.close()


def test_reference_loop_picks_and_places() -> None:
    from pick_place_rl.demo import PLACE_GOALS
    assert PLACE_GOALS['kuka'] == PLACE, 'the demo and the benchmark place at the same goal'
    net = GraspPolicy(WEIGHTS)
    (episode,) = run_loop(net, GraspNodeConfig(), str(URDF), [GOOD_SEED], PLACE)
    assert episode.result == 'success', episode
    assert episode.lifted and episode.placed, episode
    assert {'row', 'col', 'yaw', 'q', 'point'} <= set(episode.grasp)


def test_placed_needs_the_lifted_object_at_the_goal() -> None:
    goal = np.array(PLACE)
    near, far = goal[:2] + 0.02, goal[:2] + 0.5
    assert judge([0.3, -0.1], [near, far], goal) == (True, True)
    # An object that merely lay near the goal does not count as placed.
    assert judge([-0.1, 0.3], [near, far], goal) == (True, False)
    assert judge([-0.1, -0.1], [near, far], goal) == (False, False)


class BadCamera:
    """Publishes one complete camera frame set of the wrong size (20x20) with its own stamp."""

    def __init__(self, node) -> None:  # noqa: ANN001 - rclpy Node
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = [node.create_publisher(t, f'/camera/{n}', qos) for t, n in (
            (Image, 'image_raw'), (Image, 'depth/image_raw'), (CameraInfo, 'camera_info'),
            (PoseStamped, 'pose'))]

    def wait_matched(self, client: pc.PolicyClient, timeout: float) -> bool:
        """Discovery takes a moment: a frame published before the node's subscriptions have
        matched these new publishers is dropped, and the test would wait for nothing."""
        return client.spin_until(
            lambda: all(pub.get_subscription_count() > 0 for pub in self.pubs), timeout)

    def publish(self, stamp_sec: int) -> None:
        n = 20
        rgb = Image(height=n, width=n, encoding='rgb8', step=3 * n, data=bytes(3 * n * n))
        depth = Image(height=n, width=n, encoding='32FC1', step=4 * n,
                      data=np.full(n * n, 1.0, np.float32).tobytes())
        info = CameraInfo(height=n, width=n, k=[30.0, 0, 9.5, 0, 30.0, 9.5, 0, 0, 1])
        pose = PoseStamped()
        pose.header.frame_id = 'world'
        pose.pose.position.z = 1.2
        pose.pose.orientation.x = 1.0
        for msg in (rgb, depth, info, pose):
            msg.header.stamp.sec = stamp_sec
        for pub, msg in zip(self.pubs, (rgb, depth, info, pose)):
            pub.publish(msg)


def _check_commands(client: pc.PolicyClient, runner) -> None:  # noqa: ANN001 - GraspRunner
    """Every command: one point, finite, within the limits and the velocity limits."""
    prev = None
    for _, msg in client.trajectories:
        assert len(msg.points) == 1
        point = msg.points[0]
        period = seconds(point.time_from_start)
        q = np.array(point.positions)
        assert q.shape == (7,) and np.all(np.isfinite(q))
        assert np.all(q >= runner.kin.lower - 1e-9) and np.all(q <= runner.kin.upper + 1e-9)
        if prev is not None:
            assert np.all(np.abs(q - prev) <= runner.max_velocity * period * (1 + 1e-6)), \
                q - prev
        prev = q
    for _, msg in client.grippers:
        g = np.array(msg.data)
        assert g.shape == (2,) and np.all(np.isfinite(g))
        assert np.all(g >= runner.gripper_lower) and np.all(g <= runner.gripper_upper)


@pytest.mark.ros
def test_grasp_node_on_the_graph(tmp_path: Path) -> None:
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(WEIGHTS.read_bytes()[:500])
    driver = sc.start_driver('kuka', ['clock_mode:=lockstep', 'kuka_object_set:=test',
                                      f'seed:={GOOD_SEED}'],
                             params_file=ROOT / 'config' / 'kuka_sim.yaml')
    node = start_node('pick_place_rl.nodes.grasp_node', [
        '-r', '__node:=policy_node', '--params-file', str(ROOT / 'config' / 'kuka_policy.yaml'),
        '-p', f'weights:={tmp_path / "missing.pt"}', '-p', 'trigger:=joint_states',
        '-p', 'use_sim_time:=true', '-p', 'diagnostics_period:=0.2'])
    rclpy.init()
    dc = sc.DriverClient('grasp_node_test')
    client = pc.PolicyClient(node=dc.node)
    runner = build_grasp_runner(GraspNodeConfig(), 0.04, URDF)
    try:
        assert pc.wait_for_driver(dc.node, 120) and client.wait_ready(120), 'no graph'
        # 1. Missing, then corrupt weights: inactive with the reason; good ones load live.
        st = client.wait_status(lambda s: s['phase'] == 'inactive', 10, since=0)
        assert st and 'not found' in st['reason'], client.statuses
        client.set_param('weights', str(corrupt))
        res = client.trigger('reload')
        assert not res.success, res.message
        client.set_param('weights', str(WEIGHTS))
        mark = len(client.statuses)
        assert client.trigger('reload').success
        assert client.wait_status(lambda s: s['phase'] == 'idle', 5, since=mark)
        # 2. A place goal outside the workspace: refused with the reason.
        client.send_goal((0.6, 0.0, 1.5))
        st = client.wait_status(lambda s: s['result'] == 'rejected', 5)
        assert st and 'outside the workspace' in st['reason'], st
        # 3. A whole pick-and-place through ROS on the seed the driver started with.
        (episode,) = pc.run_episodes(dc, client, [GOOD_SEED], episode_timeout=120.0,
                                     place_goal=PLACE,
                                     inputs=('/joint_states', '/camera/image_raw'))
        assert episode['result'] == 'success', episode
        assert episode['status']['grasp'].get('held_at_goal') is True, episode
        assert len(client.trajectories) > 100
        _check_commands(client, runner)
        # 4. A camera frame of the wrong size during the next episode: rejected and counted,
        # the episode goes on. (Lock-step: the node's clock, and so its diagnostics timer,
        # only runs while an episode steps the simulation.)
        bad_camera = BadCamera(dc.node)
        assert bad_camera.wait_matched(client, 10), 'the node never subscribed to the camera'
        client.send_goal(PLACE)
        assert client.wait_status(lambda s: s.get('stage') == 'approach', 60), client.status()

        def rejected() -> bool:
            return int(client.diag_values().get('rejected_images', 0)) >= 1

        # Published again until counted: a reliable frame still races the node's own
        # 4-topic synchronizer when it lands between two good frames.
        for attempt in range(5):
            bad_camera.publish(stamp_sec=100_000 + attempt)
            if client.spin_until(rejected, 3):
                break
        assert rejected(), client.diag_values()
        assert 'not a multiple' in client.diag_values()['last_rejection']
        # 5. E-stop in the middle of that episode: nothing commanded afterwards.
        client.estop(True)
        assert client.spin_until(lambda: client.status().get('phase') == 'estopped', 5)
        t_latched = time.monotonic()
        client.spin_for(0.5)
        late = [t for t, _ in client.trajectories if t > t_latched + 0.04]
        assert not late, f'{len(late)} commands after the e-stop'
        client.estop(False)
        client.spin_for(0.2)
        mark = len(client.statuses)
        assert client.trigger('reset_estop').success
        assert client.wait_status(lambda s: s['phase'] == 'idle', 5, since=mark)
    finally:
        dc.destroy()
        rclpy.shutdown()
        logs = stop_node(driver) + stop_node(node)
    assert 'Traceback' not in logs, logs[-3000:]
