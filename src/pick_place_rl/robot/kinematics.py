"""Arm kinematics on a URDF with Pinocchio: forward kinematics, Jacobian, damped least-squares IK.

Robot-agnostic: the URDF path, the controlled joint names (in the order the caller uses for its
arrays) and the end-effector frame come from configuration. Joints of the URDF that are not
controlled stay at a fixed configuration (``q_fixed``), so a URDF with a torso or a base joint can
still serve a 7-joint arm. The Cartesian policies of the Fetch tasks need only the end-effector
position, so the IK solves for position and leaves the orientation to the null space.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pinocchio as pin


class KinematicsError(ValueError):
    """The URDF, a joint name or a frame name does not fit the request."""


class ArmKinematics:
    """FK / Jacobian / IK of one serial arm of a URDF, addressed by joint name.

    ``q`` arrays given to and returned by this class are ordered like ``joint_names``. Continuous
    joints (no limits, stored by Pinocchio as cos/sin pairs) are handled by angle.
    """

    def __init__(self, urdf_path: str | Path, joint_names: Sequence[str], ee_frame: str,
                 fixed_positions: Mapping[str, float] | None = None) -> None:
        path = Path(urdf_path)
        if not path.is_file():
            raise KinematicsError(f'URDF not found: {path}')
        self.model = pin.buildModelFromUrdf(str(path))
        self.data = self.model.createData()
        self.joint_names = tuple(joint_names)
        if not self.joint_names:
            raise KinematicsError('joint_names is empty')
        if not self.model.existFrame(ee_frame):
            frames = [f.name for f in self.model.frames]
            raise KinematicsError(f'frame {ee_frame!r} not in {path.name}; frames: {frames}')
        self.ee_frame = ee_frame
        self._frame_id = self.model.getFrameId(ee_frame)
        self._joint_ids = []
        for name in self.joint_names:
            if not self.model.existJointName(name):
                known = [n for n in self.model.names[1:]]
                raise KinematicsError(f'joint {name!r} not in {path.name}; joints: {known}')
            jid = self.model.getJointId(name)
            if self.model.joints[jid].nv != 1:
                raise KinematicsError(f'joint {name!r} has {self.model.joints[jid].nv} dofs')
            self._joint_ids.append(jid)
        self._idx_q = np.array([self.model.joints[j].idx_q for j in self._joint_ids])
        self._idx_v = np.array([self.model.joints[j].idx_v for j in self._joint_ids])
        self._continuous = np.array([self.model.joints[j].nq == 2 for j in self._joint_ids])
        lower = np.full(len(self.joint_names), -np.inf)
        upper = np.full(len(self.joint_names), np.inf)
        for i in range(len(self._joint_ids)):
            if not self._continuous[i]:
                lower[i] = self.model.lowerPositionLimit[self._idx_q[i]]
                upper[i] = self.model.upperPositionLimit[self._idx_q[i]]
        self.lower = lower
        self.upper = upper
        self._q_full = pin.neutral(self.model)
        for name, value in (fixed_positions or {}).items():
            if not self.model.existJointName(name):
                raise KinematicsError(f'fixed joint {name!r} not in {path.name}')
            joint = self.model.joints[self.model.getJointId(name)]
            self._q_full[joint.idx_q] = value

    @property
    def n(self) -> int:
        return len(self.joint_names)

    def _full_q(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if q.shape != (self.n,):
            raise KinematicsError(f'q has shape {q.shape}, expected ({self.n},)')
        if not np.all(np.isfinite(q)):
            raise KinematicsError('q has NaN or inf')
        full = self._q_full.copy()
        cont = self._continuous
        full[self._idx_q[~cont]] = q[~cont]
        full[self._idx_q[cont]] = np.cos(q[cont])
        full[self._idx_q[cont] + 1] = np.sin(q[cont])
        return full

    def fk(self, q: np.ndarray) -> np.ndarray:
        """End-effector position (3,) in the URDF root frame, metres."""
        pin.framesForwardKinematics(self.model, self.data, self._full_q(q))
        return self.data.oMf[self._frame_id].translation.copy()

    def fk_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (3,) and rotation matrix (3, 3) in the root frame."""
        pin.framesForwardKinematics(self.model, self.data, self._full_q(q))
        placement = self.data.oMf[self._frame_id]
        return placement.translation.copy(), placement.rotation.copy()

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """Positional Jacobian (3, n) of the end effector, world-aligned axes."""
        full = self._full_q(q)
        jac = pin.computeFrameJacobian(self.model, self.data, full, self._frame_id,
                                       pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
        return jac[:3, self._idx_v]

    def clamp(self, q: np.ndarray) -> np.ndarray:
        """``q`` clipped to the URDF joint limits (continuous joints untouched)."""
        return np.clip(q, self.lower, self.upper)

    def ik_step(self, q: np.ndarray, target_pos: np.ndarray, damping: float = 0.05,
                max_step: float = 0.2, gain: float = 1.0, target_rot: np.ndarray | None = None,
                rot_weight: float = 0.3) -> np.ndarray:
        """One damped least-squares step of ``q`` towards ``target_pos`` (3,).

        ``dq = J^T (J J^T + damping^2 I)^-1 * gain * error``, scaled so that no joint moves more
        than ``max_step`` radians (or metres), then clamped to the joint limits. Damping keeps the
        step bounded near singularities, where a plain pseudo-inverse would explode. With
        ``target_rot`` (a 3x3 rotation matrix, e.g. the gripper pointing down as in the Fetch
        tasks) the orientation error, weighted by ``rot_weight`` (m per rad), joins the task.
        """
        target = np.asarray(target_pos, dtype=float)
        if target.shape != (3,) or not np.all(np.isfinite(target)):
            raise KinematicsError(f'target_pos must be 3 finite numbers, got {target!r}')
        full = self._full_q(q)
        jac6 = pin.computeFrameJacobian(self.model, self.data, full, self._frame_id,
                                        pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)[:, self._idx_v]
        placement = self.data.oMf[self._frame_id]
        error = target - placement.translation
        jac = jac6[:3]
        if target_rot is not None:
            rot_err = pin.log3(np.asarray(target_rot, dtype=float) @ placement.rotation.T)
            error = np.concatenate([error, rot_weight * rot_err])
            jac = np.vstack([jac, rot_weight * jac6[3:]])
        jjt = jac @ jac.T + (damping ** 2) * np.eye(jac.shape[0])
        dq = jac.T @ np.linalg.solve(jjt, gain * error)
        largest = float(np.max(np.abs(dq))) if dq.size else 0.0
        if largest > max_step:
            dq *= max_step / largest
        return self.clamp(np.asarray(q, dtype=float) + dq)

    def ik(self, q0: np.ndarray, target_pos: np.ndarray, iterations: int = 50,
           tolerance: float = 1e-4, **step_kwargs: Any) -> tuple[np.ndarray, float]:
        """Iterate :meth:`ik_step` from ``q0``; returns (q, remaining position error in m)."""
        q = self.clamp(np.asarray(q0, dtype=float))
        target = np.asarray(target_pos, dtype=float)
        err = float(np.linalg.norm(target - self.fk(q)))
        for _ in range(iterations):
            if err < tolerance:
                break
            q = self.ik_step(q, target, **step_kwargs)
            err = float(np.linalg.norm(target - self.fk(q)))
        return q, err
