"""The grasp policy's closed loop without ROS: GraspRunner against the KUKA sim driver core.

The same runner, parameters (``config/kuka_policy.yaml``), camera and joint controller as the
ROS graph, stepped in one process. ``bench/bench_grasp_ros.py`` runs it next to the training
env and the ROS graph on the same seeds: env vs this loop measures what executing grasps with
streamed joint targets costs, this loop vs ROS what the transport costs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pick_place_rl.robot.fetch_observation import quat_to_matrix
from pick_place_rl.robot.grasp_config import build_grasp_runner, GraspNodeConfig
from pick_place_rl.robot.grasp_runner import CameraFrame, GraspSample
from pick_place_rl.robot.trajectory import TrajectoryCommand
from pick_place_rl.sim.backend import DriverCore
from pick_place_rl.sim.kuka_backend import KukaBackend

#: an object above this world height counts as lifted (the training env's test)
LIFT_HEIGHT = 0.2
#: an object this close to the goal (x-y, m) at the end counts as placed; the KUKA gripper
#: often holds objects a few cm off its axis, and the node has no view of the object in hand
PLACE_RADIUS = 0.1
#: where the benchmark, the demo and the tests put the objects: the tray's flat floor, clear of
#: the area the objects are dropped into (world, m)
PLACE_GOAL = (0.72, 0.22, -0.12)


def judge(top: np.ndarray, final_xy: np.ndarray, goal: np.ndarray) -> tuple[bool, bool]:
    """(lifted, placed) of an episode from ground truth: ``top`` the highest z each object
    reached, ``final_xy`` where each ended. Placed = an object that was lifted ended within
    :data:`PLACE_RADIUS` of the goal (one that merely lay near it does not count)."""
    up = np.asarray(top) > LIFT_HEIGHT
    near = np.linalg.norm(np.asarray(final_xy) - np.asarray(goal)[:2], axis=1) < PLACE_RADIUS
    return bool(np.any(up)), bool(np.any(up & near))


@dataclass(frozen=True)
class GraspEpisode:
    """How one seeded episode of the loop ended."""
    seed: int
    result: str
    reason: str
    lifted: bool         # ground truth: an object rose above LIFT_HEIGHT
    placed: bool         # ground truth: a lifted object ended within PLACE_RADIUS of the goal
    steps: int
    grasp: dict


def run_loop(net: object, config: GraspNodeConfig, urdf: str, seeds: Sequence[int],
             goal: Sequence[float], object_set: str = 'test', num_objects: int = 5,
             camera_rate: float = 10.0) -> list[GraspEpisode]:
    """One pick-and-place episode per seed (driver reset to the seed, then the goal)."""
    period = 1.0 / config.control_rate
    runner = build_grasp_runner(config, period, urdf)
    runner.image_size = int(net.spec['image_size'])
    runner.set_policy(net.grasp)
    size = runner.image_size
    backend = KukaBackend(object_set=object_set, num_objects=num_objects, camera='overhead')
    core = DriverCore(backend, cmd_timeout=0.5)
    n_arm = len(config.arm_joints)
    goal = np.asarray(goal, dtype=float)
    out = []
    try:
        for seed in seeds:
            core.reset(seed=int(seed))
            runner.start(goal, int(seed))
            frame, next_cam = None, core.time
            top = backend.object_poses()[:, 2].copy()   # each object's highest point
            while runner.active:
                q = backend.joint_state()[0]
                if core.time >= next_cam - 1e-9:
                    img = backend.render(size, size)
                    frame = CameraFrame(core.time, img.rgb, img.depth, img.fx, img.fy, img.cx,
                                        img.cy, img.position, quat_to_matrix(img.orientation))
                    next_cam = core.time + 1.0 / camera_rate
                cmd = runner.step(GraspSample(core.time, q[:n_arm], q[n_arm:n_arm + 2]), frame)
                if cmd is not None:
                    core.on_trajectory(TrajectoryCommand(tuple(config.arm_joints), (period,),
                                                         (tuple(cmd.arm),), ()))
                    core.on_gripper(cmd.gripper)
                core.step(core.ticks_per(period))
                top = np.maximum(top, backend.object_poses()[:, 2])
            lifted, placed = judge(top, backend.object_poses()[:, :2], goal)
            st = runner.status
            out.append(GraspEpisode(int(seed), st.result, st.reason, lifted, placed, st.step,
                                    dict(st.grasp)))
    finally:
        backend.close()
    return out
