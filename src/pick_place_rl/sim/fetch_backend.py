"""MuJoCo Fetch backend of the sim driver: the FetchPickAndPlace scene under joint control.

The scene is ``fetch_model``'s edit of the gym XML (arm position servos instead of the mocap
weld). Resets copy the gym env's own initial state for a seed (``fetch_task``), so the object and
goal match ``gym.make('FetchPickAndPlace-v4').reset(seed=s)`` and success through ROS can be
compared with success in the training env, seed by seed.

Gripper: the two finger joints are position-controlled as in the gym model (target opening per
finger, metres; the actuator range is 0..0.2 m, the joint stops at 0.05 m). The gym action
``a`` in [-1, 1] corresponds to the target ``finger_position + a`` (see README).
"""
from __future__ import annotations

import mujoco
import numpy as np

from pick_place_rl.sim import fetch_model
from pick_place_rl.sim.backend import CameraImage, EpisodeInfo, GL_TO_OPTICAL, quat_xyzw
from pick_place_rl.sim.fetch_task import FetchTaskSampler

#: Joints reported besides arm and gripper (the torso and head of the Fetch).
EXTRA_JOINTS = ('robot0:torso_lift_joint', 'robot0:head_pan_joint', 'robot0:head_tilt_joint')


class FetchBackend:
    """FetchPickAndPlace with position-controlled arm; implements ``backend.SimBackend``."""

    def __init__(self, tick_substeps: int = 5, gains: fetch_model.ServoGains | None = None,
                 camera: str = 'external_camera_0') -> None:
        if tick_substeps < 1:
            raise ValueError(f'tick_substeps must be >= 1, got {tick_substeps}')
        self.model = fetch_model.build_fetch_model(gains or fetch_model.ServoGains())
        self.data = mujoco.MjData(self.model)
        self.tasks = FetchTaskSampler()
        self.tick_substeps = tick_substeps
        self.tick = tick_substeps * float(self.model.opt.timestep)
        self.arm_joint_names = fetch_model.ARM_JOINTS
        self.gripper_joint_names = fetch_model.FINGER_JOINTS
        self.joint_names = (*EXTRA_JOINTS, *self.arm_joint_names, *self.gripper_joint_names)
        m = self.model
        self._qadr = np.array([m.joint(n).qposadr[0] for n in self.joint_names])
        self._vadr = np.array([m.joint(n).dofadr[0] for n in self.joint_names])
        self._arm_qadr = np.array([m.joint(n).qposadr[0] for n in self.arm_joint_names])
        self._arm_act = self._actuators_for(self.arm_joint_names)
        self._grip_act = self._actuators_for(self.gripper_joint_names)
        self._grip_qadr = np.array([m.joint(n).qposadr[0] for n in self.gripper_joint_names])
        arm_dofs = np.array([m.joint(n).dofadr[0] for n in self.arm_joint_names])
        kp = m.actuator_gainprm[self._arm_act, 0]
        kv = -m.actuator_biasprm[self._arm_act, 2]   # 0 here: fetch_model damps the joints
        self.velocity_lead = (kv + m.dof_damping[arm_dofs]) / kp
        self._object_body = m.body(fetch_model.OBJECT_SITE).id
        self._object_site = m.site(fetch_model.OBJECT_SITE).id
        self._object_qadr = m.joint(fetch_model.OBJECT_JOINT).qposadr[0]
        self._goal_site = m.site(fetch_model.GOAL_SITE).id
        self._goal = np.zeros(3)
        if camera not in [m.camera(i).name for i in range(m.ncam)]:
            cams = [m.camera(i).name for i in range(m.ncam)]
            raise ValueError(f'camera {camera!r} not in the Fetch model; cameras: {cams}')
        self.camera = camera
        self._renderer: mujoco.Renderer | None = None
        self.reset(seed=0)

    def _actuators_for(self, joints: tuple[str, ...]) -> np.ndarray:
        m = self.model
        ids = []
        for name in joints:
            jid = m.joint(name).id
            act = [a for a in range(m.nu) if m.actuator_trnid[a, 0] == jid]
            if len(act) != 1:
                raise ValueError(f'joint {name} has {len(act)} actuators, expected 1')
            ids.append(act[0])
        return np.array(ids)

    # ---- description ------------------------------------------------------------------
    def arm_limits(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.model
        lower, upper = [], []
        for name in self.arm_joint_names:
            j = m.joint(name).id
            if m.jnt_limited[j]:
                lower.append(m.jnt_range[j, 0])
                upper.append(m.jnt_range[j, 1])
            else:
                lower.append(-np.inf)
                upper.append(np.inf)
        return np.array(lower), np.array(upper)

    def gripper_limits(self) -> tuple[np.ndarray, np.ndarray]:
        rng = self.model.actuator_ctrlrange[self._grip_act]
        return rng[:, 0].copy(), rng[:, 1].copy()

    # ---- episodes -----------------------------------------------------------------------
    def _apply(self, qpos: np.ndarray, qvel: np.ndarray, goal: np.ndarray) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        # As after the gym's reset: arm servos hold the initial pose, finger targets at 0.
        self.data.ctrl[:] = 0.0
        self.data.ctrl[self._arm_act] = qpos[self._arm_qadr]
        self._set_goal(goal)
        mujoco.mj_forward(self.model, self.data)

    def _set_goal(self, goal: np.ndarray) -> None:
        self._goal = np.array(goal, dtype=float)
        body = self.model.site_bodyid[self._goal_site]
        # The goal site hangs off a static, unrotated world body (as the gym env assumes).
        self.model.site_pos[self._goal_site] = self._goal - self.model.body_pos[body]

    def reset(self, seed: int | None = None, object_xy: np.ndarray | None = None,
              goal: np.ndarray | None = None) -> EpisodeInfo:
        """Gym initial state for ``seed`` (or the sampler's next), optionally re-placed."""
        if (object_xy is None) != (goal is None):
            raise ValueError('give both object_xy and goal, or neither')
        if object_xy is None:
            state = self.tasks.sample(seed)
        else:
            state = self.tasks.place(object_xy, goal)
        self._apply(state.qpos, state.qvel, state.goal)
        return EpisodeInfo(self._goal.copy(), self.object_pose()[0], state.seed)

    def spawn_objects(self, seed: int | None = None) -> EpisodeInfo:
        """New object placement and goal (from the gym sampler) without moving the arm."""
        state = self.tasks.sample(seed)
        adr = self._object_qadr
        self.data.qpos[adr:adr + 7] = state.qpos[adr:adr + 7]
        self.data.qvel[self.model.joint(fetch_model.OBJECT_JOINT).dofadr[0]:][:6] = 0.0
        self._set_goal(state.goal)
        mujoco.mj_forward(self.model, self.data)
        return EpisodeInfo(self._goal.copy(), self.object_pose()[0], state.seed)

    # ---- control ------------------------------------------------------------------------
    def set_arm_targets(self, q: np.ndarray, qd: np.ndarray | None = None) -> None:
        """Servo set points, led by ``velocity_lead * qd``.

        A position servo ``kp (u - q) - (kv + damping) q'`` trails a set point moving at ``qd``
        by ``(kv + damping) / kp * qd``; setting ``u = q + that * qd`` (velocity feed-forward)
        removes the steady lag, as joint_trajectory_controller's feed-forward term does.
        """
        if qd is not None:
            q = q + self.velocity_lead * qd
        self.data.ctrl[self._arm_act] = q

    def set_gripper_targets(self, g: np.ndarray) -> None:
        self.data.ctrl[self._grip_act] = g

    def gripper_targets(self) -> np.ndarray:
        return self.data.ctrl[self._grip_act].copy()

    def step(self) -> None:
        mujoco.mj_step(self.model, self.data, nstep=self.tick_substeps)

    # ---- state --------------------------------------------------------------------------
    def arm_positions(self) -> np.ndarray:
        return self.data.qpos[self._arm_qadr].copy()

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, velocities and actuator/passive efforts of :attr:`joint_names`."""
        effort = self.data.qfrc_actuator[self._vadr] + self.data.qfrc_passive[self._vadr]
        return self.data.qpos[self._qadr].copy(), self.data.qvel[self._vadr].copy(), effort

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Object site position (m) and body orientation (x, y, z, w), world frame."""
        w, x, y, z = self.data.xquat[self._object_body]
        return self.data.site_xpos[self._object_site].copy(), np.array([x, y, z, w])

    def grip_position(self) -> np.ndarray:
        return self.data.site_xpos[self.model.site(fetch_model.GRIP_SITE).id].copy()

    def goal(self) -> np.ndarray:
        return self._goal.copy()

    # ---- camera -------------------------------------------------------------------------
    def render(self, width: int, height: int) -> CameraImage:
        """RGB and depth from :attr:`camera` (MuJoCo offscreen; MUJOCO_GL=egl headless)."""
        r = self._renderer
        if r is None or (r.width, r.height) != (width, height):
            if r is not None:
                r.close()
            self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
            self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
            r = self._renderer = mujoco.Renderer(self.model, height, width)
        r.update_scene(self.data, camera=self.camera)
        rgb = r.render().copy()
        r.enable_depth_rendering()
        depth = r.render().astype(np.float32)
        r.disable_depth_rendering()
        cam = self.model.camera(self.camera).id
        fovy = np.deg2rad(self.model.cam_fovy[cam])
        f = 0.5 * height / np.tan(0.5 * fovy)
        rot = self.data.cam_xmat[cam].reshape(3, 3) @ GL_TO_OPTICAL
        # ROS pixel convention: integer coordinates at pixel centres.
        return CameraImage(rgb, depth, f, f, 0.5 * width - 0.5, 0.5 * height - 0.5, self.camera,
                           self.data.cam_xpos[cam].copy(), quat_xyzw(rot))

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.tasks.close()
