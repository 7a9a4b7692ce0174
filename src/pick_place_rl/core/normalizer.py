"""Running mean/std normalizer with clipping (the HER recipe's input scaling)."""
from __future__ import annotations

import numpy as np


class Normalizer:
    """Normalize inputs to ``clip((x - mean) / std, -clip_range, clip_range)``.

    Statistics are accumulated as sums in float64 so that millions of updates do not drift;
    ``eps`` floors the std (HER uses 0.01) so near-constant features (a resting object's
    velocity) are not blown up.
    """

    def __init__(self, size: int, eps: float = 1e-2, clip_range: float = 5.0) -> None:
        self.size = size
        self.eps = eps
        self.clip_range = clip_range
        self.sum = np.zeros(size, np.float64)
        self.sumsq = np.zeros(size, np.float64)
        self.count = 0.0
        self.mean = np.zeros(size, np.float32)
        self.std = np.ones(size, np.float32)

    def update(self, x: np.ndarray) -> None:
        """Add a batch of samples (any leading shape, last axis = ``size``)."""
        if self.size == 0:  # goal-less tasks (plain DDPG) have empty goals
            return
        x = np.asarray(x, np.float64).reshape(-1, self.size)
        self.add_moments(x.sum(axis=0), np.square(x).sum(axis=0), float(x.shape[0]))

    def add_moments(self, total: np.ndarray, total_sq: np.ndarray, count: float) -> None:
        """Add pre-reduced sums; lets a distributed wrapper all-reduce them first."""
        self.sum += total
        self.sumsq += total_sq
        self.count += count
        mean = self.sum / self.count
        var = np.maximum(self.eps ** 2, self.sumsq / self.count - np.square(mean))
        self.mean = mean.astype(np.float32)
        self.std = np.sqrt(var).astype(np.float32)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / self.std, -self.clip_range, self.clip_range)

    def state_dict(self) -> dict[str, np.ndarray | float]:
        return {'sum': self.sum.copy(), 'sumsq': self.sumsq.copy(), 'count': self.count,
                'mean': self.mean.copy(), 'std': self.std.copy(), 'eps': self.eps,
                'clip_range': self.clip_range}

    def load_state_dict(self, state: dict) -> None:
        mean = np.asarray(state['mean'], np.float32)
        if mean.shape != (self.size,):
            raise ValueError(f'normalizer size mismatch: checkpoint has {mean.shape[0]}, '
                             f'expected {self.size}')
        self.sum = np.asarray(state['sum'], np.float64)
        self.sumsq = np.asarray(state['sumsq'], np.float64)
        self.count = float(state['count'])
        self.mean = mean
        self.std = np.asarray(state['std'], np.float32)
        self.eps = float(state['eps'])
        self.clip_range = float(state['clip_range'])
