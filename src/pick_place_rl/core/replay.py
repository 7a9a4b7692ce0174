"""Episode-shaped replay buffer: storing whole episodes makes HER 'future' sampling one
vectorized index expression."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pick_place_rl.core.checkpoint import atomic_write_npz


class EpisodeReplayBuffer:
    """Ring buffer of fixed-horizon episodes.

    Arrays: ``obs`` and ``ag`` (achieved goal) have ``horizon + 1`` steps (the final state is
    kept), ``g`` (desired goal) and ``actions`` have ``horizon``. When full, the oldest episodes
    are overwritten.
    """

    def __init__(self, capacity_transitions: int, horizon: int, obs_dim: int, goal_dim: int,
                 act_dim: int, store_rewards: bool = False) -> None:
        self.horizon = horizon
        self.max_episodes = max(1, capacity_transitions // horizon)
        shapes = {'obs': (horizon + 1, obs_dim), 'ag': (horizon + 1, goal_dim),
                  'g': (horizon, goal_dim), 'actions': (horizon, act_dim)}
        if store_rewards:  # plain DDPG: rewards do not depend on a goal, keep the env's
            shapes['rewards'] = (horizon,)
        self.data = {k: np.zeros((self.max_episodes, *s), np.float32) for k, s in shapes.items()}
        self.next_index = 0
        self.n_episodes = 0
        self.total_episodes = 0

    def store(self, episodes: dict[str, np.ndarray]) -> np.ndarray:
        """Store a batch of episodes (leading axis = episode). Returns the slots used."""
        n = episodes['actions'].shape[0]
        for key, arr in self.data.items():
            if episodes[key].shape[1:] != arr.shape[1:]:
                raise ValueError(f'episode {key} has shape {episodes[key].shape[1:]}, '
                                 f'buffer expects {arr.shape[1:]}')
        idx = (self.next_index + np.arange(n)) % self.max_episodes
        for key, arr in self.data.items():
            arr[idx] = episodes[key]
        self.next_index = int((self.next_index + n) % self.max_episodes)
        self.n_episodes = min(self.max_episodes, self.n_episodes + n)
        self.total_episodes += n
        return idx

    def __len__(self) -> int:
        return self.n_episodes * self.horizon

    def save(self, path: Path) -> None:
        """Write the filled part atomically as .npz (no pickle)."""
        n = self.n_episodes
        atomic_write_npz(path, meta=np.array([self.next_index, n, self.total_episodes]),
                         **{k: v[:n] for k, v in self.data.items()})

    def load(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as f:
            next_index, n, total = (int(v) for v in f['meta'])
            for key, arr in self.data.items():
                if f[key].shape[1:] != arr.shape[1:] or n > self.max_episodes:
                    raise ValueError(f'replay file {path} does not match this buffer ({key})')
                arr[:n] = f[key]
        self.next_index, self.n_episodes, self.total_episodes = next_index, n, total
