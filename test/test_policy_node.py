"""The policy node on the real ROS graph: node in its own process, this test plays the robot.

The test publishes /joint_states (shuffled order, extra joints) and the object pose at 25 Hz and
checks what the node does with good, bad, stale and missing inputs, bad weights, goals outside
the workspace, e-stop and cancel. Every command it receives is checked against the URDF's
position and velocity limits and the joint_trajectory_controller rules.
"""
from __future__ import annotations

from pathlib import Path
import time

from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from pick_place_rl.core.checkpoint import save_checkpoint
from pick_place_rl.core.ddpg import DDPGAgent, DDPGParams
from pick_place_rl.core.policy import KIND
from pick_place_rl.nodes import policy_client as pc
from pick_place_rl.nodes.policy_msgs import seconds
from pick_place_rl.robot.cartesian_control import urdf_velocity_limits
from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.sim import fetch_model

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[1]
ARM = fetch_model.ARM_JOINTS
FINGERS = fetch_model.FINGER_JOINTS
Q0 = np.array([0.01, -0.8256, -0.0036, 1.4439, 0.0031, 0.9532, 0.0055])
OBJECT = (1.25, 0.8, 0.425)
GOAL = (1.30, 0.70, 0.60)
PERIOD = 0.04


def actor_checkpoint(path: Path, obs_dim: int = 25, seed: int = 0) -> Path:
    """A small DDPG+HER actor in the trainer's checkpoint format (random weights)."""
    import torch
    torch.manual_seed(seed)
    agent = DDPGAgent(obs_dim, 3, 4, DDPGParams(hidden=32, layers=2))
    agent.obs_norm.update(np.random.default_rng(seed).normal(size=(64, obs_dim)))
    s = agent.state_dict()
    save_checkpoint(path, KIND, {'max_action': 1.0}, agent.spec,
                    {'actor': s['actor'], 'obs_norm': s['obs_norm'],
                     'goal_norm': s['goal_norm']})
    return path


class FakeRobot:
    """Publishes a static Fetch on /joint_states and the object pose; ``mode`` picks what."""

    def __init__(self, client: pc.PolicyClient) -> None:
        node = client.node
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.js_pub = node.create_publisher(JointState, '/joint_states', qos)
        self.obj_pub = node.create_publisher(PoseStamped, '/pick_place/object_pose', qos)
        self.node = node
        self.mode = 'good'
        self.sent_bad = 0
        node.create_timer(PERIOD, self._tick)

    def _tick(self) -> None:
        if self.mode == 'off':
            return
        stamp = self.node.get_clock().now().to_msg()
        names = ['robot0:head_pan_joint', *FINGERS[::-1], *ARM[::-1]]
        q = [0.0, 0.02, 0.02, *Q0[::-1]]
        js = JointState(name=names, position=q, velocity=[0.0] * len(q))
        js.header.stamp = stamp
        if self.mode == 'bad':
            # Alternate NaN and wrong-size messages: each must be rejected.
            if self.sent_bad % 2:
                js.position = q[:-1]
            else:
                js.position = [*q[:-1], float('nan')]
            self.sent_bad += 1
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, 'world'
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = OBJECT
        pose.pose.orientation.w = 1.0
        self.js_pub.publish(js)
        if self.mode == 'good':
            self.obj_pub.publish(pose)


@pytest.fixture()
def client():
    rclpy.init()
    c = pc.PolicyClient()
    yield c
    c.destroy()
    rclpy.shutdown()


def _check_commands(trajectories: list, kin: ArmKinematics, vmax: np.ndarray) -> None:
    """Every command: controller rules, finite, within position and velocity limits."""
    prev = Q0
    for _, msg in trajectories:
        assert tuple(msg.joint_names) == ARM
        assert len(msg.points) == 1 and seconds(msg.header.stamp) == 0.0
        point = msg.points[0]
        assert seconds(point.time_from_start) == pytest.approx(PERIOD)
        q = np.array(point.positions)
        assert q.shape == (7,) and np.all(np.isfinite(q))
        assert np.all(q >= kin.lower - 1e-9) and np.all(q <= kin.upper + 1e-9)
        assert np.all(np.abs(q - prev) <= vmax * PERIOD * (1 + 1e-6) + 1e-9), (q - prev)
        prev = q


def test_policy_node_safety_on_the_graph(client: pc.PolicyClient, tmp_path: Path) -> None:
    good = actor_checkpoint(tmp_path / 'actor.pt')
    small = actor_checkpoint(tmp_path / 'reach.pt', obs_dim=10)
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(good.read_bytes()[:300])
    proc = pc.start_policy_node(['weights:=' + str(tmp_path / 'missing.pt'),
                                 'diagnostics_period:=0.2', 'max_input_age:=0.25'],
                                params_file=str(ROOT / 'config' / 'fetch_policy.yaml'))
    kin = ArmKinematics(ROOT / 'urdf' / 'fetch.urdf', ARM, fetch_model.GRIP_SITE)
    vmax = urdf_velocity_limits(kin)

    def body() -> None:
        assert client.wait_ready(120), 'policy node did not come up'
        # 1. Missing weights: inactive with the reason; goals refused.
        st = client.wait_status(lambda s: s['phase'] == 'inactive', 10, since=0)
        assert st and 'not found' in st['reason'], client.statuses
        client.send_goal(GOAL)
        st = client.wait_status(lambda s: s['result'] == 'rejected', 10)
        assert st and 'no policy' in st['reason'], st
        # 2. Corrupt, then mismatched weights: reload refuses, node stays inactive.
        for path, why in ((corrupt, 'corrupt'), (small, 'obs_dim is 10')):
            client.set_param('weights', str(path))
            mark = len(client.statuses)
            res = client.trigger('reload')
            assert not res.success and why in res.message, res.message
            assert client.wait_status(lambda s: s['phase'] == 'inactive', 5, since=mark)
        # ... and good weights work without a restart.
        client.set_param('weights', str(good))
        mark = len(client.statuses)
        res = client.trigger('reload')
        assert res.success, res.message
        assert client.wait_status(lambda s: s['phase'] == 'idle', 5, since=mark)
        # 3. Goals outside the workspace / in another frame: refused with the reason.
        client.send_goal((1.3, 0.7, 2.0))
        st = client.wait_status(lambda s: s['result'] == 'rejected', 5)
        assert st and 'outside the workspace' in st['reason'], st
        client.send_goal(GOAL, frame='camera')
        st = client.wait_status(lambda s: s['result'] == 'rejected', 5)
        assert st and "frame 'camera'" in st['reason'], st

        # 4. Fresh inputs + a goal: commands at the control rate, all within limits.
        robot = FakeRobot(client)
        client.spin_for(0.3)
        client.send_goal(GOAL)
        assert client.wait_status(lambda s: s['phase'] == 'running', 5)
        assert client.spin_until(lambda: len(client.trajectories) >= 10, 10)
        assert len(client.grippers) >= 9

        # 5. Only malformed joint states (and no object pose): rejected, then stale -> hold.
        robot.mode = 'bad'
        st = client.wait_status(lambda s: s['phase'] == 'holding', 5)
        assert st and 'stale' in st['reason'], st
        client.spin_for(PERIOD)  # a command already in flight when the status was sent
        n_hold = len(client.trajectories)
        client.spin_for(0.5)
        assert len(client.trajectories) == n_hold, 'commanded while holding'
        assert client.spin_until(
            lambda: int(client.diag_values().get('rejected_joint_states', 0)) >= 4, 5), \
            client.diag_values()
        assert 'joint_states rejected' in client.diag_values()['last_rejection']
        # 6. Fresh data again: the episode resumes.
        robot.mode = 'good'
        assert client.wait_status(lambda s: s['phase'] == 'running', 5)
        assert client.spin_until(lambda: len(client.trajectories) >= n_hold + 5, 5)

        # 7. E-stop: latched, and no command later than one control period after the node
        # reports it (measured from the report: on a loaded host the e-stop message itself
        # may take longer than a period to be delivered and served).
        t_sent = time.monotonic()
        client.estop(True)
        assert client.spin_until(lambda: client.status().get('phase') == 'estopped', 5), \
            client.status()
        t_latched = time.monotonic()
        client.spin_for(0.5)
        late = [t for t, _ in client.trajectories if t > t_latched + PERIOD]
        assert not late, f'{len(late)} commands after the e-stop'
        print(f'e-stop: reported {1000 * (t_latched - t_sent):.1f} ms after it was sent')
        client.send_goal(GOAL)
        st = client.wait_status(lambda s: s['result'] == 'rejected', 5)
        assert st and 'e-stop' in st['reason']
        res = client.trigger('reset_estop')
        assert not res.success and 'still active' in res.message
        client.estop(False)
        client.spin_for(0.2)
        mark = len(client.statuses)
        assert client.trigger('reset_estop').success
        assert client.wait_status(lambda s: s['phase'] == 'idle', 5, since=mark)

        # 8. A new goal preempts the episode under way; cancel ends it and commands stop.
        client.send_goal(GOAL)
        first = client.wait_status(lambda s: s['phase'] == 'running', 5)
        assert first
        client.spin_for(0.3)
        client.send_goal((1.35, 0.80, 0.50))
        st = client.wait_status(lambda s: s['result'] == 'preempted', 5)
        assert st and st['goal_id'] == first['goal_id'], st
        assert client.wait_status(lambda s: s['phase'] == 'running'
                                  and s['goal_id'] == first['goal_id'] + 1, 5)
        mark = len(client.statuses)
        res = client.trigger('cancel')
        assert res.success
        st = client.wait_status(lambda s: s['result'] == 'cancelled', 5, since=mark)
        assert st
        n_cancel = len(client.trajectories)
        client.spin_for(0.3)
        assert len(client.trajectories) <= n_cancel + 1
        assert not client.trigger('cancel').success

        _check_commands(client.trajectories[:n_hold], kin, vmax)
        for _, g in client.grippers:
            assert len(g.data) == 2 and all(0.0 <= v <= 0.2 for v in g.data)
        diag = client.diag_values()
        assert int(diag['commands_published']) == len(client.trajectories)
        assert float(diag['inference_ms_p99']) > 0.0

    try:
        body()
    except BaseException:
        print(pc.stop(proc)[-5000:])
        raise
    log = pc.stop(proc)
    assert 'Traceback' not in log, log[-5000:]
