"""Pure goal-conditioned rewards (the GoalEnv ``compute_reward`` contract, no env needed)."""
from __future__ import annotations

import numpy as np

#: Fetch tasks count a goal as reached within 5 cm (gymnasium-robotics ``distance_threshold``).
FETCH_DISTANCE_THRESHOLD = 0.05


def goal_distance(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    return np.linalg.norm(achieved - desired, axis=-1)


def sparse_reward(achieved: np.ndarray, desired: np.ndarray, info: object = None,
                  threshold: float = FETCH_DISTANCE_THRESHOLD) -> np.ndarray:
    """-1 while the goal is farther than ``threshold``, 0 once reached (values in {-1, 0})."""
    return -(goal_distance(achieved, desired) > threshold).astype(np.float32)


def is_success(achieved: np.ndarray, desired: np.ndarray,
               threshold: float = FETCH_DISTANCE_THRESHOLD) -> np.ndarray:
    return goal_distance(achieved, desired) <= threshold
