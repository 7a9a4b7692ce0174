"""Hindsight Experience Replay sampling (Andrychowicz et al., 2017, 'future' strategy)."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

RewardFn = Callable[[np.ndarray, np.ndarray, object], np.ndarray]


class GoalBatch(NamedTuple):
    """A batch of goal-conditioned transitions (raw, not normalized)."""

    obs: np.ndarray
    goal: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    #: Per-sample discount on the bootstrap value (``gamma ** steps``); ``None``: one step.
    discount: np.ndarray | None = None


class HerSampler:
    """Sample transitions and relabel a fraction ``1 - 1/(1+k)`` of their goals.

    'future' goal for transition t (action at step t, next state t+1): the achieved goal
    ``ag[t']`` with ``t'`` uniform in ``[t + 1, T]``, i.e. a state reached *by* this transition or
    later in the same episode. Including t+1 means some relabelled transitions are successes,
    which is what gives HER its signal. ``reward_fn`` is a pure ``compute_reward(achieved,
    desired, info)``, so sampling needs no live environment. With ``reward_fn=None`` and
    ``replay_k=0`` it is a plain uniform sampler over stored rewards (DDPG without HER).

    ``n_step > 1`` gives n-step returns (as in multi-step HER, Yang et al. 2021): the rewards of
    steps ``t .. t+n-1`` under the (relabelled) goal, discounted, then ``gamma ** n`` times the
    value at ``t + n``; near the horizon the sum stops at ``T``. The returns are off-policy
    (the stored actions were exploratory), a bias traded for a faster spread of the sparse
    reward along the episode.
    """

    def __init__(self, reward_fn: RewardFn | None, replay_k: int = 4, n_step: int = 1,
                 gamma: float = 0.98) -> None:
        if reward_fn is None and replay_k > 0:
            raise ValueError('relabelling goals (replay_k > 0) needs a reward_fn')
        if n_step < 1:
            raise ValueError(f'n_step={n_step} (must be >= 1)')
        self.reward_fn = reward_fn
        self.future_p = 1.0 - 1.0 / (1.0 + replay_k)
        self.n_step = n_step
        self.gamma = gamma

    def sample_indices(self, n_episodes: int, horizon: int, batch_size: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                          np.ndarray]:
        """Episode ids, step ids, which samples are relabelled, and their future step ids."""
        ep = rng.integers(0, n_episodes, batch_size)
        t = rng.integers(0, horizon, batch_size)
        relabel = rng.random(batch_size) < self.future_p
        future_t = t + 1 + (rng.random(batch_size) * (horizon - t)).astype(np.int64)
        return ep, t, relabel, future_t

    def sample(self, data: dict[str, np.ndarray], n_episodes: int, batch_size: int,
               rng: np.random.Generator) -> GoalBatch:
        horizon = data['actions'].shape[1]
        ep, t, relabel, future_t = self.sample_indices(n_episodes, horizon, batch_size, rng)
        goal = data['g'][ep, t].copy()
        goal[relabel] = data['ag'][ep[relabel], future_t[relabel]]
        if self.n_step > 1:
            return self._n_step_batch(data, ep, t, goal, horizon)
        return GoalBatch(obs=data['obs'][ep, t], goal=goal, action=data['actions'][ep, t],
                         reward=self._reward(data, ep, t, goal), next_obs=data['obs'][ep, t + 1])

    def _reward(self, data: dict[str, np.ndarray], ep: np.ndarray, t: np.ndarray,
                goal: np.ndarray) -> np.ndarray:
        """Reward of the action at step ``t`` for ``goal``."""
        if self.reward_fn is None:  # no relabelling: the stored env rewards stay valid
            return data['rewards'][ep, t]
        return np.asarray(self.reward_fn(data['ag'][ep, t + 1], goal, None), np.float32)

    def _n_step_batch(self, data: dict[str, np.ndarray], ep: np.ndarray, t: np.ndarray,
                      goal: np.ndarray, horizon: int) -> GoalBatch:
        steps = np.minimum(self.n_step, horizon - t)
        reward = np.zeros(len(t), np.float32)
        for i in range(self.n_step):
            live = i < steps
            r = self._reward(data, ep, np.minimum(t + i, horizon - 1), goal)
            reward += np.where(live, self.gamma ** i * r, 0.0).astype(np.float32)
        return GoalBatch(obs=data['obs'][ep, t], goal=goal, action=data['actions'][ep, t],
                         reward=reward, next_obs=data['obs'][ep, t + steps],
                         discount=(self.gamma ** steps).astype(np.float32))
