"""Success of a pick-and-place policy, seed by seed, in-process (no ROS).

Two in-process references for the closed ROS loop of ``bench/bench_policy.py``:

``gym_success``        the policy in the training env (FetchPickAndPlace-v4, mocap control);
``joint_sim_success``  the policy through ``PickPlaceRunner`` (FK observation, IK, velocity
                       limits) on the joint-controlled scene the sim driver runs
                       (``FetchBackend`` + ``DriverCore``, same trajectory controller), in
                       lock-step, exactly the loop the ROS nodes run across processes.

The first minus the second is the cost of joint control; the second minus the ROS result is the
cost of the transport (which should be zero in lock-step mode).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pick_place_rl.robot.cartesian_control import (
    CartesianController,
    CartesianParams,
    urdf_velocity_limits,
)
from pick_place_rl.robot.fetch_observation import (
    FetchObservationBuilder,
    ObjectVelocityEstimator,
    quat_to_matrix,
)
from pick_place_rl.robot.kinematics import ArmKinematics
from pick_place_rl.robot.policy_runner import PickPlaceRunner, RobotSample, StepCommand
from pick_place_rl.robot.safety import joints_by_name, Workspace
from pick_place_rl.robot.trajectory import TrajectoryCommand
from pick_place_rl.sim import fetch_model

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]
ENV_ID = 'FetchPickAndPlace-v4'
#: The Fetch gripper held pointing down, as the gym's mocap does (x, y, z, w).
FETCH_EE_ORIENTATION = (0.0, 0.70710678, 0.0, 0.70710678)


def scripted_pick_place(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """A hand-written FetchPickAndPlace controller acting on the 25-dim observation.

    Hover over the cube with the fingers open, descend, close, carry the cube to the goal. It
    solves the gym task on nearly every seed, so it checks the Cartesian seam (observation,
    action semantics, IK, joint control) independently of any training run.
    """
    grip, obj = obs[0:3], obs[3:6]
    rel = obj - grip
    opening = obs[9] + obs[10]
    action = np.zeros(4)
    if np.linalg.norm(rel) < 0.02 and 0.03 < opening < 0.06:      # holding the cube
        action[:3], action[3] = (np.asarray(goal) - obj) * 20.0, -1.0
    elif np.linalg.norm(rel[:2]) > 0.012:                           # go above it
        action[:3], action[3] = (obj + np.array([0.0, 0.0, 0.06]) - grip) * 20.0, 1.0
    elif rel[2] < -0.008:                                           # descend, open
        action[:3], action[3] = rel * 20.0, 1.0
    else:                                                           # close on it
        action[:3], action[3] = rel * 20.0, -1.0
    return np.clip(action, -1.0, 1.0)


def gym_success(policy: Policy, seeds: Sequence[int]) -> list[bool]:
    """Success at the last step of each seeded episode in the training env."""
    from pick_place_rl.sim.registry import make_env
    env = make_env(ENV_ID)
    out = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=int(seed))
            info: dict = {}
            done = False
            while not done:
                obs, _, term, trunc, info = env.step(
                    policy(obs['observation'], obs['desired_goal']))
                done = term or trunc
            out.append(bool(info['is_success']))
    finally:
        env.close()
    return out


def fetch_runner(urdf: Path, policy: Policy | None, period: float = 0.04,
                 workspace: Workspace | None = None, velocity_scale: float = 1.0
                 ) -> PickPlaceRunner:
    """The runner with the policy node's Fetch defaults (config/fetch_policy.yaml)."""
    kin = ArmKinematics(urdf, fetch_model.ARM_JOINTS, fetch_model.GRIP_SITE)
    controller = CartesianController(kin, urdf_velocity_limits(kin), period, (0.0, 0.0),
                                     (0.2, 0.2), quat_to_matrix(FETCH_EE_ORIENTATION),
                                     CartesianParams(velocity_scale=velocity_scale))
    ws = workspace or Workspace((1.05, 0.40, 0.38), (1.65, 1.10, 0.95))
    return PickPlaceRunner(FetchObservationBuilder(kin), controller, ws, policy=policy)


def joint_sim_episodes(policy: Policy, seeds: Sequence[int], urdf: Path, period: float = 0.04,
                       on_command: Callable[[int, StepCommand], None] | None = None,
                       velocity_scale: float = 1.0) -> list[dict]:
    """Episodes through the runner on the joint-controlled scene, in lock-step.

    Returns per seed: ``seed``, ``success``, final object-goal ``distance`` (m) and ``steps``;
    ``on_command(seed, command)`` sees every command (to compare with the ROS loop's).
    """
    from pick_place_rl.sim.backend import DriverCore
    from pick_place_rl.sim.fetch_backend import FetchBackend
    backend = FetchBackend()
    core = DriverCore(backend, cmd_timeout=0.5)
    runner = fetch_runner(urdf, policy, period, velocity_scale=velocity_scale)
    wanted = (*fetch_model.ARM_JOINTS, *fetch_model.FINGER_JOINTS)
    n_arm = len(fetch_model.ARM_JOINTS)
    out = []
    try:
        for goal_id, seed in enumerate(seeds, 1):
            info = core.reset(seed=int(seed))
            status = runner.start(np.asarray(info.goal), goal_id)
            if status.result == 'rejected':
                raise ValueError(f'seed {seed}: goal rejected: {status.reason}')
            est = ObjectVelocityEstimator()
            while True:
                q, qd, _ = backend.joint_state()
                q, qd = joints_by_name(backend.joint_names, q, qd, wanted)
                pos, quat = backend.object_pose()
                obj = est.update(core.time, pos, quat)
                sample = RobotSample(core.time, q[:n_arm], qd[:n_arm], q[n_arm:], qd[n_arm:],
                                     obj)
                cmd = runner.step(sample)
                if cmd is None:
                    break
                if on_command is not None:
                    on_command(int(seed), cmd)
                reason = core.on_trajectory(TrajectoryCommand(
                    fetch_model.ARM_JOINTS, (period,), (tuple(cmd.arm),), ()))
                reason = reason or core.on_gripper(cmd.gripper)
                if reason is not None:
                    raise RuntimeError(f'driver rejected a runner command: {reason}')
                core.step(core.ticks_per(period))
            st = runner.status
            out.append({'seed': int(seed), 'success': st.result == 'success',
                        'distance': st.distance, 'steps': st.step})
    finally:
        backend.close()
    return out


def joint_sim_success(policy: Policy, seeds: Sequence[int], urdf: Path,
                      period: float = 0.04) -> list[bool]:
    """Success per seed through the runner on the joint-controlled scene, in lock-step."""
    return [e['success'] for e in joint_sim_episodes(policy, seeds, urdf, period)]
