"""Write ``urdf/fetch.urdf`` from the MuJoCo Fetch model itself, so FK agrees by construction.

The exporter walks the robot's body tree of a compiled ``MjModel``: every body becomes a link,
every exported hinge / slide joint a revolute / continuous / prismatic joint, and every body
whose joints are not exported (the base slides, fixed for the task) a fixed joint whose origin is
taken at the given ``qpos``. Sites listed in ``sites`` become fixed child links (the gripper site
``robot0:grip`` is the end-effector frame). Only kinematics and inertia are written: the meshes
belong to gymnasium-robotics and are not referenced.

Run ``python -m pick_place_rl.sim.fetch_urdf --out urdf/fetch.urdf`` to regenerate the file.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from xml.dom import minidom
import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from pick_place_rl.sim import fetch_model

# Velocity limits of the real Fetch arm (rad/s, from its published URDF); MuJoCo has none.
FETCH_VELOCITY_LIMITS = {
    'robot0:shoulder_pan_joint': 1.256, 'robot0:shoulder_lift_joint': 1.454,
    'robot0:upperarm_roll_joint': 1.571, 'robot0:elbow_flex_joint': 1.521,
    'robot0:forearm_roll_joint': 1.571, 'robot0:wrist_flex_joint': 2.268,
    'robot0:wrist_roll_joint': 2.268,
}


def _fmt(values: Sequence[float]) -> str:
    return ' '.join(f'{v:.9g}' for v in values)


def _rpy(rot: np.ndarray) -> np.ndarray:
    """URDF roll-pitch-yaw (R = Rz(yaw) Ry(pitch) Rx(roll)) of a rotation matrix."""
    pitch = np.arctan2(-rot[2, 0], np.hypot(rot[0, 0], rot[1, 0]))
    if np.isclose(abs(pitch), np.pi / 2, atol=1e-9):
        roll = 0.0
        yaw = np.arctan2(-rot[0, 1], rot[1, 1])
    else:
        roll = np.arctan2(rot[2, 1], rot[2, 2])
        yaw = np.arctan2(rot[1, 0], rot[0, 0])
    return np.array([roll, pitch, yaw])


def _quat_mat(quat: np.ndarray) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=float))
    return mat.reshape(3, 3)


def _axis_angle_mat(axis: np.ndarray, angle: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, np.asarray(axis, dtype=float), float(angle))
    return _quat_mat(quat)


def _origin(parent: ET.Element, pos: np.ndarray, rot: np.ndarray) -> None:
    ET.SubElement(parent, 'origin', xyz=_fmt(pos), rpy=_fmt(_rpy(rot)))


def _inertial(link: ET.Element, model: mujoco.MjModel, body: int) -> None:
    mass = float(model.body_mass[body])
    if mass <= 0.0:
        return
    inertial = ET.SubElement(link, 'inertial')
    _origin(inertial, model.body_ipos[body], _quat_mat(model.body_iquat[body]))
    ET.SubElement(inertial, 'mass', value=f'{mass:.9g}')
    ixx, iyy, izz = model.body_inertia[body]
    ET.SubElement(inertial, 'inertia', ixx=f'{ixx:.9g}', iyy=f'{iyy:.9g}', izz=f'{izz:.9g}',
                  ixy='0', ixz='0', iyz='0')


def mujoco_to_urdf(model: mujoco.MjModel, qpos: np.ndarray, root_body: str,
                   movable_joints: Sequence[str], sites: Sequence[str], robot_name: str,
                   velocity_limits: Mapping[str, float] | None = None,
                   default_velocity: float = 2.0) -> str:
    """URDF text of the subtree under ``root_body``, attached to a ``world`` link.

    Joints in ``movable_joints`` keep their MuJoCo names and angle convention (the URDF angle
    equals MuJoCo's ``qpos``, also for joints with a non-zero ``ref``); all other joints are
    frozen at ``qpos``.
    """
    movable = set(movable_joints)
    velocity_limits = velocity_limits or {}
    data = mujoco.MjData(model)
    # Pose the exported joints at their reference (body placement as written in the model) and
    # the frozen ones at qpos: then parent-to-child transforms are the URDF joint origins.
    q_ref = np.array(qpos, dtype=float)
    for name in movable:
        adr = model.joint(name).qposadr[0]
        q_ref[adr] = model.qpos0[adr]
    data.qpos[:] = q_ref
    mujoco.mj_kinematics(model, data)

    def pose(body: int) -> tuple[np.ndarray, np.ndarray]:
        return data.xpos[body].copy(), data.xmat[body].reshape(3, 3).copy()

    root = ET.Element('robot', name=robot_name)
    ET.SubElement(root, 'link', name='world')
    root_id = model.body(root_body).id
    order = [root_id] + [b for b in range(model.nbody)
                         if b != root_id and _is_descendant(model, b, root_id)]
    for body in order:
        name = model.body(body).name
        link = ET.SubElement(root, 'link', name=name)
        _inertial(link, model, body)
        parent = model.body_parentid[body] if body != root_id else 0
        p_pos, p_rot = pose(parent)
        c_pos, c_rot = pose(body)
        rel_pos = p_rot.T @ (c_pos - p_pos)
        rel_rot = p_rot.T @ c_rot
        joints = [j for j in range(model.body_jntadr[body],
                                   model.body_jntadr[body] + model.body_jntnum[body])]
        exported = [j for j in joints if model.joint(j).name in movable]
        if len(exported) > 1:
            raise ValueError(f'body {name} has {len(exported)} movable joints; URDF allows one')
        parent_name = 'world' if body == root_id else model.body(parent).name
        if not exported:
            joint = ET.SubElement(root, 'joint', name=f'{name}_fixed', type='fixed')
            ET.SubElement(joint, 'parent', link=parent_name)
            ET.SubElement(joint, 'child', link=name)
            _origin(joint, rel_pos, rel_rot)
            continue
        j = exported[0]
        if not np.allclose(model.jnt_pos[j], 0.0):
            raise ValueError(f'joint {model.joint(j).name} is offset from its body frame')
        jtype = model.jnt_type[j]
        axis = model.jnt_axis[j]
        ref = float(model.qpos0[model.jnt_qposadr[j]])
        if jtype == mujoco.mjtJoint.mjJNT_HINGE:
            # URDF angle = MuJoCo qpos: rotate the origin back by the joint's reference angle.
            rel_rot = rel_rot @ _axis_angle_mat(axis, -ref)
            kind = 'revolute' if model.jnt_limited[j] else 'continuous'
        elif jtype == mujoco.mjtJoint.mjJNT_SLIDE:
            rel_pos = rel_pos - rel_rot @ (axis * ref)
            kind = 'prismatic'
        else:
            raise ValueError(f'joint {model.joint(j).name}: only hinge and slide are exported')
        jname = model.joint(j).name
        joint = ET.SubElement(root, 'joint', name=jname, type=kind)
        ET.SubElement(joint, 'parent', link=parent_name)
        ET.SubElement(joint, 'child', link=name)
        _origin(joint, rel_pos, rel_rot)
        ET.SubElement(joint, 'axis', xyz=_fmt(axis))
        velocity = velocity_limits.get(jname, default_velocity)
        effort = _effort(model, j)
        if kind == 'continuous':
            ET.SubElement(joint, 'limit', effort=f'{effort:.9g}', velocity=f'{velocity:.9g}')
        else:
            lo, hi = model.jnt_range[j]
            ET.SubElement(joint, 'limit', lower=f'{lo:.9g}', upper=f'{hi:.9g}',
                          effort=f'{effort:.9g}', velocity=f'{velocity:.9g}')
    for site_name in sites:
        site = model.site(site_name)
        body = int(site.bodyid[0])
        link = ET.SubElement(root, 'link', name=site_name)
        joint = ET.SubElement(root, 'joint', name=f'{site_name}_fixed', type='fixed')
        ET.SubElement(joint, 'parent', link=model.body(body).name)
        ET.SubElement(joint, 'child', link=site_name)
        _origin(joint, model.site_pos[site.id], _quat_mat(model.site_quat[site.id]))
        del link
    text = ET.tostring(root, encoding='unicode')
    return minidom.parseString(text).toprettyxml(indent='  ')


def _is_descendant(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body != 0:
        body = model.body_parentid[body]
        if body == ancestor:
            return True
    return False


def _effort(model: mujoco.MjModel, joint: int) -> float:
    for act in range(model.nu):
        if (model.actuator_trntype[act] == mujoco.mjtTrn.mjTRN_JOINT
                and model.actuator_trnid[act, 0] == joint and model.actuator_forcelimited[act]):
            return float(np.max(np.abs(model.actuator_forcerange[act])))
    return 1000.0


def fetch_urdf_text() -> str:
    """URDF of the joint-controlled Fetch, frozen joints at the gym task's initial state."""
    from pick_place_rl.sim.fetch_task import FetchTaskSampler
    model = fetch_model.build_fetch_model()
    qpos = FetchTaskSampler().initial_qpos
    # The torso stays frozen (at the task's 1.3 mm): it never moves in the task, and a URDF
    # torso joint would make every arm FK depend on a value users must remember to pass.
    movable = ('robot0:head_pan_joint', 'robot0:head_tilt_joint', *fetch_model.ARM_JOINTS,
               *fetch_model.FINGER_JOINTS)
    text = mujoco_to_urdf(model, qpos, fetch_model.ROBOT_ROOT_BODY, movable,
                          [fetch_model.GRIP_SITE], 'fetch', FETCH_VELOCITY_LIMITS)
    header = ('<!-- Generated by `python -m pick_place_rl.sim.fetch_urdf` from the '
              'gymnasium-robotics FetchPickAndPlace MuJoCo model. Do not edit by hand. -->\n')
    return text.replace('?>\n', '?>\n' + header, 1)


def write_urdf_cli(argv: list[str] | None, description: str, default_out: str,
                   make_text: Callable[[], str]) -> int:
    """``--out PATH``: write a generated URDF (the command line of each generator module)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--out', type=Path, default=Path(default_out))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(make_text())
    print(f'wrote {args.out}')
    return 0


def main(argv: list[str] | None = None) -> int:
    return write_urdf_cli(argv, __doc__.splitlines()[0], 'urdf/fetch.urdf', fetch_urdf_text)


if __name__ == '__main__':
    raise SystemExit(main())
