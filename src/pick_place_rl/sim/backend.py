"""What a simulator must offer the sim driver, and the driver logic shared by all robots.

``SimBackend`` is the protocol the MuJoCo Fetch (``fetch_backend``) and PyBullet KUKA
(``kuka_backend``) simulators implement. ``DriverCore`` is the robot-independent part of the
driver: it owns the simulation clock, runs the joint trajectory controller (``robot.trajectory``)
and the gripper forward-command controller against a backend, and counts what it accepted and
rejected. The ROS node (``nodes/sim_driver.py``) only converts messages to and from the arrays
used here, so everything in this module runs and is tested without ROS.
"""
from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass, field
import math
import time
from typing import Protocol

import numpy as np

from pick_place_rl.robot.trajectory import (
    JointTrajectoryController,
    TrajectoryCommand,
    TrajectoryRejected,
)


@dataclass(frozen=True)
class CameraImage:
    """One camera frame: RGB (h, w, 3) uint8, depth (h, w) float32, pinhole intrinsics, pose.

    Depth is metres along the optical axis. ``position`` and ``orientation`` (x, y, z, w) place
    the optical frame in the world with the ROS convention (z forward, x right, y down), so a
    pixel (u, v) at depth d is ``position + R @ [(u - cx) d / fx, (v - cy) d / fy, d]``.
    """
    rgb: np.ndarray
    depth: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    frame_id: str
    position: np.ndarray
    orientation: np.ndarray


#: From an OpenGL-style camera frame (looks along -z, y up) to the ROS optical frame.
GL_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


def quat_xyzw(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix (w >= 0).

    Shepperd's method: solve for the largest of |w|, |x|, |y|, |z| first and take the others
    from the matrix entries, so half-turns (w = 0, e.g. a camera looking straight down) keep
    the relative signs of x, y and z.
    """
    r = np.asarray(rot, dtype=float)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    cands = (trace, r[0, 0], r[1, 1], r[2, 2])
    k = int(np.argmax(cands))
    if k == 0:
        w = 0.5 * np.sqrt(1.0 + trace)
        q = np.array([(r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w),
                      (r[1, 0] - r[0, 1]) / (4 * w), w])
    elif k == 1:
        x = 0.5 * np.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2]))
        q = np.array([x, (r[0, 1] + r[1, 0]) / (4 * x), (r[0, 2] + r[2, 0]) / (4 * x),
                      (r[2, 1] - r[1, 2]) / (4 * x)])
    elif k == 2:
        y = 0.5 * np.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2]))
        q = np.array([(r[0, 1] + r[1, 0]) / (4 * y), y, (r[1, 2] + r[2, 1]) / (4 * y),
                      (r[0, 2] - r[2, 0]) / (4 * y)])
    else:
        z = 0.5 * np.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2]))
        q = np.array([(r[0, 2] + r[2, 0]) / (4 * z), (r[1, 2] + r[2, 1]) / (4 * z), z,
                      (r[1, 0] - r[0, 1]) / (4 * z)])
    if q[3] < 0:
        q = -q
    return q / np.linalg.norm(q)


@dataclass(frozen=True)
class EpisodeInfo:
    """What a reset or spawn produced: goal (world, m; may be empty), object pose, seed."""
    goal: np.ndarray
    object_position: np.ndarray
    seed: int | None
    details: dict = field(default_factory=dict)


class SimBackend(Protocol):
    """A simulated robot with position-controlled arm joints and a position-controlled gripper.

    All arrays are ordered like the corresponding ``*_joint_names``. Times in seconds, lengths in
    metres, angles in radians, quaternions (x, y, z, w) as in ROS.
    """

    arm_joint_names: tuple[str, ...]
    gripper_joint_names: tuple[str, ...]
    #: every joint reported in /joint_states (arm and gripper included)
    joint_names: tuple[str, ...]
    #: physics time one :meth:`step` call advances (a multiple of the physics time step)
    tick: float

    def arm_limits(self) -> tuple[np.ndarray, np.ndarray]: ...
    def gripper_limits(self) -> tuple[np.ndarray, np.ndarray]: ...
    def reset(self, seed: int | None = None, object_xy: np.ndarray | None = None,
              goal: np.ndarray | None = None) -> EpisodeInfo: ...
    def spawn_objects(self, seed: int | None = None) -> EpisodeInfo: ...
    def set_arm_targets(self, q: np.ndarray, qd: np.ndarray | None = None) -> None: ...
    def set_gripper_targets(self, g: np.ndarray) -> None: ...
    def gripper_targets(self) -> np.ndarray: ...
    def step(self) -> None: ...
    def arm_positions(self) -> np.ndarray: ...
    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def object_pose(self) -> tuple[np.ndarray, np.ndarray]: ...
    def goal(self) -> np.ndarray: ...
    def render(self, width: int, height: int) -> CameraImage: ...
    def close(self) -> None: ...


class CommandRejected(ValueError):
    """A gripper or arm command that breaks the controller rules."""


@dataclass
class DriverStats:
    """Counters published in /diagnostics."""
    accepted_trajectories: int = 0
    rejected_trajectories: int = 0
    accepted_gripper: int = 0
    rejected_gripper: int = 0
    last_rejection: str = ''
    ticks: int = 0
    step_wall_time: float = 0.0    # wall seconds spent in physics + control, summed

    def step_time_ms(self) -> float:
        return 1000.0 * self.step_wall_time / self.ticks if self.ticks else 0.0


class DriverCore:
    """Clock, controllers and counters of the sim driver, on top of one backend.

    The driver's clock (``time``) starts at 0 and only moves forward, also across resets (nodes
    using ``/clock`` cannot cope with time running backwards), while the backend's own physics
    time may restart. It counts whole ticks, and the trajectory controller runs on time since
    the episode start, so an episode replays bit for bit whenever it starts.
    """

    def __init__(self, backend: SimBackend, cmd_timeout: float = 0.0,
                 allow_nonzero_velocity_at_trajectory_end: bool = False) -> None:
        self.backend = backend
        lower, upper = backend.arm_limits()
        self.arm = JointTrajectoryController(
            backend.arm_joint_names, lower, upper, cmd_timeout=cmd_timeout,
            allow_nonzero_velocity_at_trajectory_end=allow_nonzero_velocity_at_trajectory_end)
        self.gripper_lower, self.gripper_upper = backend.gripper_limits()
        self.stats = DriverStats()
        self._ticks = 0
        self._episode_tick = 0
        self.arm.reset(backend.arm_positions())

    @property
    def time(self) -> float:
        """Driver clock, seconds since start."""
        return self._ticks * self.backend.tick

    @property
    def episode_time(self) -> float:
        """Seconds since the last reset (the controller's time base)."""
        return (self._ticks - self._episode_tick) * self.backend.tick

    @property
    def tick(self) -> float:
        return self.backend.tick

    def reset(self, seed: int | None = None, object_xy: Sequence[float] | None = None,
              goal: Sequence[float] | None = None) -> EpisodeInfo:
        """New episode: backend reset, then hold the initial arm configuration."""
        info = self.backend.reset(
            seed=seed, object_xy=None if object_xy is None else np.asarray(object_xy, float),
            goal=None if goal is None else np.asarray(goal, float))
        self.arm.reset(self.backend.arm_positions())
        self._episode_tick = self._ticks
        return info

    def on_trajectory(self, cmd: TrajectoryCommand) -> str | None:
        """Accept a trajectory; returns None, or the rule it broke (then it is counted)."""
        if cmd.stamp != 0.0:  # an absolute stamp: into the controller's time base
            cmd = dataclasses.replace(cmd, stamp=cmd.stamp - self._episode_tick * self.tick)
        try:
            self.arm.accept(cmd, self.episode_time)
        except TrajectoryRejected as exc:
            self.stats.rejected_trajectories += 1
            self.stats.last_rejection = f'trajectory: {exc}'
            return str(exc)
        self.stats.accepted_trajectories += 1
        return None

    def on_gripper(self, values: Sequence[float]) -> str | None:
        """Forward-command gripper targets, one per gripper joint; clipped to the joint range."""
        g = np.asarray(values, dtype=float)
        n = len(self.backend.gripper_joint_names)
        reason = None
        if g.shape != (n,):
            reason = f'{g.size} gripper values for {n} joints'
        elif not np.all(np.isfinite(g)):
            reason = 'gripper command contains NaN or inf'
        if reason is not None:
            self.stats.rejected_gripper += 1
            self.stats.last_rejection = f'gripper: {reason}'
            return reason
        self.backend.set_gripper_targets(np.clip(g, self.gripper_lower, self.gripper_upper))
        self.stats.accepted_gripper += 1
        return None

    def step(self, n_ticks: int = 1) -> None:
        """Advance the simulation ``n_ticks`` ticks, updating arm targets every tick."""
        start = time.perf_counter()
        for _ in range(n_ticks):
            q_des, qd_des = self.arm.update_state(self.episode_time,
                                                  self.backend.arm_positions())
            self.backend.set_arm_targets(q_des, qd_des)
            self.backend.step()
            self._ticks += 1
        self.stats.ticks += n_ticks
        self.stats.step_wall_time += time.perf_counter() - start

    def ticks_per(self, period: float) -> int:
        """Whole ticks in ``period`` seconds (at least 1)."""
        return max(1, int(math.floor(period / self.backend.tick + 1e-6)))


ROBOTS = ('fetch', 'kuka')


def make_backend(robot: str, **kwargs: object) -> SimBackend:
    """The backend for ``robot`` ('fetch': MuJoCo, 'kuka': PyBullet); kwargs go to its class."""
    if robot == 'fetch':
        from pick_place_rl.sim.fetch_backend import FetchBackend
        return FetchBackend(**kwargs)  # type: ignore[arg-type]
    if robot == 'kuka':
        from pick_place_rl.sim.kuka_backend import KukaBackend
        return KukaBackend(**kwargs)  # type: ignore[arg-type]
    raise ValueError(f'unknown robot {robot!r}; choose from {ROBOTS}')
