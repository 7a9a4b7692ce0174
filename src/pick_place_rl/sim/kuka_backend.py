"""PyBullet KUKA backend of the sim driver: iiwa + gripper over a tray of procedural objects.

Built on ``kuka_scene`` (the grasping scene shared with the grasp-learning environment). The
arm controller has the 7 iiwa joints, as on a real iiwa under ros2_control; the gripper's own
yaw joint is held at 0 (the real arm turns the tool with joint 7). The gripper takes one target
per finger joint in that joint's own sign (left closes towards 0 from below, right from above);
the scene's gripper closes both fingers together, so it gets the mean opening.

Physics runs at 1/300 s so that a 10 ms driver tick is a whole number of steps (the classic
task's 1/240 s is not).
"""
from __future__ import annotations

import numpy as np
import pybullet as pb

from pick_place_rl.sim import kuka_scene
from pick_place_rl.sim.backend import CameraImage, EpisodeInfo, GL_TO_OPTICAL, quat_xyzw

#: The classic KUKA diverse-object camera (look-at, distance, yaw, pitch, vertical fov).
DEFAULT_CAMERA = kuka_scene.Camera.from_yaw_pitch((0.23, 0.2, 0.54), 1.0, 245.0, -56.0, 20.0)
#: Named cameras (``camera_name``): the classic task's oblique view, and the pixel-wise grasp
#: task's straight-down view that the grasp net is trained on.
CAMERAS = ('classic', 'overhead')
PHYSICS_STEP = 1.0 / 300.0
STEPS_PER_TICK = 3


class KukaBackend:
    """KUKA iiwa grasping scene; implements ``backend.SimBackend``."""

    def __init__(self, object_set: str = 'train', num_objects: int = 5,
                 camera: kuka_scene.Camera | str = DEFAULT_CAMERA, seed: int = 0) -> None:
        if isinstance(camera, str) and camera not in CAMERAS:
            raise ValueError(f'unknown KUKA camera {camera!r}; choose from {CAMERAS} '
                             '(empty = classic)')
        kuka_scene.object_indices(object_set)  # validates the split name
        if num_objects < 1:
            raise ValueError(f'num_objects must be >= 1, got {num_objects}')
        self.client = kuka_scene.connect()
        self.scene = kuka_scene.KukaScene(
            self.client, kuka_scene.SceneConfig(time_step=PHYSICS_STEP))
        self.object_set = object_set
        self.num_objects = num_objects
        if camera == 'overhead':
            from pick_place_rl.sim.kuka_grasp_env import overhead_camera
            camera = overhead_camera(self.scene)
        elif camera == 'classic':
            camera = DEFAULT_CAMERA
        self.camera = camera
        self.tick = STEPS_PER_TICK * PHYSICS_STEP
        self.arm_joint_names = kuka_scene.ARM_JOINT_NAMES
        self.gripper_joint_names = kuka_scene.FINGER_JOINT_NAMES
        p, robot = self.scene.p, self.scene.robot
        sdf_names = {p.getJointInfo(robot, j)[1].decode(): j for j in range(p.getNumJoints(robot))}
        extra = (kuka_scene.GRIPPER_YAW_JOINT, *kuka_scene.FINGER_TIP_JOINT_NAMES)
        self.joint_names = (*self.arm_joint_names, *self.gripper_joint_names, *extra)
        # The SDF names the arm joints J0..J6; the scene reports them as lbr_iiwa_joint_1..7.
        self._indices = list(range(len(self.arm_joint_names))) + [
            sdf_names[n] for n in (*self.gripper_joint_names, *extra)]
        self._finger_signs = np.array([-1.0, 1.0])   # left joint closes from below
        self._rng = np.random.default_rng(seed)
        self._gripper = np.zeros(2)
        self._goal = np.zeros(0)
        self.reset(seed=seed)

    # ---- description ------------------------------------------------------------------
    def arm_limits(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scene.arm_limits()

    def gripper_limits(self) -> tuple[np.ndarray, np.ndarray]:
        closed, opened = kuka_scene.FINGER_CLOSED, kuka_scene.FINGER_OPEN
        ends = np.array([[closed, opened], [closed, opened]]) * self._finger_signs[:, None]
        return ends.min(axis=1), ends.max(axis=1)

    # ---- episodes -----------------------------------------------------------------------
    def reset(self, seed: int | None = None, object_xy: np.ndarray | None = None,
              goal: np.ndarray | None = None) -> EpisodeInfo:
        """Arm home, fingers open, ``num_objects`` new objects (seeded) dropped into the tray.

        ``object_xy`` drops the first object there instead; ``goal`` (3,) is only reported.
        Bad values raise ValueError before anything changes.
        """
        xy = None if object_xy is None else np.asarray(object_xy, dtype=float)
        if xy is not None and (xy.shape != (2,) or not np.all(np.isfinite(xy))):
            raise ValueError(f'object_xy must be 2 finite numbers, got {xy.tolist()}')
        new_goal = np.zeros(0) if goal is None else np.asarray(goal, dtype=float)
        if new_goal.shape not in ((0,), (3,)) or not np.all(np.isfinite(new_goal)):
            raise ValueError(f'goal must be 3 finite numbers, got {new_goal.tolist()}')
        self.scene.reset_robot()
        self._gripper = kuka_scene.FINGER_OPEN * self._finger_signs
        info = self.spawn_objects(seed)
        if xy is not None:
            body = self.scene.objects[0]
            _, orn = self.scene.p.getBasePositionAndOrientation(body)
            self.scene.p.resetBasePositionAndOrientation(
                body, [xy[0], xy[1], self.scene.config.drop_height], orn)
            self.scene.step(100)
        self._goal = new_goal
        return EpisodeInfo(self._goal.copy(), self.object_pose()[0], info.seed,
                           info.details)

    def spawn_objects(self, seed: int | None = None) -> EpisodeInfo:
        """Replace the objects with ``num_objects`` new ones of the split (seeded if given)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        chosen = self.scene.load_objects(self.num_objects, self.object_set, self._rng)
        return EpisodeInfo(self._goal.copy(), self.object_pose()[0], seed,
                           {'objects': chosen, 'object_set': self.object_set})

    # ---- control ------------------------------------------------------------------------
    def set_arm_targets(self, q: np.ndarray, qd: np.ndarray | None = None) -> None:
        """Position targets; PyBullet's position motors track them without a feed-forward."""
        self.scene.set_arm_targets(q)

    def set_gripper_targets(self, g: np.ndarray) -> None:
        self._gripper = np.asarray(g, dtype=float).copy()
        opening = float(np.mean(self._gripper * self._finger_signs))
        self.scene.set_gripper(opening, 0.0)

    def gripper_targets(self) -> np.ndarray:
        return self._gripper.copy()

    def step(self) -> None:
        self.scene.step(STEPS_PER_TICK)

    # ---- state --------------------------------------------------------------------------
    def arm_positions(self) -> np.ndarray:
        return self.scene.arm_positions()

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        states = self.scene.p.getJointStates(self.scene.robot, self._indices)
        return (np.array([s[0] for s in states]), np.array([s[1] for s in states]),
                np.array([s[3] for s in states]))

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Pose of the first object (position m, quaternion x, y, z, w), world frame."""
        if not self.scene.objects:
            return np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0])
        pos, orn = self.scene.p.getBasePositionAndOrientation(self.scene.objects[0])
        return np.array(pos), np.array(orn)

    def object_poses(self) -> np.ndarray:
        """(n, 7) position + quaternion (x, y, z, w) of every object in the scene."""
        return self.scene.object_poses()

    def goal(self) -> np.ndarray:
        return self._goal.copy()

    # ---- camera -------------------------------------------------------------------------
    def render(self, width: int, height: int) -> CameraImage:
        rgb, depth = self.scene.render(self.camera, width, height, depth=True)
        f = 0.5 * height / np.tan(np.deg2rad(self.camera.fov_deg) / 2)
        view, _ = self.camera.matrices(width, height)
        cam_to_world = np.linalg.inv(np.asarray(view).reshape(4, 4).T)  # column-major
        rot = cam_to_world[:3, :3] @ GL_TO_OPTICAL
        # ROS pixel convention: integer coordinates at pixel centres.
        return CameraImage(rgb, depth, f, f, 0.5 * width - 0.5, 0.5 * height - 0.5, 'camera',
                           cam_to_world[:3, 3].copy(), quat_xyzw(rot))

    def close(self) -> None:
        if self.client is not None and pb.isConnected(self.client):
            pb.disconnect(self.client)
        self.client = None
