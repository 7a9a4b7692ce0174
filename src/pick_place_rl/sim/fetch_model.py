"""The gymnasium-robotics FetchPickAndPlace scene, rebuilt for joint position control.

The gym task moves the gripper with a mocap body welded to the gripper link (Cartesian control).
A real Fetch takes joint commands, so this module edits the same XML with ``mujoco.MjSpec``:
the mocap weld and mocap body go, a position actuator goes on each of the 7 arm joints, and the
robot's bodies get gravity compensation (the real arm's controllers compensate gravity too, and
without it a position servo sags by ``torque / kp``). Table, object, goal site, finger
actuators, joint order and therefore the ``qpos`` layout stay exactly those of the gym model, so
a gym state can be copied into this model slot by slot.
"""
from __future__ import annotations

from dataclasses import dataclass
import os

import mujoco

ARM_JOINTS = (
    'robot0:shoulder_pan_joint', 'robot0:shoulder_lift_joint', 'robot0:upperarm_roll_joint',
    'robot0:elbow_flex_joint', 'robot0:forearm_roll_joint', 'robot0:wrist_flex_joint',
    'robot0:wrist_roll_joint',
)
FINGER_JOINTS = ('robot0:r_gripper_finger_joint', 'robot0:l_gripper_finger_joint')
TORSO_JOINT = 'robot0:torso_lift_joint'
GRIP_SITE = 'robot0:grip'
ROBOT_ROOT_BODY = 'robot0:base_link'
OBJECT_JOINT = 'object0:joint'
OBJECT_SITE = 'object0'
GOAL_SITE = 'target0'
# Physics substeps per gym env step (FetchPickAndPlace-v4: n_substeps=20, timestep 2 ms).
GYM_SUBSTEPS = 20


def fetch_xml_path(task: str = 'pick_and_place') -> str:
    """Path of a gymnasium-robotics Fetch task XML (found from the installed package)."""
    import gymnasium_robotics
    root = os.path.dirname(gymnasium_robotics.__file__)
    path = os.path.join(root, 'envs', 'assets', 'fetch', f'{task}.xml')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'gymnasium-robotics Fetch XML not found: {path}')
    return path


@dataclass(frozen=True)
class ServoGains:
    """Position-servo gains of the arm joints (N m / rad, N m s / rad, N m).

    Stiff enough that the gripper follows IK targets set 25 times a second at least as closely
    as the gym task's mocap weld follows its targets (test_sim_driver_core measures both:
    random 5 cm steps leave ~11 mm mean error here vs ~21 mm in the gym env). kv is near
    critical damping for the ~1.5 kg m^2 effective inertia of the arm joints (armature 1).
    """
    kp: float = 100000.0
    kv: float = 700.0
    force_limit: float = 10000.0


def build_fetch_spec(gains: ServoGains = ServoGains(), task: str = 'pick_and_place'
                     ) -> mujoco.MjSpec:
    """The edited scene as an ``MjSpec`` (compile with ``spec.compile()``)."""
    spec = mujoco.MjSpec.from_file(fetch_xml_path(task))
    for eq in list(spec.equalities):
        if eq.type == mujoco.mjtEq.mjEQ_WELD:
            spec.delete(eq)
    mocap = spec.body('robot0:mocap')
    if mocap is not None:
        spec.delete(mocap)
    for body in spec.body(ROBOT_ROOT_BODY).find_all(mujoco.mjtObj.mjOBJ_BODY):
        body.gravcomp = 1.0
    spec.body(ROBOT_ROOT_BODY).gravcomp = 1.0
    # The gym's initial torso height (1.3 mm) lies below this joint's lower limit (38.6 mm), so
    # the limit constraint lifts the torso a few mm per second; the real Fetch's limit is 0.
    torso = spec.joint(TORSO_JOINT)
    torso.range = [0.0, torso.range[1]]
    for name in ARM_JOINTS:
        joint = spec.joint(name)
        act = spec.add_actuator()
        act.name = name
        act.target = name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        # The servo's velocity gain goes into the joint damping: MuJoCo's Euler integrator
        # treats joint damping implicitly (actuator kv it does not), so stiff gains stay stable.
        act.set_to_position(kp=gains.kp)
        joint.damping = joint.damping + gains.kv
        if joint.range[0] < joint.range[1] and joint.limited != mujoco.mjtLimited.mjLIMITED_FALSE:
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.ctrlrange = joint.range
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-gains.force_limit, gains.force_limit]
    return spec


def build_fetch_model(gains: ServoGains = ServoGains(), task: str = 'pick_and_place'
                      ) -> mujoco.MjModel:
    """Compiled joint-position-controlled Fetch scene."""
    return build_fetch_spec(gains, task).compile()
