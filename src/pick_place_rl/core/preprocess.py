"""The one observation -> network-input function, shared by the trainer and the policy node."""
from __future__ import annotations

import numpy as np

from pick_place_rl.core.normalizer import Normalizer

#: Raw observations are clipped before normalization (HER recipe: +-200).
CLIP_OBS = 200.0


def preprocess(obs: np.ndarray, goal: np.ndarray, obs_norm: Normalizer,
               goal_norm: Normalizer) -> np.ndarray:
    """Clip, normalize and concatenate observation and goal into the actor/critic input.

    Works on a single sample (1-D) or a batch (2-D). Output dtype is float32.
    """
    obs = np.clip(obs, -CLIP_OBS, CLIP_OBS)
    goal = np.clip(goal, -CLIP_OBS, CLIP_OBS)
    out = np.concatenate([obs_norm.normalize(obs), goal_norm.normalize(goal)], axis=-1)
    return out.astype(np.float32, copy=False)
