"""One pick-and-place episode at a time: goal -> observation -> actor -> joint targets.

The robot-independent core of the policy node (``nodes/policy_node.py`` only converts
messages): it owns the episode state machine, builds the observation, runs the actor, maps its
action to joint targets and gates every command through ``safety``. The same class drives the
joint-controlled MuJoCo scene in-process in ``bench/bench_policy.py``, which separates the gap
caused by joint control from the gap caused by the ROS transport.

Episodes follow the training env: ``max_steps`` actions, success judged on the observation
after the last one (object within ``success_threshold`` of the goal), as the trainer evaluates.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import enum
import time

import numpy as np

from pick_place_rl.core.config import field as cfg_field
from pick_place_rl.robot.cartesian_control import CartesianController
from pick_place_rl.robot.fetch_observation import FetchObservationBuilder, ObjectState
from pick_place_rl.robot.safety import (
    check_arm_command,
    check_gripper_command,
    EStopLatch,
    Workspace,
)

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: When a policy node steps: on a timer at its control rate, or once per new joint state
#: (lock-step simulation).
TRIGGERS = ('timer', 'joint_states')


class Phase(enum.StrEnum):
    """``phase`` of /pick_place/status (see README)."""
    INACTIVE = 'inactive'    # no usable weights: goals are refused
    IDLE = 'idle'            # ready for a goal
    RUNNING = 'running'      # an episode is under way
    HOLDING = 'holding'      # an episode is paused: inputs stale or a command failed a check
    DONE = 'done'            # the last episode ended (see ``result``)
    ESTOPPED = 'estopped'    # e-stop latched: nothing is commanded until reset


@dataclass(frozen=True)
class PolicyInterfaceConfig:
    """Parameters every policy node shares (topics, rates of reporting, command limits).

    The pick-and-place node (``nodes/policy_node.PolicyNodeConfig``) and the grasp node
    (``robot/grasp_config.GraspNodeConfig``) extend it with their own.
    """
    velocity_limits: tuple[float, ...] = cfg_field((), 'arm joint velocity limits (rad/s); '
                                                       'empty = the URDF limits')
    velocity_scale: float = cfg_field(1.0, 'fraction of the velocity limits a command may use')
    joint_states_topic: str = cfg_field('/joint_states', 'JointState input')
    goal_topic: str = cfg_field('/pick_place/goal', 'place goal PoseStamped input')
    estop_topic: str = cfg_field('/pick_place/estop', 'std_msgs/Bool e-stop input (latched)')
    trajectory_topic: str = cfg_field('/arm_controller/joint_trajectory',
                                      'JointTrajectory output')
    gripper_topic: str = cfg_field('/gripper_controller/commands', 'Float64MultiArray output')
    status_topic: str = cfg_field('/pick_place/status', 'std_msgs/String JSON status output')
    markers_topic: str = cfg_field('/pick_place/markers', 'visualization MarkerArray output')
    diagnostics_period: float = cfg_field(1.0, '/diagnostics period, s (node clock)')
    torch_threads: int = cfg_field(1, 'torch intra-op threads for the network')


@dataclass(frozen=True)
class RobotSample:
    """One consistent reading of the robot and the object (world frame, SI units)."""
    stamp: float
    arm_q: np.ndarray
    arm_qd: np.ndarray
    finger_q: np.ndarray
    finger_qd: np.ndarray
    obj: ObjectState


@dataclass(frozen=True)
class StepCommand:
    """What to publish for one control step."""
    arm: np.ndarray          # joint targets, arm joint order
    gripper: np.ndarray      # finger targets, finger joint order
    action: np.ndarray       # the actor's raw action (4,)
    stamp: float             # stamp of the sample it answers


@dataclass
class Status:
    """The content of /pick_place/status (``to_dict`` is the JSON layout)."""
    phase: Phase = Phase.INACTIVE
    goal_id: int = 0
    goal: list[float] = field(default_factory=list)
    distance: float | None = None
    result: str = ''         # '' while running; success | failure | cancelled | preempted |
    #                          rejected | estop
    reason: str = ''
    step: int = 0
    max_steps: int = 0

    def to_dict(self) -> dict:
        return {'phase': self.phase.value, 'goal_id': self.goal_id, 'goal': self.goal,
                'distance': self.distance, 'result': self.result, 'reason': self.reason,
                'step': self.step, 'max_steps': self.max_steps}


class EpisodeRunner:
    """The episode life cycle shared by the policy node's runners (no ROS, no robot model).

    Goals are started, refused (with the reason), preempted, cancelled and e-stopped here, the
    same way for the pick-and-place actor (:class:`PickPlaceRunner`) and the grasp net
    (``robot.grasp_runner.GraspRunner``); subclasses add the control step.
    """

    def __init__(self, workspace: Workspace, max_steps: int, policy: object | None = None
                 ) -> None:
        self.workspace = workspace
        self.max_steps = int(max_steps)
        self.estop = EStopLatch()
        self.status = self._new_status()
        self.policy = None
        self.policy_reason = 'no weights loaded'
        self.inference_ms: list[float] = []
        self.rejected_commands = 0
        self.last_refusal: Status | None = None
        self.set_policy(policy, 'no weights loaded')

    def _new_status(self, *args: object) -> Status:
        return Status(*args) if args else Status(max_steps=self.max_steps)

    def _begin(self, goal: np.ndarray) -> None:
        """Episode state of a subclass, reset for a new goal."""

    # ---- weights -------------------------------------------------------------------------
    def set_policy(self, policy: object | None, reason: str = '') -> None:
        """Install (or remove, with the reason) the policy; an episode under way is aborted."""
        if self.status.phase in (Phase.RUNNING, Phase.HOLDING):
            self._finish('cancelled', 'weights changed')
        self.policy = policy
        self.policy_reason = reason
        if self.status.phase is Phase.ESTOPPED:
            return
        if policy is None:
            self.status.phase, self.status.reason = Phase.INACTIVE, reason
        elif self.status.phase is Phase.INACTIVE:
            self.status.phase, self.status.reason = Phase.IDLE, ''

    # ---- episode control ----------------------------------------------------------------
    def start(self, goal: np.ndarray, goal_id: int) -> Status:
        """Start an episode towards ``goal``, or refuse it with a reason in the status."""
        goal = np.asarray(goal, dtype=float)
        reason = None
        if self.estop.tripped:
            reason = 'e-stop latched; call reset_estop first'
        elif self.policy is None:
            reason = f'no policy: {self.policy_reason}'
        else:
            reason = self.workspace.check(goal)
        if reason is not None:
            # A refused goal leaves an episode under way untouched.
            self.last_refusal = self._new_status(self.status.phase, goal_id, goal.tolist(), None,
                                                 'rejected', reason, 0, self.max_steps)
            return self.last_refusal
        if self.status.phase in (Phase.RUNNING, Phase.HOLDING):
            self._finish('preempted', f'preempted by goal {goal_id}')
        self._begin(goal.copy())
        self.status = self._new_status(Phase.RUNNING, goal_id, goal.tolist(), None, '', '', 0,
                                       self.max_steps)
        return self.status

    def cancel(self, reason: str = 'cancelled on request') -> bool:
        """Abort the episode under way (hold position); False when there is none."""
        if self.status.phase not in (Phase.RUNNING, Phase.HOLDING):
            return False
        self._finish('cancelled', reason)
        return True

    def estop_input(self, active: bool) -> bool:
        """Feed the e-stop input; True when it tripped the latch just now."""
        if self.estop.update(active):
            self.trip_estop()
            return True
        return False

    def trip_estop(self) -> None:
        """E-stop: abort the episode and command nothing until :meth:`reset_estop`."""
        if self.status.phase in (Phase.RUNNING, Phase.HOLDING):
            self._finish('estop', 'e-stop')
        self.status.phase, self.status.reason = Phase.ESTOPPED, 'e-stop latched'

    def reset_estop(self) -> str | None:
        reason = self.estop.reset()
        if reason is None and self.status.phase is Phase.ESTOPPED:
            self.status.phase = Phase.IDLE if self.policy is not None else Phase.INACTIVE
            self.status.reason = '' if self.policy is not None else self.policy_reason
        return reason

    def hold(self, reason: str) -> None:
        """Pause the episode (inputs stale, or a check failed): nothing is commanded."""
        if self.status.phase in (Phase.RUNNING, Phase.HOLDING):
            self.status.phase, self.status.reason = Phase.HOLDING, reason

    def _finish(self, result: str, reason: str) -> None:
        self.status.phase = Phase.DONE
        self.status.result, self.status.reason = result, reason

    @property
    def active(self) -> bool:
        return self.status.phase in (Phase.RUNNING, Phase.HOLDING) and not self.estop.tripped

    def _reject(self, reason: str) -> None:
        self.rejected_commands += 1
        self.hold(reason)
        return None


class PickPlaceRunner(EpisodeRunner):
    """Episode state machine around a goal-conditioned actor."""

    def __init__(self, builder: FetchObservationBuilder, controller: CartesianController,
                 workspace: Workspace, max_steps: int = 50, success_threshold: float = 0.05,
                 policy: Policy | None = None) -> None:
        self.builder = builder
        self.controller = controller
        self.success_threshold = float(success_threshold)
        self._goal = np.zeros(3)
        self._q_cmd: np.ndarray | None = None
        super().__init__(workspace, max_steps, policy)

    def _begin(self, goal: np.ndarray) -> None:
        self._goal = goal
        self._q_cmd = None

    # ---- control step -------------------------------------------------------------------
    def observe(self, sample: RobotSample) -> np.ndarray:
        return self.builder.build(sample.arm_q, sample.arm_qd, sample.finger_q,
                                  sample.finger_qd, sample.obj)

    def step(self, sample: RobotSample) -> StepCommand | None:
        """Command for this sample, or None (no episode, episode over, or a check failed)."""
        if not self.active or self.policy is None:
            return None
        st = self.status
        if st.phase is Phase.HOLDING:
            st.phase, st.reason = Phase.RUNNING, ''
        st.distance = float(np.linalg.norm(sample.obj.position - self._goal))
        if st.step >= self.max_steps:
            success = st.distance < self.success_threshold
            self._finish('success' if success else 'failure',
                         f'object {st.distance * 100:.1f} cm from the goal')
            return None
        obs = self.observe(sample)
        t0 = time.perf_counter()
        action = np.asarray(self.policy(obs, self._goal), dtype=float).reshape(-1)
        self.inference_ms.append(1000.0 * (time.perf_counter() - t0))
        if action.shape != (4,) or not np.all(np.isfinite(action)):
            return self._reject(f'actor output unusable: {action.tolist()}')
        q_from = sample.arm_q if self._q_cmd is None else self._q_cmd
        ctl = self.controller
        arm = ctl.arm_target(sample.arm_q, q_from, action[:3])
        grip = ctl.gripper_target(sample.finger_q, action[3])
        reason = (check_arm_command(arm, ctl.kin.lower, ctl.kin.upper, q_from,
                                    ctl.max_velocity, ctl.period)
                  or check_gripper_command(grip, ctl.gripper_lower, ctl.gripper_upper))
        if reason is not None:
            return self._reject(reason)
        self._q_cmd = arm
        st.step += 1
        return StepCommand(arm, grip, action, sample.stamp)
