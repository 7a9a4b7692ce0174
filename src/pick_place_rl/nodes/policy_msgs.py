"""Message <-> array conversions of the policy node (no logic; the checks live in robot.safety)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, PoseStamped, Vector3
import numpy as np
from std_msgs.msg import ColorRGBA, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from pick_place_rl.robot.safety import finite_vector, InputRejected


def seconds(stamp: Any) -> float:
    """builtin_interfaces/Time (or Duration) -> float seconds."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def duration(t: float) -> Duration:
    sec = int(t)
    return Duration(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


def pose_arrays(msg: PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) and quaternion (x, y, z, w); InputRejected when not finite."""
    p, o = msg.pose.position, msg.pose.orientation
    pos = finite_vector((p.x, p.y, p.z), 3, 'pose position')
    quat = finite_vector((o.x, o.y, o.z, o.w), 4, 'pose orientation')
    if np.linalg.norm(quat) < 1e-6:
        raise InputRejected('pose orientation is a zero quaternion')
    return pos, quat


def trajectory(joint_names: Sequence[str], positions: np.ndarray, period: float
               ) -> JointTrajectory:
    """One-point trajectory reaching ``positions`` one control period from now.

    ``header.stamp`` stays zero ("start now"); velocities are omitted, so a
    joint_trajectory_controller interpolates linearly from its current desired state, and the
    arm comes to rest at the point if no further command arrives.
    """
    msg = JointTrajectory(joint_names=list(joint_names))
    point = JointTrajectoryPoint(positions=[float(v) for v in positions])
    point.time_from_start = duration(period)
    msg.points.append(point)
    return msg


def gripper_command(values: np.ndarray) -> Float64MultiArray:
    return Float64MultiArray(data=[float(v) for v in values])


def _marker(marker_id: int, kind: int, pos: Sequence[float], scale: float,
            rgba: tuple[float, float, float, float], frame: str, stamp: Any) -> Marker:
    m = Marker(ns='pick_place', id=marker_id, type=kind, action=Marker.ADD)
    m.header.frame_id, m.header.stamp = frame, stamp
    m.pose = Pose(position=Point(x=float(pos[0]), y=float(pos[1]), z=float(pos[2])))
    m.pose.orientation.w = 1.0
    m.scale = Vector3(x=scale, y=scale, z=scale)
    m.color = ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
    return m


def markers(goal: Sequence[float] | None, obj: Sequence[float] | None,
            grip: Sequence[float] | None, frame: str, stamp: Any,
            goal_radius: float) -> MarkerArray:
    """Goal (green sphere of the success radius), object (red cube), gripper (blue sphere)."""
    out = MarkerArray()
    if goal is not None and len(goal) == 3:
        out.markers.append(_marker(0, Marker.SPHERE, goal, 2 * goal_radius,
                                   (0.1, 0.8, 0.1, 0.4), frame, stamp))
    if obj is not None:
        out.markers.append(_marker(1, Marker.CUBE, obj, 0.05, (0.8, 0.1, 0.1, 1.0), frame, stamp))
    if grip is not None:
        out.markers.append(_marker(2, Marker.SPHERE, grip, 0.03, (0.1, 0.3, 0.9, 1.0), frame,
                                   stamp))
    return out
