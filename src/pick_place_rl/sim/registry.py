"""Make gymnasium environments by id, with a clear error for ids that do not exist."""
from __future__ import annotations

import difflib

import gymnasium as gym
import numpy as np

_REGISTERED = False


def register_all() -> None:
    """Register gymnasium-robotics' Fetch tasks and this package's own environments once."""
    global _REGISTERED
    if _REGISTERED:
        return
    import gymnasium_robotics
    gym.register_envs(gymnasium_robotics)
    # This package's grasping tasks (PyBullet) and the DQN reacher; the env's own step limit
    # ends episodes, so no TimeLimit wrapper is added.
    for env_id, entry in (
            ('KukaDiverseGrasp-v0', 'pick_place_rl.sim.kuka_grasp_env:KukaDiverseGraspEnv'),
            ('KukaPixelGrasp-v0', 'pick_place_rl.sim.kuka_grasp_env:KukaPixelGraspEnv'),
            ('JointReacher-v0', 'pick_place_rl.sim.reacher_env:JointReacherEnv')):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry)
    _REGISTERED = True


class UnknownEnvError(ValueError):
    pass


def check_env_id(env_id: str) -> None:
    register_all()
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f'; did you mean {", ".join(close)}?' if close else ''
        raise UnknownEnvError(f'unknown environment id {env_id!r}{hint}')


class GoalObsWrapper(gym.ObservationWrapper):
    """Present a plain Box-observation env (Pendulum) as a goal env with empty goals.

    Lets the one DDPG trainer run both plain DDPG (stored dense rewards, no HER) and DDPG+HER.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        empty = gym.spaces.Box(-np.inf, np.inf, (0,), np.float32)
        self.observation_space = gym.spaces.Dict({
            'observation': env.observation_space, 'achieved_goal': empty, 'desired_goal': empty})

    def observation(self, observation: np.ndarray) -> dict:
        empty = np.zeros(0, np.float32)
        return {'observation': observation, 'achieved_goal': empty, 'desired_goal': empty}


def make_env(env_id: str, **kwargs) -> gym.Env:
    """``gym.make`` without the passive checker (it costs time on every step)."""
    check_env_id(env_id)
    env = gym.make(env_id, disable_env_checker=True, **kwargs)
    if not isinstance(env.observation_space, gym.spaces.Dict):
        env = GoalObsWrapper(env)
    return env
