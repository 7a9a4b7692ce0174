"""joint_trajectory_controller rules and interpolation of the plain controller class."""
import math

import numpy as np
import pytest

from pick_place_rl.robot.trajectory import (
    JointTrajectoryController,
    TrajectoryCommand,
    TrajectoryRejected,
)

NAMES = ('a', 'b', 'c')


def make(cmd_timeout: float = 0.0) -> JointTrajectoryController:
    ctrl = JointTrajectoryController(NAMES, [-1.0, -2.0, -math.inf], [1.0, 2.0, math.inf],
                                     cmd_timeout=cmd_timeout)
    ctrl.reset(np.zeros(3))
    return ctrl


def cmd(names=NAMES, times=(1.0,), positions=((0.5, 1.0, 3.0),), velocities=(), stamp=0.0):
    return TrajectoryCommand(tuple(names), tuple(times), tuple(positions), tuple(velocities),
                             stamp)


@pytest.mark.parametrize('bad, reason', [
    (cmd(names=()), 'empty'),
    (cmd(names=('a', 'b', 'x')), 'unknown'),
    (cmd(names=('a', 'b')), 'missing'),
    (cmd(names=('a', 'a', 'b')), 'duplicate'),
    (cmd(times=(), positions=()), 'no points'),
    (cmd(positions=((0.5, 1.0),)), '2 positions'),
    (cmd(positions=((math.nan, 1.0, 0.0),)), 'NaN'),
    (cmd(positions=((math.inf, 1.0, 0.0),)), 'NaN or inf'),
    (cmd(positions=((1.5, 0.0, 0.0),)), 'limits'),
    (cmd(times=(1.0, 1.0), positions=((0, 0, 0), (0.1, 0, 0))), 'strictly increasing'),
    (cmd(times=(2.0, 1.0), positions=((0, 0, 0), (0.1, 0, 0))), 'strictly increasing'),
    (cmd(times=(-1.0,)), 'non-negative'),
    (cmd(velocities=((0.1, 0.0, 0.0),)), 'last point velocity'),
    (cmd(velocities=((0.0, 0.0),)), 'velocities'),
    (cmd(stamp=5.0), 'ends in the past'),
])
def test_rule_breaking_commands_are_rejected_and_hold(bad, reason) -> None:
    ctrl = make()
    with pytest.raises(TrajectoryRejected, match=reason):
        ctrl.accept(bad, now=10.0)
    assert not ctrl.active
    np.testing.assert_array_equal(ctrl.update(11.0, np.ones(3)), np.zeros(3))


def test_linear_interpolation_from_current_state_then_hold() -> None:
    ctrl = make()
    ctrl.accept(cmd(names=('c', 'a', 'b'), times=(1.0, 2.0),
                    positions=((3.0, 0.5, 1.0), (0.0, 1.0, 2.0))), now=10.0)
    np.testing.assert_allclose(ctrl.sample(10.5)[0], [0.25, 0.5, 1.5])
    np.testing.assert_allclose(ctrl.sample(11.5)[0], [0.75, 1.5, 1.5])
    np.testing.assert_allclose(ctrl.sample(99.0)[0], [1.0, 2.0, 0.0])


def test_cubic_interpolation_hits_points_with_given_velocities() -> None:
    ctrl = make()
    ctrl.accept(cmd(times=(1.0, 2.0), positions=((0.5, 0.5, 0.5), (1.0, 1.0, 1.0)),
                    velocities=((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))), now=0.0)
    pos, vel = ctrl.sample(1.0 + 1e-9)
    np.testing.assert_allclose(pos, 0.5, atol=1e-6)
    np.testing.assert_allclose(vel, 1.0, atol=1e-6)
    np.testing.assert_allclose(ctrl.sample(2.0)[0], 1.0)


def test_future_stamp_waits_and_new_command_replaces_old() -> None:
    ctrl = make()
    ctrl.accept(cmd(stamp=12.0), now=10.0)
    np.testing.assert_allclose(ctrl.sample(11.0)[0], 0.0)
    ctrl.accept(cmd(positions=((-0.5, -1.0, -3.0),)), now=11.0)
    np.testing.assert_allclose(ctrl.sample(12.0)[0], [-0.5, -1.0, -3.0])


def test_command_timeout_holds_measured_position() -> None:
    ctrl = make(cmd_timeout=0.5)
    ctrl.accept(cmd(), now=0.0)
    np.testing.assert_allclose(ctrl.update(1.2, np.full(3, 0.3)), [0.5, 1.0, 3.0])
    np.testing.assert_allclose(ctrl.update(1.6, np.full(3, 0.3)), 0.3)
    assert ctrl.timeouts == 1 and not ctrl.active
