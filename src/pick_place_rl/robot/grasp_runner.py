"""Grasp-net pick and place on a joint-controlled arm: camera -> grasp -> joint targets.

The robot-independent core of the grasp policy node (``nodes/grasp_node.py`` only converts
messages). One episode, started by a place goal, runs these stages:

``park`` (arm out of the camera's view) -> ``capture`` (wait for a frame taken after the arm
stopped, turn it into the grasp net's RGB + height input, pick the best grasp) -> ``approach``
(above the grasp point, gripper turned to the grasp yaw) -> ``descend`` -> ``close`` ->
``lift`` -> ``check`` (fingers not shut = something is held) -> ``place`` (above the goal) ->
``release`` -> ``retreat``.

Everything is streamed as one joint target per control period, like the pick-and-place actor:
when commands stop (e-stop, stale inputs, cancel) the joint_trajectory_controller reaches the
last target one period later and holds it. Every target passes ``safety.check_arm_command``
(finite, within joint limits, within the velocity limits over one period).

The stages reproduce the grasp primitive of ``KukaPixelGraspEnv`` (the training env): the same
image, the same pixel-to-point mapping, the fingertips ``grasp_depth`` below the surface seen
at the pixel, the fingers closed across ``yaw``. The env teleports the free-space approach;
here the arm moves there.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import enum
import math
import time

import numpy as np

from pick_place_rl.robot.fetch_observation import quat_to_matrix
from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.robot.policy_runner import EpisodeRunner, Phase, Status, StepCommand
from pick_place_rl.robot.safety import check_arm_command, check_gripper_command, Workspace


class Stage(enum.StrEnum):
    """``stage`` of /pick_place/status while a grasp episode runs (see README)."""
    PARK = 'park'
    CAPTURE = 'capture'
    APPROACH = 'approach'
    DESCEND = 'descend'
    CLOSE = 'close'
    LIFT = 'lift'
    PLACE = 'place'
    RELEASE = 'release'
    RETREAT = 'retreat'


@dataclass(frozen=True)
class CameraFrame:
    """One RGB-D frame with its pinhole intrinsics and optical-frame pose (ROS convention).

    A pixel (u, v) at depth d is ``position + rotation @ [(u - cx) d / fx, (v - cy) d / fy, d]``.
    """
    stamp: float
    rgb: np.ndarray          # (h, w, 3) uint8
    depth: np.ndarray        # (h, w) float32, m along the optical axis
    fx: float
    fy: float
    cx: float
    cy: float
    position: np.ndarray     # (3,)
    rotation: np.ndarray     # (3, 3)

    def points(self) -> np.ndarray:
        """World points (h, w, 3) of every pixel; invalid depth (<= 0, NaN) gives NaN."""
        h, w = self.depth.shape
        d = np.where(np.isfinite(self.depth) & (self.depth > 0), self.depth, np.nan)
        u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
        rays = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy, np.ones_like(u)], -1)
        return self.position + (rays * d[..., None]) @ self.rotation.T


@dataclass(frozen=True)
class GraspSample:
    """One reading of the arm and fingers (joint order of the node's parameters)."""
    stamp: float
    arm_q: np.ndarray
    finger_q: np.ndarray


@dataclass(frozen=True)
class GraspParams:
    """How grasps are executed (lengths in m, world frame; angles in rad; times in s)."""
    park_joints: tuple[float, ...]
    seed_joints: tuple[float, ...]
    gripper_open: tuple[float, ...]
    gripper_closed: tuple[float, ...]
    tool_orientation: tuple[float, ...] = (0.0, 1.0, 0.0, 0.0)
    surface_z: float = -0.188
    max_height: float = 0.5
    grasp_depth: float = 0.04
    approach_height: float = 0.12
    lift_z: float = 0.55
    place_clearance: float = 0.03
    joint_speed: float = 0.8
    carry_speed: float = 0.5
    descend_speed: float = 0.2
    lift_speed: float = 0.4
    close_time: float = 0.4
    release_time: float = 0.4
    capture_delay: float = 0.1
    capture_timeout: float = 2.0
    settle_tolerance: float = 0.03
    contact_time: float = 0.2
    settle_timeout: float = 3.0
    hold_threshold: float = 0.1
    ik_tolerance: float = 0.005


@dataclass
class GraspStatus(Status):
    """/pick_place/status of a grasp episode: the common fields plus stage and grasp."""
    stage: str = ''
    grasp: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**super().to_dict(), 'stage': self.stage, 'grasp': self.grasp}


GraspNet = Callable[[np.ndarray], object]   # image (C, S, S) -> Grasp (core.grasp_policy)
#: peak speed of :func:`smooth` relative to the average speed of the move
SMOOTH_PEAK = math.pi / 2


def smooth(s: float) -> float:
    """Cosine time scaling 0 -> 1: zero speed at both ends, so a held object is not jerked."""
    return 0.5 - 0.5 * math.cos(math.pi * s)


def yaw_rotation(base: np.ndarray, yaw: float) -> np.ndarray:
    """Tool rotation turned by ``yaw`` about its own axis, as the env's gripper yaw joint does.

    The env commands its gripper joint (about the flange z axis) to ``-yaw``.
    """
    c, s = math.cos(-yaw), math.sin(-yaw)
    return base @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class GraspRunner(EpisodeRunner):
    """Episode state machine around a pixel-wise grasp net (``core.grasp_policy``)."""

    def __init__(self, kin: ArmKinematics, tip_offset: float, velocity_limits: np.ndarray,
                 period: float, params: GraspParams, workspace: Workspace,
                 grasp_area: Workspace, image_size: int = 32, max_steps: int = 1500,
                 policy: GraspNet | None = None) -> None:
        self.kin = kin
        self.tip_offset = float(tip_offset)
        self.period = float(period)
        self.params = params
        self.max_velocity = np.asarray(velocity_limits, dtype=float)
        if self.max_velocity.shape != (kin.n,) or np.any(self.max_velocity <= 0):
            raise ValueError(f'need {kin.n} positive velocity limits')
        if params.joint_speed > float(np.min(self.max_velocity)):
            raise ValueError(f'joint_speed {params.joint_speed} exceeds the velocity limits '
                             f'{self.max_velocity.tolist()}')
        self.grasp_area = grasp_area
        self.image_size = int(image_size)
        self.base_rotation = quat_to_matrix(params.tool_orientation)
        self.gripper_open = np.asarray(params.gripper_open, dtype=float)
        self.gripper_closed = np.asarray(params.gripper_closed, dtype=float)
        lo = np.minimum(self.gripper_open, self.gripper_closed)
        hi = np.maximum(self.gripper_open, self.gripper_closed)
        self.gripper_lower, self.gripper_upper = lo, hi
        self._queue: deque[np.ndarray] = deque()
        self._q_cmd: np.ndarray | None = None
        self._grip = self.gripper_open.copy()
        self._stage_t0 = 0.0
        self._reached_t: float | None = None
        self._target = np.zeros(kin.n)
        self._goal = np.zeros(3)
        self._yaw = 0.0
        self._tip = np.zeros(3)
        self.last_input: np.ndarray | None = None
        self._stage: Stage | None = None
        self._idle_since: float | None = None
        super().__init__(workspace, max_steps, policy)

    # ---- episode state ------------------------------------------------------------------
    def _new_status(self, *args: object) -> GraspStatus:
        return GraspStatus(*args) if args else GraspStatus(max_steps=self.max_steps)

    def _begin(self, goal: np.ndarray) -> None:
        self._goal = goal
        self._queue.clear()
        self._q_cmd = None
        self._grip = self.gripper_open.copy()
        self._stage = None
        self._idle_since = None

    def _enter(self, stage: Stage, now: float) -> None:
        self.status.stage = stage.value
        self._stage = stage
        self._stage_t0 = now
        self._reached_t = None
        self._idle_since = None

    # ---- image -> grasp -----------------------------------------------------------------
    def net_input(self, frame: CameraFrame) -> tuple[np.ndarray, np.ndarray]:
        """The grasp net's (4, S, S) input and the (S, S, 3) world points of its pixels.

        RGB in [0, 1] and height above ``surface_z`` (clipped to ``[0, max_height]``), as
        ``KukaPixelGraspEnv`` builds them. A frame k times the net's size is averaged over
        k x k blocks; any other size is refused (ValueError naming both sizes).
        """
        s = self.image_size
        h, w = np.shape(frame.depth)
        if np.shape(frame.rgb) != (h, w, 3):
            raise ValueError(f'rgb {np.shape(frame.rgb)} and depth {(h, w)} sizes differ')
        if h != w or h % s:
            raise ValueError(f'camera image {w}x{h} is not a multiple of the grasp net input '
                             f'{s}x{s}')
        k = h // s
        points = frame.points()
        if not np.all(np.isfinite(frame.rgb)):
            raise ValueError('rgb image has non-finite values')
        valid = np.isfinite(points[..., 2])
        if not np.any(valid):
            raise ValueError('depth image has no valid pixel')

        def blocks(a: np.ndarray) -> np.ndarray:
            return a.reshape(s, k, s, k, *a.shape[2:]).mean(axis=(1, 3))

        with np.errstate(invalid='ignore'):
            counts = blocks(valid.astype(float))
            pts = blocks(np.where(valid[..., None], points, 0.0)) / np.maximum(counts, 1e-9)[
                ..., None]
        # A block without valid depth reads as the tray floor there.
        pts[counts == 0] = np.nan
        z = np.where(np.isfinite(pts[..., 2]), pts[..., 2], self.params.surface_z)
        height = np.clip(z - self.params.surface_z, 0.0, self.params.max_height)
        rgb = blocks(np.asarray(frame.rgb, dtype=np.float32)) / 255.0
        image = np.concatenate([rgb.transpose(2, 0, 1), height[None]], axis=0)
        return image.astype(np.float32), pts

    def plan_grasp(self, frame: CameraFrame) -> dict:
        """Run the net on ``frame``; returns the grasp (pixel, yaw, Q, fingertip point)."""
        image, points = self.net_input(frame)
        self.last_input = image
        t0 = time.perf_counter()
        grasp = self.policy(image)
        self.inference_ms.append(1000.0 * (time.perf_counter() - t0))
        point = points[grasp.row, grasp.col]
        if not np.all(np.isfinite(point)):
            raise ValueError(f'no depth at the chosen pixel ({grasp.row}, {grasp.col})')
        tip = point.copy()
        p = self.params
        tip[2] = max(tip[2] - p.grasp_depth, p.surface_z + 0.005)
        return {'row': grasp.row, 'col': grasp.col, 'yaw_bin': grasp.yaw_bin,
                'yaw': float(grasp.yaw), 'q': float(grasp.q),
                'point': [round(float(v), 4) for v in tip]}

    # ---- motion planning ----------------------------------------------------------------
    def _ik(self, seed: np.ndarray, flange: np.ndarray, yaw: float) -> np.ndarray:
        rot = yaw_rotation(self.base_rotation, yaw)
        q, err = self.kin.ik(seed, flange, iterations=200, tolerance=1e-4, damping=0.02,
                             max_step=0.2, target_rot=rot, rot_weight=0.5)
        pos, r = self.kin.fk_pose(q)
        rot_err = np.linalg.norm(r - rot)
        if err > self.params.ik_tolerance or rot_err > 0.05:
            raise ValueError(f'no IK solution for the flange at {np.round(flange, 3).tolist()} '
                             f'(error {err * 1000:.1f} mm)')
        return q

    def _joint_move(self, q_from: np.ndarray, q_to: np.ndarray, speed: float | None = None
                    ) -> None:
        """Joint-space move, smooth start and stop, no joint faster than ``speed`` rad/s."""
        step = (speed or self.params.joint_speed) * self.period
        n = max(1, int(math.ceil(float(np.max(np.abs(q_to - q_from))) * SMOOTH_PEAK / step)))
        for i in range(1, n + 1):
            self._queue.append(q_from + (q_to - q_from) * smooth(i / n))
        self._target = q_to

    def _line_move(self, q_from: np.ndarray, flange_to: np.ndarray, speed: float) -> None:
        """Straight flange line (smooth start and stop, peak ``speed`` m/s), IK per period."""
        start = self.kin.fk(q_from)
        n = max(1, int(math.ceil(np.linalg.norm(flange_to - start) * SMOOTH_PEAK
                                 / (speed * self.period))))
        q = q_from
        for i in range(1, n + 1):
            q_next = self._ik(q, start + (flange_to - start) * smooth(i / n), self._yaw)
            # Keep within the joint speed even where the IK turns a joint quickly.
            limit = self.params.joint_speed * self.period
            sub = max(1, int(math.ceil(float(np.max(np.abs(q_next - q))) / limit)))
            for j in range(1, sub + 1):
                self._queue.append(q + (q_next - q) * j / sub)
            q = q_next
        self._target = q

    def _settled(self, sample: GraspSample) -> bool:
        return bool(np.max(np.abs(sample.arm_q - self._target)) < self.params.settle_tolerance)

    # ---- control step -------------------------------------------------------------------
    def step(self, sample: GraspSample, frame: CameraFrame | None) -> StepCommand | None:
        """Command for this sample, or None (no episode, episode over, or a check failed)."""
        if not self.active or self.policy is None:
            return None
        st = self.status
        if st.phase is Phase.HOLDING:
            st.phase, st.reason = Phase.RUNNING, ''
            # Re-plan from where the arm is: the rest of the stage's motion, or a new park.
            self._queue.clear()
            self._q_cmd = None
            self._idle_since = None
            if self._stage in (None, Stage.PARK, Stage.CAPTURE):
                self._stage = None
            else:
                self._joint_move(sample.arm_q, self._target)
        if st.step >= self.max_steps:
            self._finish('failure', f'no result within {self.max_steps} control steps')
            return None
        try:
            done = self._advance(sample, frame)
        except ValueError as exc:
            self._finish('failure', str(exc))
            return None
        if done:
            return None
        q_from = sample.arm_q if self._q_cmd is None else self._q_cmd
        arm = self._queue.popleft() if self._queue else (
            self._q_cmd if self._q_cmd is not None else sample.arm_q.copy())
        reason = (check_arm_command(arm, self.kin.lower, self.kin.upper, q_from,
                                    self.max_velocity, self.period)
                  or check_gripper_command(self._grip, self.gripper_lower, self.gripper_upper))
        if reason is not None:
            return self._reject(reason)
        self._q_cmd = arm
        st.step += 1
        return StepCommand(arm, self._grip.copy(), np.zeros(0), sample.stamp)

    def _advance(self, sample: GraspSample, frame: CameraFrame | None) -> bool:
        """Move the stage machine on; True when the episode just ended."""
        p = self.params
        now = sample.stamp
        q_now = sample.arm_q if self._q_cmd is None else self._q_cmd
        if self._stage is None:
            self._enter(Stage.PARK, now)
            self._grip = self.gripper_open.copy()
            self._joint_move(q_now, np.asarray(p.park_joints, dtype=float))
        if self._queue:
            return False
        if self._idle_since is None:
            self._idle_since = now
        stage = self._stage
        if stage not in (Stage.CAPTURE, Stage.CLOSE, Stage.RELEASE):
            # The descent ends in contact (the fingertips aim below the surface), as the env's
            # timed descent does, and lowering a held object may touch down early: both may
            # stop short of their target.
            contact = stage in (Stage.DESCEND, Stage.PLACE) and \
                now - self._idle_since >= p.contact_time
            if not (contact or self._settled(sample)):
                if now - self._idle_since > p.settle_timeout:
                    err = np.abs(sample.arm_q - self._target)
                    raise ValueError(f'{stage.value}: the arm did not reach its target '
                                     f'(joint {int(err.argmax()) + 1} off by '
                                     f'{float(err.max()):.3f} rad)')
                return False
            if self._reached_t is None:
                self._reached_t = now
        if stage is Stage.PARK:
            self._enter(Stage.CAPTURE, now)
            self._reached_t = now
            return False
        if stage is Stage.CAPTURE:
            if frame is None or frame.stamp < self._reached_t + p.capture_delay:
                if now - self._stage_t0 > p.capture_timeout:
                    raise ValueError('capture: no camera frame taken after the arm parked')
                return False
            grasp = self.plan_grasp(frame)
            self.status.grasp = grasp
            self._tip = np.array(grasp['point'])
            reason = self.grasp_area.check(self._tip)
            if reason is not None:
                raise ValueError(f'grasp point rejected: {reason}')
            self._yaw = grasp['yaw']
            above = self._tip + [0.0, 0.0, self.tip_offset + p.approach_height]
            q_above = self._ik(np.asarray(p.seed_joints, dtype=float), above, self._yaw)
            self._enter(Stage.APPROACH, now)
            self._joint_move(q_now, q_above)
            return False
        if stage is Stage.APPROACH:
            self._enter(Stage.DESCEND, now)
            self._line_move(q_now, self._tip + [0.0, 0.0, self.tip_offset], p.descend_speed)
            return False
        if stage is Stage.DESCEND:
            self._enter(Stage.CLOSE, now)
            self._grip = self.gripper_closed.copy()
            return False
        if stage is Stage.CLOSE:
            if now - self._stage_t0 < p.close_time:
                return False
            self._enter(Stage.LIFT, now)
            flange = self.kin.fk(q_now)
            self._line_move(q_now, np.array([flange[0], flange[1], p.lift_z]), p.lift_speed)
            return False
        if stage is Stage.LIFT:
            if not self.holding(sample.finger_q):
                self._finish('failure', 'nothing in the gripper after the lift')
                return True
            self._enter(Stage.PLACE, now)
            flange_lift = self.kin.fk(q_now)
            above_goal = np.array([self._goal[0], self._goal[1], flange_lift[2]])
            q_above = self._ik(q_now, above_goal, self._yaw)
            self._joint_move(q_now, q_above, p.carry_speed)
            down = self._goal + [0.0, 0.0, self.tip_offset + p.place_clearance]
            self._line_move(q_above, down, p.descend_speed)
            return False
        if stage is Stage.PLACE:
            held = self.holding(sample.finger_q)
            self.status.grasp['held_at_goal'] = bool(held)
            self._enter(Stage.RELEASE, now)
            self._grip = self.gripper_open.copy()
            return False
        if stage is Stage.RELEASE:
            if now - self._stage_t0 < p.release_time:
                return False
            self._enter(Stage.RETREAT, now)
            flange = self.kin.fk(q_now)
            self._line_move(q_now, np.array([flange[0], flange[1], p.lift_z]), p.lift_speed)
            return False
        # RETREAT reached.
        if self.status.grasp.get('held_at_goal'):
            self._finish('success', 'object picked and released at the goal')
        else:
            self._finish('failure', 'object dropped before the goal')
        return True

    def holding(self, finger_q: np.ndarray) -> bool:
        """Fingers stopped short of closed: something is between them."""
        span = np.abs(self.gripper_open - self.gripper_closed)
        gap = np.abs(np.asarray(finger_q, dtype=float) - self.gripper_closed) / span
        return bool(np.mean(gap) > self.params.hold_threshold)
