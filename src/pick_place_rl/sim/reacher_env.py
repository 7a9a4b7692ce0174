"""A planar joint-space reacher: the small discrete-action task of DQN lecture material.

Four revolute joints in a plane (link lengths summing to 1 m); each action moves one joint by
``+dtheta`` or ``-dtheta`` (8 actions). The goal is a random reachable point; the episode ends
with success when the tip is within ``tolerance`` of it.

Rewards: ``'sparse'`` gives 1 on reaching the goal, else 0; ``'dense'`` adds the decrease of the
tip-goal distance each step (scaled by ``dense_scale``) to the sparse reward, which keeps the
optimal policy the same while letting a Q-net learn in seconds.

Observation (float32, 14): cos and sin of the 4 joint angles, tip (x, y), goal (x, y) and
goal - tip (the error a greedy reacher descends).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

REWARD_TYPES = ('sparse', 'dense')


class JointReacherEnv(gym.Env):
    metadata = {'render_modes': []}

    def __init__(self, reward_type: str = 'dense', n_joints: int = 4, dtheta: float = 0.2,
                 tolerance: float = 0.15, max_steps: int = 30, dense_scale: float = 10.0,
                 ) -> None:
        if reward_type not in REWARD_TYPES:
            raise ValueError(f'unknown reward_type {reward_type!r}; choose from {REWARD_TYPES}')
        self.reward_type = reward_type
        self.n_joints, self.dtheta, self.tolerance = n_joints, dtheta, tolerance
        self.max_steps, self.dense_scale = max_steps, dense_scale
        self.links = np.full(n_joints, 1.0 / n_joints)
        self.action_space = gym.spaces.Discrete(2 * n_joints)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2 * n_joints + 6,), np.float32)
        self.q = np.zeros(n_joints)
        self.goal = np.zeros(2)
        self.steps = 0

    def tip(self, q: np.ndarray | None = None) -> np.ndarray:
        angles = np.cumsum(self.q if q is None else q)
        return np.array([np.sum(self.links * np.cos(angles)),
                         np.sum(self.links * np.sin(angles))])

    def _obs(self) -> np.ndarray:
        tip = self.tip()
        return np.concatenate([np.cos(self.q), np.sin(self.q), tip, self.goal, self.goal - tip]
                              ).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        # Goal = the tip of a random configuration, so it is always reachable; resample if
        # the start already solves it.
        while True:
            self.q = rng.uniform(-np.pi, np.pi, self.n_joints)
            self.goal = self.tip(rng.uniform(-np.pi, np.pi, self.n_joints))
            if np.linalg.norm(self.tip() - self.goal) > 2 * self.tolerance:
                break
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f'action {action!r} outside Discrete({self.action_space.n})')
        joint, sign = divmod(int(action), 2)
        before = np.linalg.norm(self.tip() - self.goal)
        self.q[joint] += self.dtheta if sign else -self.dtheta
        self.q = (self.q + np.pi) % (2 * np.pi) - np.pi
        after = np.linalg.norm(self.tip() - self.goal)
        self.steps += 1
        success = after < self.tolerance
        reward = float(success)
        if self.reward_type == 'dense':
            reward += self.dense_scale * (before - after)
        truncated = not success and self.steps >= self.max_steps
        return self._obs(), reward, bool(success), bool(truncated), {'is_success': success,
                                                                     'distance': after}
