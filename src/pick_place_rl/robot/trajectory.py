"""joint_trajectory_controller semantics as a plain class (no ROS): validate, interpolate, hold.

The rules follow ros2_controllers' ``joint_trajectory_controller`` so that a policy that works on
this simulator also works on a real ros2_control robot:

* ``joint_names`` non-empty, no duplicates, exactly the controller's joints (any order: points
  are mapped by name);
* at least one point; each point's positions have one value per joint, velocities are empty or
  one per joint; all finite; positions within the joint limits;
* ``time_from_start`` strictly increasing (the first may be 0);
* the last point's velocities zero, unless ``allow_nonzero_velocity_at_trajectory_end``;
* ``header.stamp`` zero means "start now"; a trajectory with a set stamp that ends in the past
  is rejected.

Accepted trajectories replace the active one; the controller interpolates from its current
desired state to the first point, between points (linear for positions only, cubic Hermite
when velocities are given), and holds the last point. With ``cmd_timeout > 0``, once that long
has passed after the end of the last accepted trajectory, it holds the *measured* position
(commands stopped arriving: stop where the arm is, as the real controller does).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class TrajectoryRejected(ValueError):
    """A command that breaks the controller rules; the message says which rule."""


@dataclass(frozen=True)
class TrajectoryCommand:
    """A JointTrajectory message as plain arrays (times in seconds)."""
    joint_names: tuple[str, ...]
    times: tuple[float, ...]
    positions: tuple[Sequence[float], ...]
    velocities: tuple[Sequence[float], ...]
    stamp: float = 0.0


@dataclass(frozen=True)
class _Segment:
    start: float
    times: np.ndarray          # (k+1,) absolute, first = start
    positions: np.ndarray      # (k+1, n)
    velocities: np.ndarray     # (k+1, n)
    cubic: bool


class JointTrajectoryController:
    """Desired joint positions over time from accepted trajectories, in controller joint order."""

    def __init__(self, joint_names: Sequence[str], lower: Sequence[float],
                 upper: Sequence[float], cmd_timeout: float = 0.0,
                 allow_nonzero_velocity_at_trajectory_end: bool = False,
                 limit_tolerance: float = 1e-6) -> None:
        self.joint_names = tuple(joint_names)
        if len(set(self.joint_names)) != len(self.joint_names) or not self.joint_names:
            raise ValueError(f'controller joint names must be unique and non-empty: '
                             f'{self.joint_names}')
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        if self.lower.shape != (self.n,) or self.upper.shape != (self.n,):
            raise ValueError('lower/upper must have one value per joint')
        self.cmd_timeout = float(cmd_timeout)
        self.allow_nonzero_end_velocity = bool(allow_nonzero_velocity_at_trajectory_end)
        self.limit_tolerance = float(limit_tolerance)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self._segment: _Segment | None = None
        self._hold = np.zeros(self.n)
        self._timed_out = False
        self.timeouts = 0

    @property
    def n(self) -> int:
        return len(self.joint_names)

    @property
    def active(self) -> bool:
        """Whether a trajectory (not a plain hold) is being followed."""
        return self._segment is not None

    def reset(self, q_now: np.ndarray) -> None:
        """Drop any trajectory and hold ``q_now``."""
        self._segment = None
        self._hold = np.array(q_now, dtype=float)
        self._timed_out = False

    def validate(self, cmd: TrajectoryCommand, now: float) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray | None, float]:
        """Check ``cmd``; returns (times, positions, velocities or None, start) in joint order.

        Raises :class:`TrajectoryRejected` with the broken rule.
        """
        names = tuple(cmd.joint_names)
        if not names:
            raise TrajectoryRejected('joint_names is empty')
        if len(set(names)) != len(names):
            raise TrajectoryRejected(f'duplicate joint names: {list(names)}')
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise TrajectoryRejected(
                f'unknown joints {unknown}; expected {list(self.joint_names)}')
        missing = [n for n in self.joint_names if n not in names]
        if missing:
            raise TrajectoryRejected(f'missing joints {missing}')
        k = len(cmd.positions)
        if k == 0:
            raise TrajectoryRejected('trajectory has no points')
        if len(cmd.times) != k:
            raise TrajectoryRejected(f'{len(cmd.times)} times for {k} points')
        order = np.array([names.index(j) for j in self.joint_names])
        positions = np.empty((k, self.n))
        velocities = np.empty((k, self.n))
        have_vel = [len(v) > 0 for v in cmd.velocities] if cmd.velocities else [False] * k
        if len(cmd.velocities) not in (0, k):
            raise TrajectoryRejected(f'{len(cmd.velocities)} velocity entries for {k} points')
        if any(have_vel) and not all(have_vel):
            raise TrajectoryRejected('velocities given for some points but not all')
        for i in range(k):
            pos = np.asarray(cmd.positions[i], dtype=float)
            if pos.shape != (self.n,):
                raise TrajectoryRejected(f'point {i}: {pos.size} positions for {self.n} joints')
            positions[i] = pos[order]
            if have_vel[i]:
                vel = np.asarray(cmd.velocities[i], dtype=float)
                if vel.shape != (self.n,):
                    raise TrajectoryRejected(f'point {i}: {vel.size} velocities for '
                                             f'{self.n} joints')
                velocities[i] = vel[order]
        if not np.all(np.isfinite(positions)):
            raise TrajectoryRejected('positions contain NaN or inf')
        if any(have_vel) and not np.all(np.isfinite(velocities)):
            raise TrajectoryRejected('velocities contain NaN or inf')
        tol = self.limit_tolerance
        outside = np.any((positions < self.lower - tol) | (positions > self.upper + tol), axis=0)
        if np.any(outside):
            bad = [self.joint_names[i] for i in np.flatnonzero(outside)]
            raise TrajectoryRejected(f'positions outside joint limits for {bad}')
        times = np.asarray(cmd.times, dtype=float)
        if not np.all(np.isfinite(times)) or times[0] < 0.0:
            raise TrajectoryRejected('time_from_start must be finite and non-negative')
        if np.any(np.diff(times) <= 0.0):
            raise TrajectoryRejected(f'time_from_start not strictly increasing: {times.tolist()}')
        if any(have_vel) and not self.allow_nonzero_end_velocity and np.any(velocities[-1] != 0):
            raise TrajectoryRejected('last point velocity must be zero')
        start = now if cmd.stamp == 0.0 else float(cmd.stamp)
        if not np.isfinite(start):
            raise TrajectoryRejected('header.stamp is not finite')
        if cmd.stamp != 0.0 and start + times[-1] < now:
            raise TrajectoryRejected('trajectory with a set header.stamp ends in the past')
        return times, positions, (velocities if any(have_vel) else None), start

    def accept(self, cmd: TrajectoryCommand, now: float) -> None:
        """Validate ``cmd`` and make it the active trajectory (raises TrajectoryRejected)."""
        times, positions, velocities, start = self.validate(cmd, now)
        q_start, v_start = self.sample(now)
        cubic = velocities is not None
        if velocities is None:
            velocities = np.zeros_like(positions)
        if times[0] > 0.0:
            # Interpolate from the current desired state, as the real controller does.
            times = np.concatenate([[0.0], times])
            positions = np.vstack([q_start, positions])
            velocities = np.vstack([v_start if cubic else np.zeros(self.n), velocities])
        self._segment = _Segment(start, start + times, positions, velocities, cubic)
        self._timed_out = False

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Desired (positions, velocities) at time ``t``."""
        seg = self._segment
        if seg is None:
            return self._hold.copy(), np.zeros(self.n)
        if t <= seg.times[0]:
            return seg.positions[0].copy(), np.zeros(self.n)
        if t >= seg.times[-1]:
            return seg.positions[-1].copy(), np.zeros(self.n)
        i = int(np.searchsorted(seg.times, t, side='right')) - 1
        t0, t1 = seg.times[i], seg.times[i + 1]
        dt = t1 - t0
        s = (t - t0) / dt
        p0, p1 = seg.positions[i], seg.positions[i + 1]
        if not seg.cubic:
            return p0 + s * (p1 - p0), (p1 - p0) / dt
        v0, v1 = seg.velocities[i] * dt, seg.velocities[i + 1] * dt
        h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
        h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
        pos = h00 * p0 + h10 * v0 + h01 * p1 + h11 * v1
        d00, d10 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1
        d01, d11 = -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
        vel = (d00 * p0 + d10 * v0 + d01 * p1 + d11 * v1) / dt
        return pos, vel

    def update(self, t: float, q_measured: np.ndarray) -> np.ndarray:
        """Desired positions at ``t``; applies the command timeout (then holds ``q_measured``)."""
        return self.update_state(t, q_measured)[0]

    def update_state(self, t: float, q_measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Desired (positions, velocities) at ``t``, after applying the command timeout."""
        seg = self._segment
        if (seg is not None and self.cmd_timeout > 0.0
                and t > seg.times[-1] + self.cmd_timeout):
            self.reset(q_measured)
            self._timed_out = True
            self.timeouts += 1
        return self.sample(t)
