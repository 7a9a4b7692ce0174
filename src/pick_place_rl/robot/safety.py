"""Input validation and command gating of the policy node, as plain, testable functions.

Everything a message brings in passes one of these checks before it can reach the actor, and
every command passes :func:`check_arm_command` / :func:`check_gripper_command` before it is
published. A failed check raises :class:`InputRejected` (or returns a reason) that names the
problem, so the node can log it, count it in /diagnostics, hold position and keep running.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class InputRejected(ValueError):
    """A message that cannot be used; the text says why."""


def joints_by_name(names: Sequence[str], positions: Sequence[float],
                   velocities: Sequence[float], wanted: Sequence[str]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of ``wanted`` joints from a JointState's arrays, by name.

    Never by order: drivers publish joints in any order and may add joints (head, torso).
    Velocities are required (the observation uses them).
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise InputRejected('joint_states has duplicate joint names')
    if len(positions) != len(names):
        raise InputRejected(f'joint_states has {len(positions)} positions for {len(names)} '
                            f'names')
    if len(velocities) != len(names):
        raise InputRejected(f'joint_states has {len(velocities)} velocities for {len(names)} '
                            f'names')
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise InputRejected(f'joint_states lacks joints {missing}')
    idx = np.array([index[n] for n in wanted], dtype=int)
    q = np.asarray(positions, dtype=float)[idx]
    qd = np.asarray(velocities, dtype=float)[idx]
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
        bad = [wanted[i] for i in np.flatnonzero(~(np.isfinite(q) & np.isfinite(qd)))]
        raise InputRejected(f'joint_states has NaN/inf for {bad}')
    return q, qd


def finite_vector(values: Sequence[float], size: int, what: str) -> np.ndarray:
    """``values`` as an array of ``size`` finite numbers, or :class:`InputRejected`."""
    arr = np.asarray(values, dtype=float)
    if arr.shape != (size,):
        raise InputRejected(f'{what} must have {size} values, got {arr.size}')
    if not np.all(np.isfinite(arr)):
        raise InputRejected(f'{what} has NaN or inf')
    return arr


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned box of reachable place goals (world frame, metres)."""
    lower: tuple[float, float, float]
    upper: tuple[float, float, float]

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            raise ValueError(f'workspace needs 3 lower < 3 upper bounds, got {self.lower}, '
                             f'{self.upper}')

    def check(self, point: np.ndarray) -> str | None:
        """None if ``point`` is inside, else the reason (which axis, by how much)."""
        p = np.asarray(point, dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            return f'goal must be 3 finite numbers, got {p.tolist()}'
        for axis, name in enumerate('xyz'):
            lo, hi = self.lower[axis], self.upper[axis]
            if not lo <= p[axis] <= hi:
                return (f'goal {name}={p[axis]:.3f} m outside the workspace '
                        f'[{lo:.3f}, {hi:.3f}]')
        return None


def stale_inputs(now: float, stamps: dict[str, float | None], max_age: float) -> list[str]:
    """Names of inputs never received or older than ``max_age`` seconds at ``now``.

    A stamp in the future by more than ``max_age`` counts as stale too (clock mix-up: a sensor
    on wall time, the node on sim time).
    """
    out = []
    for name, stamp in stamps.items():
        if stamp is None or abs(now - stamp) > max_age:
            out.append(name)
    return out


class EStopLatch:
    """Latched emergency stop: trips on any ``True``, clears only on an explicit reset.

    A reset while the e-stop input still reads ``True`` is refused: releasing a pressed button
    must come first.
    """

    def __init__(self) -> None:
        self.tripped = False
        self.input_active = False
        self.trips = 0

    def update(self, active: bool) -> bool:
        """Feed the e-stop input; returns True when this call tripped the latch."""
        self.input_active = bool(active)
        if active and not self.tripped:
            self.tripped = True
            self.trips += 1
            return True
        return False

    def reset(self) -> str | None:
        """Clear the latch; returns the reason when it cannot be cleared."""
        if self.input_active:
            return 'e-stop input is still active'
        self.tripped = False
        return None


def check_arm_command(q_cmd: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                      q_from: np.ndarray, max_velocity: np.ndarray, period: float,
                      tolerance: float = 1e-9) -> str | None:
    """None if ``q_cmd`` is finite, within limits and reachable from ``q_from`` in ``period``."""
    q = np.asarray(q_cmd, dtype=float)
    if q.shape != np.shape(lower) or not np.all(np.isfinite(q)):
        return 'arm command not finite or of the wrong size'
    outside = (q < lower - tolerance) | (q > upper + tolerance)
    if np.any(outside):
        return f'arm command outside joint limits at joints {np.flatnonzero(outside).tolist()}'
    speed = np.abs(q - np.asarray(q_from, dtype=float)) / period
    fast = speed > np.asarray(max_velocity) * (1.0 + 1e-6) + tolerance
    if np.any(fast):
        return f'arm command exceeds velocity limits at joints {np.flatnonzero(fast).tolist()}'
    return None


def check_gripper_command(g: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> str | None:
    """None if the gripper targets are finite and within their command range."""
    g = np.asarray(g, dtype=float)
    if g.shape != np.shape(lower) or not np.all(np.isfinite(g)):
        return 'gripper command not finite or of the wrong size'
    if np.any(g < lower) or np.any(g > upper):
        return 'gripper command outside its range'
    return None
