"""The policy node's plain classes: safety checks, Cartesian control, the episode runner.

The runner is exercised on the real joint-controlled MuJoCo scene (the sim driver's backend and
trajectory controller, in-process) and compared with the training env on the same seeds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pick_place_rl.robot.cartesian_control import urdf_velocity_limits
from pick_place_rl.robot.fetch_observation import ObjectState
from pick_place_rl.robot.policy_runner import Phase, RobotSample
from pick_place_rl.robot.safety import (
    check_arm_command,
    check_gripper_command,
    EStopLatch,
    InputRejected,
    joints_by_name,
    stale_inputs,
    Workspace,
)
from pick_place_rl.sim import fetch_model
from pick_place_rl.train.policy_eval import (
    fetch_runner,
    gym_success,
    joint_sim_success,
    scripted_pick_place,
)

URDF = Path(__file__).resolve().parents[1] / 'urdf' / 'fetch.urdf'
ARM = fetch_model.ARM_JOINTS
Q0 = np.array([0.01, -0.8256, -0.0036, 1.4439, 0.0031, 0.9532, 0.0055])


def test_joints_are_read_by_name_and_bad_messages_rejected() -> None:
    names = ['b', 'extra', 'a']
    q, qd = joints_by_name(names, [2.0, 9.0, 1.0], [0.2, 0.9, 0.1], ['a', 'b'])
    np.testing.assert_array_equal(q, [1.0, 2.0])
    np.testing.assert_array_equal(qd, [0.1, 0.2])
    bad = [
        ((['a', 'a'], [1, 2], [0, 0]), 'duplicate'),
        ((['a', 'b'], [1.0], [0, 0]), '1 positions'),
        ((['a', 'b'], [1, 2], []), '0 velocities'),
        ((['a', 'c'], [1, 2], [0, 0]), "lacks joints \\['b'\\]"),
        ((['a', 'b'], [np.nan, 2], [0, 0]), "NaN/inf for \\['a'\\]"),
        ((['a', 'b'], [1, 2], [0, np.inf]), "NaN/inf for \\['b'\\]"),
    ]
    for args, match in bad:
        with pytest.raises(InputRejected, match=match):
            joints_by_name(*args, ['a', 'b'])
    # A NaN on a joint the policy does not use is not its business.
    joints_by_name(['a', 'b', 'head'], [1, 2, np.nan], [0, 0, 0], ['a', 'b'])


def test_workspace_staleness_estop() -> None:
    ws = Workspace((1.0, 0.4, 0.4), (1.6, 1.1, 0.9))
    assert ws.check(np.array([1.3, 0.7, 0.5])) is None
    assert 'z=1.500' in ws.check(np.array([1.3, 0.7, 1.5]))
    assert 'finite' in ws.check(np.array([np.nan, 0.7, 0.5]))
    with pytest.raises(ValueError):
        Workspace((1.0, 0.4, 0.4), (0.5, 1.1, 0.9))
    assert stale_inputs(10.0, {'a': 9.9, 'b': 9.0, 'c': None, 'd': 12.0}, 0.25) == \
        ['b', 'c', 'd']
    latch = EStopLatch()
    assert latch.update(True) and latch.tripped
    assert not latch.update(True) and latch.trips == 1
    assert latch.reset() == 'e-stop input is still active' and latch.tripped
    latch.update(False)
    assert latch.tripped, 'a released button does not clear the latch by itself'
    assert latch.reset() is None and not latch.tripped


def test_command_checks() -> None:
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    vmax = np.array([1.0, 2.0])
    assert check_arm_command(np.array([0.5, 0.5]), lo, hi, np.array([0.48, 0.45]), vmax,
                             0.04) is None
    assert 'limits' in check_arm_command(np.array([1.5, 0.0]), lo, hi, np.zeros(2), vmax, 0.04)
    assert 'velocity' in check_arm_command(np.array([0.1, 0.0]), lo, hi, np.zeros(2), vmax,
                                           0.04)
    assert 'finite' in check_arm_command(np.array([np.nan, 0.0]), lo, hi, np.zeros(2), vmax,
                                         0.04)
    assert check_gripper_command(np.array([0.1, 0.2]), np.zeros(2), np.full(2, 0.2)) is None
    assert check_gripper_command(np.array([0.1, 0.3]), np.zeros(2), np.full(2, 0.2))


def test_cartesian_controller_moves_the_grip_within_limits() -> None:
    runner = fetch_runner(URDF, None)
    ctl = runner.controller
    kin = ctl.kin
    np.testing.assert_allclose(urdf_velocity_limits(kin)[0], 1.256)
    p0 = kin.fk(Q0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.uniform(-1, 1, 3)
        q = ctl.arm_target(Q0, Q0, a)
        assert check_arm_command(q, kin.lower, kin.upper, Q0, ctl.max_velocity, ctl.period) \
            is None
        moved = kin.fk(q) - p0
        # Velocity limits shorten the step, never turn it: it points where the actor asked.
        assert np.dot(moved, a) / (np.linalg.norm(moved) * np.linalg.norm(a)) > 0.95
    # Unlimited velocity: the full 5 cm step is reached by the IK.
    fast = fetch_runner(URDF, None)
    fast.controller.max_velocity = np.full(7, 1e3)
    q = fast.controller.arm_target(Q0, Q0, np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(kin.fk(q) - p0, [0.0, 0.05, 0.0], atol=1e-3)
    g = ctl.gripper_target(np.array([0.03, 0.01]), -1.0)
    np.testing.assert_array_equal(g, [0.0, 0.0])
    g = ctl.gripper_target(np.array([0.03, 0.01]), 0.05)
    np.testing.assert_allclose(g, [0.08, 0.06])


OBJ0 = np.array([1.3, 0.7, 0.425])


def _sample(q: np.ndarray = Q0, obj: np.ndarray = OBJ0) -> RobotSample:
    state = ObjectState(obj, np.eye(3), np.zeros(3), np.zeros(3))
    return RobotSample(0.0, q, np.zeros(7), np.zeros(2), np.zeros(2), state)


def test_runner_refuses_and_never_commands_unsafe_actions() -> None:
    runner = fetch_runner(URDF, None)
    assert runner.status.phase is Phase.INACTIVE
    refused = runner.start(np.array([1.3, 0.7, 0.5]), 1)
    assert refused.result == 'rejected' and 'no policy' in refused.reason
    runner.set_policy(lambda o, g: np.array([np.nan, 0.0, 0.0, 0.0]))
    assert runner.status.phase is Phase.IDLE
    assert 'outside' in runner.start(np.array([3.0, 0.7, 0.5]), 2).reason
    assert runner.start(np.array([1.3, 0.7, 0.5]), 3).phase is Phase.RUNNING
    assert runner.step(_sample()) is None and runner.rejected_commands == 1
    assert runner.status.phase is Phase.HOLDING and 'actor output' in runner.status.reason
    runner.set_policy(lambda o, g: np.array([0.3, 0.0, 0.0, 1.0]))
    assert runner.start(np.array([1.3, 0.7, 0.5]), 4).phase is Phase.RUNNING
    assert runner.step(_sample()) is not None
    runner.estop_input(True)
    assert runner.status.phase is Phase.ESTOPPED and runner.status.result == 'estop'
    assert runner.step(_sample()) is None
    assert 'e-stop' in runner.start(np.array([1.3, 0.7, 0.5]), 5).reason
    assert runner.reset_estop() is not None
    runner.estop_input(False)
    assert runner.reset_estop() is None and runner.status.phase is Phase.IDLE
    assert runner.start(np.array([1.3, 0.7, 0.5]), 6).phase is Phase.RUNNING
    assert runner.cancel() and runner.status.result == 'cancelled'
    assert runner.step(_sample()) is None


def test_runner_episode_length_and_success_rule() -> None:
    runner = fetch_runner(URDF, lambda o, g: np.zeros(4))
    goal = np.array([1.3, 0.7, 0.45])
    runner.start(goal, 1)
    commands = 0
    while runner.step(_sample(obj=goal + [0.0, 0.0, 0.049])) is not None:
        commands += 1
    assert commands == runner.max_steps == 50
    assert runner.status.result == 'success' and runner.status.phase is Phase.DONE
    runner.start(goal, 2)
    while runner.step(_sample(obj=goal + [0.0, 0.051, 0.0])) is not None:
        pass
    assert runner.status.result == 'failure'


def test_scripted_policy_succeeds_through_joint_control_as_in_the_gym() -> None:
    """The Cartesian seam end to end: same seeds, same success in both worlds."""
    seeds = range(8)
    in_gym = gym_success(scripted_pick_place, seeds)
    through_joints = joint_sim_success(scripted_pick_place, seeds, URDF)
    assert sum(in_gym) >= 7, in_gym
    assert sum(through_joints) >= 7, through_joints


def test_messages_pass_the_controller_rules() -> None:
    """What the node publishes is accepted by the joint_trajectory_controller logic as is."""
    from builtin_interfaces.msg import Time

    from pick_place_rl.nodes import policy_msgs as pm
    from pick_place_rl.nodes.sim_driver import trajectory_command
    from pick_place_rl.robot.trajectory import JointTrajectoryController
    runner = fetch_runner(URDF, None)
    kin = runner.controller.kin
    msg = pm.trajectory(ARM, Q0, 0.04)
    ctl = JointTrajectoryController(ARM, kin.lower, kin.upper)
    times, positions, velocities, start = ctl.validate(trajectory_command(msg), now=3.0)
    np.testing.assert_allclose(positions[0], Q0)
    assert times.tolist() == [pytest.approx(0.04)] and velocities is None and start == 3.0
    assert pm.seconds(Time(sec=2, nanosec=500_000_000)) == 2.5
    arr = pm.markers([1.3, 0.7, 0.5], [1.2, 0.8, 0.42], [1.3, 0.75, 0.6], 'world', Time(), 0.05)
    assert [m.id for m in arr.markers] == [0, 1, 2]
    assert arr.markers[0].scale.x == pytest.approx(0.1)
