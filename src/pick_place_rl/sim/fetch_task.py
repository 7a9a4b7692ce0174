"""Initial states of the FetchPickAndPlace task, drawn by the gymnasium env itself.

To compare a policy through ROS with the same policy in the training env on the same seeds, the
driver's reset must give the object and goal placement of
``gym.make('FetchPickAndPlace-v4').reset(seed=s)``. Re-implementing the env's sampling would
drift with every gymnasium-robotics release, so this module keeps one instance of the real env,
resets it with the seed and copies its state out. The ``qpos`` layout of the gym model and of the
joint-controlled model (``fetch_model``) is the same, so the state transfers slot by slot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pick_place_rl.sim import fetch_model

ENV_ID = 'FetchPickAndPlace-v4'


@dataclass(frozen=True)
class FetchTaskState:
    """One episode's initial state: full ``qpos``/``qvel`` and the goal (world frame, m)."""
    qpos: np.ndarray
    qvel: np.ndarray
    goal: np.ndarray
    seed: int | None


class FetchTaskSampler:
    """Initial states (object and goal placement) of the gym task, per seed."""

    def __init__(self, env_id: str = ENV_ID) -> None:
        from pick_place_rl.sim.registry import make_env
        self._env = make_env(env_id)
        self._env.reset(seed=0)
        raw = self._env.unwrapped
        self.initial_qpos = np.array(raw.initial_qpos, dtype=float)
        self.initial_qvel = np.array(raw.initial_qvel, dtype=float)
        self.initial_gripper_xpos = np.array(raw.initial_gripper_xpos, dtype=float)
        self.height_offset = float(raw.height_offset)
        self.obj_range = float(raw.obj_range)
        self.target_range = float(raw.target_range)
        self.distance_threshold = float(raw.distance_threshold)
        self._object_adr = raw.model.joint(fetch_model.OBJECT_JOINT).qposadr[0]

    def sample(self, seed: int | None = None) -> FetchTaskState:
        """Reset the gym env (with ``seed`` if given) and return its initial state."""
        obs, _ = self._env.reset(seed=seed)
        raw = self._env.unwrapped
        return FetchTaskState(np.array(raw.data.qpos), np.array(raw.data.qvel),
                              np.array(obs['desired_goal'], dtype=float), seed)

    def place(self, object_xy: np.ndarray, goal: np.ndarray) -> FetchTaskState:
        """The initial state with the object at ``object_xy`` on the table and the given goal."""
        object_xy = np.asarray(object_xy, dtype=float)
        goal = np.asarray(goal, dtype=float)
        if object_xy.shape != (2,) or not np.all(np.isfinite(object_xy)):
            raise ValueError(f'object_xy must be 2 finite numbers, got {object_xy.tolist()}')
        if goal.shape != (3,) or not np.all(np.isfinite(goal)):
            raise ValueError(f'goal must be 3 finite numbers, got {goal.tolist()}')
        qpos = self.initial_qpos.copy()
        qpos[self._object_adr:self._object_adr + 2] = object_xy
        return FetchTaskState(qpos, self.initial_qvel.copy(), goal, None)

    def close(self) -> None:
        self._env.close()
