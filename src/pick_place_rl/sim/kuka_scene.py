"""PyBullet scene of the KUKA iiwa grasping benchmark: arm with gripper, table, tray, objects.

The layout follows the classic pybullet KUKA diverse-object task (arm base at (-0.1, 0, 0.07),
tray centred near (0.64, 0.075, -0.19), objects dropped from 0.15 m into a 0.3 m square), so
numbers from that literature stay comparable. Objects come from pybullet_data's 1000 procedural
meshes (``random_urdfs/NNN``); the classic split holds out every object whose index ends in 0
(100 test objects) and trains on the other 900.

The scene lives in a pybullet client the caller owns (``client`` id); every call passes that id,
so several scenes can run in one process. Nothing here renders with OpenGL: images come from
the TinyRenderer (CPU), which works headless.

Joint names: the SDF names its arm joints ``J0..J6``; the scene reports them under the names of
pybullet_data's iiwa URDF (``lbr_iiwa_joint_1..7``), the file the kinematics layer loads, so
``/joint_states`` from this scene match FK on that URDF.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import functools
import math
from typing import Any

import numpy as np
import pybullet as pb
import pybullet_data

#: Object sets of the classic split, by index of ``random_urdfs/NNN``.
OBJECT_SETS = ('train', 'test', 'all')
N_RANDOM_URDFS = 1000

ARM_JOINT_NAMES = tuple(f'lbr_iiwa_joint_{i}' for i in range(1, 8))
#: The gripper's yaw joint and the two finger joints that close it (the tips follow passively
#: under a small holding force, as in the classic model).
GRIPPER_YAW_JOINT = 'gripper_to_arm'
FINGER_JOINT_NAMES = ('base_left_finger_joint', 'base_right_finger_joint')
FINGER_TIP_JOINT_NAMES = ('left_base_tip_joint', 'right_base_tip_joint')

#: Home configuration (gripper above the tray centre, pointing down, fingers open).
HOME_ARM = (0.006418, 0.413184, -0.011401, -1.589317, 0.005379, 1.137684, -0.006539)
FINGER_OPEN = 0.3
FINGER_CLOSED = 0.0

_EE_LINK = 6          # lbr_iiwa_link_7: the flange the IK solves for
_ARM_SDF_INDICES = tuple(range(7))
_GRIPPER_YAW_INDEX = 7
_LEFT_FINGER, _LEFT_TIP, _RIGHT_FINGER, _RIGHT_TIP = 8, 10, 11, 13
_DOWN = pb.getQuaternionFromEuler((0.0, -math.pi, 0.0))


class UnknownObjectSetError(ValueError):
    """An object split other than :data:`OBJECT_SETS`."""


def object_indices(split: str) -> np.ndarray:
    """Indices of ``random_urdfs`` in a split: 'test' = index % 10 == 0, 'train' = the rest."""
    idx = np.arange(N_RANDOM_URDFS)
    if split == 'test':
        return idx[idx % 10 == 0]
    if split == 'train':
        return idx[idx % 10 != 0]
    if split == 'all':
        return idx
    raise UnknownObjectSetError(f'unknown object set {split!r}; choose from {OBJECT_SETS}')


def object_urdf(index: int) -> str:
    """Path of object ``index`` relative to ``pybullet_data.getDataPath()``."""
    if not 0 <= index < N_RANDOM_URDFS:
        raise UnknownObjectSetError(f'object index {index} outside 0..{N_RANDOM_URDFS - 1}')
    return f'random_urdfs/{index:03d}/{index:03d}.urdf'


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in the world; ``eye`` looks at ``target`` with ``up`` the image up."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_deg: float = 20.0
    near: float = 0.01
    far: float = 10.0

    @staticmethod
    def from_yaw_pitch(target: Sequence[float], distance: float, yaw: float, pitch: float,
                       fov_deg: float = 20.0) -> Camera:
        """Orbit camera as in pybullet's ``computeViewMatrixFromYawPitchRoll`` (z up)."""
        view = pb.computeViewMatrixFromYawPitchRoll(list(target), distance, yaw, pitch, 0.0, 2)
        cam_to_world = np.linalg.inv(np.asarray(view).reshape(4, 4).T)
        eye = cam_to_world[:3, 3]
        up = cam_to_world[:3, 1]
        return Camera(tuple(float(e) for e in eye), tuple(float(t) for t in target),
                      tuple(float(u) for u in up), fov_deg)

    def matrices(self, width: int, height: int) -> tuple[list[float], list[float]]:
        view = pb.computeViewMatrix(self.eye, self.target, self.up)
        proj = pb.computeProjectionMatrixFOV(self.fov_deg, width / height, self.near, self.far)
        return view, proj


@dataclass(frozen=True)
class SceneConfig:
    """Physics and layout constants of the scene (SI units, world frame z up)."""

    time_step: float = 1.0 / 240.0
    gravity: float = -10.0
    base_position: tuple[float, float, float] = (-0.1, 0.0, 0.07)
    tray_position: tuple[float, float, float] = (0.64, 0.075, -0.19)
    table_position: tuple[float, float, float] = (0.5, 0.0, -0.82)
    #: square the objects are dropped into and the gripper is kept inside (x, y bounds)
    workspace_low: tuple[float, float] = (0.40, -0.15)
    workspace_high: tuple[float, float] = (0.70, 0.15)
    drop_height: float = 0.15
    arm_force: float = 200.0
    #: joint speed cap (rad/s): slow enough that a descending gripper does not bat objects
    arm_max_velocity: float = 1.0
    #: finger closing force (N); the classic model's 2 N lets most objects slip out on the lift
    finger_force: float = 10.0
    finger_tip_force: float = 10.0
    #: the lift test of the classic task: an object counts as lifted above this world height
    lift_height: float = 0.2


class _Client:
    """Calls into pybullet with ``physicsClientId`` bound (what BulletClient does, for an id)."""

    def __init__(self, client: int) -> None:
        self.id = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(pb, name)
        if callable(attr):
            return functools.partial(attr, physicsClientId=self.id)
        return attr


class KukaScene:
    """KUKA iiwa + gripper, table, tray and a set of objects in one pybullet client.

    ``client``: a connected pybullet client id (``pb.connect(pb.DIRECT)``); the scene resets it.
    """

    def __init__(self, client: int, config: SceneConfig = SceneConfig()) -> None:
        self.config = config
        self.p = _Client(client)
        p = self.p
        p.resetSimulation()
        p.setAdditionalSearchPath(pybullet_data.getDataPath())
        p.setTimeStep(config.time_step)
        p.setGravity(0.0, 0.0, config.gravity)
        p.loadURDF('plane.urdf', [0.0, 0.0, -1.0])
        self.table = p.loadURDF('table/table.urdf', list(config.table_position))
        self.tray = p.loadURDF('tray/tray.urdf', list(config.tray_position), [0.0, 0.0, 1.0, 0.0])
        self.robot = p.loadSDF('kuka_iiwa/kuka_with_gripper2.sdf')[0]
        p.resetBasePositionAndOrientation(self.robot, list(config.base_position), [0, 0, 0, 1])
        info = [p.getJointInfo(self.robot, j) for j in range(p.getNumJoints(self.robot))]
        self._lower = np.array([i[8] for i in info[:7]])
        self._upper = np.array([i[9] for i in info[:7]])
        self._ranges = self._upper - self._lower
        self.tray_floor_z = p.getAABB(self.tray)[0][2] + 0.01
        self.objects: list[int] = []
        self.object_ids: list[int] = []   # random_urdfs index of each loaded object
        self.reset_robot()

    # ---- description ------------------------------------------------------------------
    @property
    def arm_joint_names(self) -> tuple[str, ...]:
        return ARM_JOINT_NAMES

    @property
    def finger_joint_names(self) -> tuple[str, ...]:
        return FINGER_JOINT_NAMES

    def arm_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper position limits (rad) of the 7 arm joints, as in the SDF."""
        return self._lower.copy(), self._upper.copy()

    @staticmethod
    def finger_limits() -> tuple[float, float]:
        """Finger joint command range (rad): closed .. open."""
        return FINGER_CLOSED, FINGER_OPEN

    # ---- state --------------------------------------------------------------------------
    def reset_robot(self, arm: Sequence[float] = HOME_ARM, yaw: float = 0.0,
                    fingers: float = FINGER_OPEN) -> None:
        """Teleport the arm (no dynamics) and hold it there with the position controllers."""
        p = self.p
        for j, q in zip(_ARM_SDF_INDICES, arm):
            p.resetJointState(self.robot, j, q)
        p.resetJointState(self.robot, _GRIPPER_YAW_INDEX, -yaw)
        p.resetJointState(self.robot, _LEFT_FINGER, -fingers)
        p.resetJointState(self.robot, _RIGHT_FINGER, fingers)
        p.resetJointState(self.robot, _LEFT_TIP, 0.0)
        p.resetJointState(self.robot, _RIGHT_TIP, 0.0)
        self.set_arm_targets(arm)
        self.set_gripper(fingers, yaw)

    def arm_positions(self) -> np.ndarray:
        states = self.p.getJointStates(self.robot, list(_ARM_SDF_INDICES))
        return np.array([s[0] for s in states])

    def arm_velocities(self) -> np.ndarray:
        states = self.p.getJointStates(self.robot, list(_ARM_SDF_INDICES))
        return np.array([s[1] for s in states])

    def finger_positions(self) -> np.ndarray:
        """Opening of the two finger joints, positive = open (left joint sign flipped)."""
        left, right = self.p.getJointStates(self.robot, [_LEFT_FINGER, _RIGHT_FINGER])
        return np.array([-left[0], right[0]])

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Flange position (m) and orientation quaternion (x, y, z, w) in the world."""
        state = self.p.getLinkState(self.robot, _EE_LINK, computeForwardKinematics=True)
        return np.array(state[4]), np.array(state[5])

    def fingertip_z(self) -> float:
        """Lowest fingertip height (m); what touches the tray first on a descent."""
        return min(self.p.getLinkState(self.robot, j, computeForwardKinematics=True)[4][2]
                   for j in (_LEFT_TIP, _RIGHT_TIP))

    def object_poses(self) -> np.ndarray:
        """(n, 7) position + quaternion (x, y, z, w) of every loaded object."""
        poses = [self.p.getBasePositionAndOrientation(o) for o in self.objects]
        return np.array([list(pos) + list(orn) for pos, orn in poses]).reshape(-1, 7)

    # ---- commands -----------------------------------------------------------------------
    def set_arm_targets(self, q: Sequence[float], max_velocity: float | None = None) -> None:
        """Joint position targets of the arm (POSITION_CONTROL, like a ros2_control robot)."""
        c = self.config
        speed = c.arm_max_velocity if max_velocity is None else max_velocity
        for j, target in zip(_ARM_SDF_INDICES, q):
            self.p.setJointMotorControl2(
                self.robot, j, pb.POSITION_CONTROL, targetPosition=float(target),
                targetVelocity=0.0, force=c.arm_force, maxVelocity=speed,
                positionGain=0.3, velocityGain=1.0)

    def set_gripper(self, opening: float, yaw: float = 0.0) -> None:
        """Finger opening (rad, :data:`FINGER_CLOSED`..:data:`FINGER_OPEN`) and gripper yaw."""
        c = self.config
        p = self.p
        p.setJointMotorControl2(self.robot, _GRIPPER_YAW_INDEX, pb.POSITION_CONTROL,
                                targetPosition=-yaw, force=c.arm_force)
        p.setJointMotorControl2(self.robot, _LEFT_FINGER, pb.POSITION_CONTROL,
                                targetPosition=-opening, force=c.finger_force)
        p.setJointMotorControl2(self.robot, _RIGHT_FINGER, pb.POSITION_CONTROL,
                                targetPosition=opening, force=c.finger_force * 1.25)
        for tip in (_LEFT_TIP, _RIGHT_TIP):
            p.setJointMotorControl2(self.robot, tip, pb.POSITION_CONTROL, targetPosition=0.0,
                                    force=c.finger_tip_force)

    def ik(self, position: Sequence[float]) -> np.ndarray:
        """Arm joints that put the flange at ``position`` pointing down (pybullet's IK)."""
        q = self.p.calculateInverseKinematics(
            self.robot, _EE_LINK, list(position), _DOWN, lowerLimits=list(self._lower),
            upperLimits=list(self._upper), jointRanges=list(self._ranges),
            restPoses=list(HOME_ARM), maxNumIterations=50)
        return np.array(q[:7])

    def move_ee(self, position: Sequence[float], yaw: float, opening: float,
                max_velocity: float | None = None) -> None:
        """Flange target by IK plus gripper command; the motion happens in :meth:`step`."""
        self.set_arm_targets(self.ik(position), max_velocity)
        self.set_gripper(opening, yaw)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.p.stepSimulation()

    # ---- objects ------------------------------------------------------------------------
    def clear_objects(self) -> None:
        for body in self.objects:
            self.p.removeBody(body)
        self.objects, self.object_ids = [], []

    def remove_object(self, k: int) -> None:
        self.p.removeBody(self.objects.pop(k))
        self.object_ids.pop(k)

    def load_objects(self, n: int, split: str, rng: np.random.Generator,
                     settle_steps: int = 150) -> list[int]:
        """Drop ``n`` distinct objects of ``split`` at random poses into the workspace.

        Replaces any objects already loaded; returns the ``random_urdfs`` indices chosen.
        Objects fall for ``settle_steps // n`` steps each, then ``settle_steps`` more.
        """
        pool = object_indices(split)
        if not 1 <= n <= len(pool):
            raise ValueError(f'n objects must be in 1..{len(pool)}, got {n}')
        self.clear_objects()
        chosen = rng.choice(pool, size=n, replace=False)
        lo, hi = np.array(self.config.workspace_low), np.array(self.config.workspace_high)
        for index in chosen:
            xy = lo + (hi - lo) * rng.random(2)
            angle = math.pi / 2 + math.pi * rng.random()
            orn = pb.getQuaternionFromEuler((0.0, 0.0, angle))
            body = self.p.loadURDF(object_urdf(int(index)),
                                   [xy[0], xy[1], self.config.drop_height], list(orn))
            self.objects.append(body)
            self.object_ids.append(int(index))
            # Settle each object before the next so they do not start interpenetrating.
            self.step(settle_steps // n + 1)
        self.step(settle_steps)
        return [int(i) for i in chosen]

    def lifted(self) -> list[int]:
        """Positions in :attr:`objects` of objects above ``config.lift_height``."""
        poses = self.object_poses()
        return [k for k in range(len(poses)) if poses[k, 2] > self.config.lift_height]

    def touching_robot(self) -> list[int]:
        """Positions in :attr:`objects` of objects in contact with any link of the robot."""
        return [k for k, o in enumerate(self.objects)
                if self.p.getContactPoints(bodyA=self.robot, bodyB=o)]

    def in_tray(self) -> list[int]:
        """Objects still resting low in the tray (not lifted, not fallen to the floor)."""
        return [int(k) for k in np.flatnonzero(self.in_tray_mask(self.object_poses()))]

    def in_tray_mask(self, poses: np.ndarray) -> np.ndarray:
        """Which of ``poses`` (from :meth:`object_poses`) rest low in the tray."""
        z = poses[:, 2]
        return (self.tray_floor_z - 0.05 < z) & (z < self.tray_floor_z + 0.15)

    # ---- camera -------------------------------------------------------------------------
    def render(self, camera: Camera, width: int, height: int,
               depth: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB (h, w, 3) uint8 and, if asked, depth (h, w) float32 in metres along the view."""
        view, proj = camera.matrices(width, height)
        flags = 0 if depth else pb.ER_NO_SEGMENTATION_MASK
        _, _, rgba, zbuf, _ = self.p.getCameraImage(
            width, height, view, proj, renderer=pb.ER_TINY_RENDERER, flags=flags)
        rgb = np.asarray(rgba, np.uint8).reshape(height, width, 4)[..., :3]
        if not depth:
            return rgb, None
        z = np.asarray(zbuf, np.float32).reshape(height, width)
        n, f = camera.near, camera.far
        metres = (f * n / (f - (f - n) * z)).astype(np.float32)
        return rgb, metres

    def render_masks(self, camera: Camera, width: int,
                     height: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB (h, w, 3) uint8 (the same pixels as :meth:`render`) and the body id seen at each
        pixel (h, w) int32, -1 where no body is."""
        view, proj = camera.matrices(width, height)
        _, _, rgba, _, seg = self.p.getCameraImage(
            width, height, view, proj, renderer=pb.ER_TINY_RENDERER)
        rgb = np.asarray(rgba, np.uint8).reshape(height, width, 4)[..., :3]
        return rgb, np.asarray(seg, np.int32).reshape(height, width)

    def unproject(self, camera: Camera, width: int, height: int, u: np.ndarray,
                  v: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """World points (n, 3) of pixels (u = column, v = row) at view-axis depth (m)."""
        view, proj = camera.matrices(width, height)
        view_m = np.asarray(view).reshape(4, 4).T     # pybullet matrices are column-major
        proj_m = np.asarray(proj).reshape(4, 4).T
        x_ndc = (2.0 * (np.asarray(u) + 0.5) / width) - 1.0
        y_ndc = 1.0 - (2.0 * (np.asarray(v) + 0.5) / height)
        # camera frame: looks down -z; a pixel's ray at depth d
        d = np.asarray(depth, float)
        x_cam = x_ndc * d / proj_m[0, 0]
        y_cam = y_ndc * d / proj_m[1, 1]
        pts = np.stack([x_cam, y_cam, -d, np.ones_like(d)], axis=-1)
        world = pts @ np.linalg.inv(view_m).T
        return world[..., :3]


def connect() -> int:
    """A new headless pybullet client (DIRECT: no GUI, no OpenGL)."""
    return pb.connect(pb.DIRECT)
