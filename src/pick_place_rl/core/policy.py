"""The deployable actor: weights + normalizers + ``preprocess``, loaded from a checkpoint.

The policy node and the trainer's evaluation both go through :class:`GoalPolicy`, so the network
input a robot sees is the one the actor was trained on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pick_place_rl.core.checkpoint import CheckpointError, load_checkpoint, to_numpy_tree
from pick_place_rl.core.networks import Actor
from pick_place_rl.core.normalizer import Normalizer
from pick_place_rl.core.preprocess import preprocess

KIND = 'ddpg_her'


class GoalPolicy:
    """Deterministic goal-conditioned actor for inference."""

    def __init__(self, actor: Actor, obs_norm: Normalizer, goal_norm: Normalizer,
                 meta: dict | None = None) -> None:
        self.actor = actor.eval()
        self.obs_norm = obs_norm
        self.goal_norm = goal_norm
        self.meta = meta or {}
        self.obs_dim = obs_norm.size
        self.goal_dim = goal_norm.size
        self.act_dim = actor.net[-1].out_features

    @classmethod
    def from_checkpoint(cls, path: Path, spec: dict | None = None) -> GoalPolicy:
        """Load a trainer checkpoint or an exported actor; raise CheckpointError if unusable."""
        payload = load_checkpoint(path, KIND, spec)
        s, state = payload['spec'], payload['state']
        try:
            actor = Actor(s['obs_dim'] + s['goal_dim'], s['act_dim'], s['hidden'], s['layers'],
                          payload['config'].get('max_action', 1.0))
            actor.load_state_dict(state['actor'])
            obs_norm = Normalizer(s['obs_dim'])
            goal_norm = Normalizer(s['goal_dim'])
            obs_norm.load_state_dict(to_numpy_tree(state['obs_norm']))
            goal_norm.load_state_dict(to_numpy_tree(state['goal_norm']))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f'{path}: weights do not match their spec ({exc})') from None
        meta = {'config': payload['config'], 'spec': s, 'path': str(path)}
        return cls(actor, obs_norm, goal_norm, meta)

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Action(s) for one observation (1-D) or a batch (2-D); never NaN for finite input."""
        x = torch.from_numpy(preprocess(obs, goal, self.obs_norm, self.goal_norm))
        return self.actor(x).numpy()
