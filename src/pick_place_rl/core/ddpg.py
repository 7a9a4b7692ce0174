"""DDPG (Lillicrap et al., 2016) with the HER paper's stabilisers.

Stabilisers from the HER recipe: target Q clipped to ``[-1/(1-gamma), 0]`` for sparse {-1, 0}
rewards, an L2 penalty on the pre-scaled actions, soft target updates, and exploration mixing
uniform-random actions (``random_eps``) with Gaussian noise (``noise_eps``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pick_place_rl.core.her import GoalBatch
from pick_place_rl.core.networks import Actor, Critic, soft_update
from pick_place_rl.core.normalizer import Normalizer
from pick_place_rl.core.preprocess import preprocess


@dataclass(frozen=True)
class DDPGParams:
    """Hyper-parameters of the learner itself (the trainer config carries them)."""

    hidden: int = 256
    layers: int = 3
    lr_actor: float = 1e-3
    lr_critic: float = 1e-3
    gamma: float = 0.98
    tau: float = 0.05
    action_l2: float = 1.0
    clip_target_q: bool = True
    max_action: float = 1.0
    norm_clip: float = 5.0
    bf16: bool = False


class DDPGAgent:
    """Actor, critic, their targets, optimizers and the obs/goal normalizers."""

    def __init__(self, obs_dim: int, goal_dim: int, act_dim: int, params: DDPGParams) -> None:
        self.obs_dim, self.goal_dim, self.act_dim = obs_dim, goal_dim, act_dim
        self.params = params
        in_dim = obs_dim + goal_dim
        self.actor = Actor(in_dim, act_dim, params.hidden, params.layers, params.max_action)
        self.critic = Critic(in_dim, act_dim, params.hidden, params.layers, params.max_action)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=params.lr_actor)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=params.lr_critic)
        self.obs_norm = Normalizer(obs_dim, clip_range=params.norm_clip)
        self.goal_norm = Normalizer(goal_dim, clip_range=params.norm_clip)
        self.n_updates = 0

    @property
    def spec(self) -> dict:
        return {'obs_dim': self.obs_dim, 'goal_dim': self.goal_dim, 'act_dim': self.act_dim,
                'hidden': self.params.hidden, 'layers': self.params.layers}

    def input(self, obs: np.ndarray, goal: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(preprocess(obs, goal, self.obs_norm, self.goal_norm))

    @torch.no_grad()
    def act(self, obs: np.ndarray, goal: np.ndarray, rng: np.random.Generator | None = None,
            noise_eps: float = 0.0, random_eps: float = 0.0) -> np.ndarray:
        """Actions for a batch of observations; noise only when ``rng`` is given."""
        action = self.actor(self.input(obs, goal)).numpy()
        if rng is None:
            return action
        m = self.params.max_action
        action = np.clip(action + noise_eps * m * rng.standard_normal(action.shape), -m, m)
        random_actions = rng.uniform(-m, m, action.shape)
        use_random = rng.random(action.shape[:-1] + (1,)) < random_eps
        return np.where(use_random, random_actions, action).astype(np.float32)

    def update(self, batch: GoalBatch) -> dict[str, float]:
        """One gradient step on critic and actor. Returns losses for logging.

        With ``bf16`` the hidden layers run under CPU bfloat16 autocast (about 1.8x faster on
        CPUs with AVX512-BF16/AMX; master weights and Q outputs stay float32).
        """
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.params.bf16):
            return self._update(batch)

    def _update(self, batch: GoalBatch) -> dict[str, float]:
        p = self.params
        x = self.input(batch.obs, batch.goal)
        x_next = self.input(batch.next_obs, batch.goal)
        action = torch.from_numpy(batch.action)
        reward = torch.from_numpy(batch.reward)
        with torch.no_grad():
            q_next = self.critic_target(x_next, self.actor_target(x_next))
            discount = p.gamma if batch.discount is None else torch.from_numpy(batch.discount)
            target = reward + discount * q_next
            if p.clip_target_q:
                target = target.clamp(-1.0 / (1.0 - p.gamma), 0.0)
        critic_loss = F.mse_loss(self.critic(x, action), target)
        self.critic_optim.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optim.step()

        # The actor's loss needs gradients through the critic, not of its weights: freezing
        # them skips a third of that backward pass (the critic's next step zeroes them anyway).
        pi = self.actor(x)
        self.critic.requires_grad_(False)
        try:
            actor_loss = (-self.critic(x, pi).mean()
                          + p.action_l2 * (pi / p.max_action).pow(2).mean())
            self.actor_optim.zero_grad(set_to_none=True)
            actor_loss.backward()
        finally:
            self.critic.requires_grad_(True)
        self.actor_optim.step()
        self.n_updates += 1
        return {'critic_loss': critic_loss.item(), 'actor_loss': actor_loss.item(),
                'q_mean': target.mean().item()}

    def update_targets(self) -> None:
        soft_update(self.actor_target, self.actor, self.params.tau)
        soft_update(self.critic_target, self.critic, self.params.tau)

    def state_dict(self) -> dict:
        return {'actor': self.actor.state_dict(), 'critic': self.critic.state_dict(),
                'actor_target': self.actor_target.state_dict(),
                'critic_target': self.critic_target.state_dict(),
                'actor_optim': self.actor_optim.state_dict(),
                'critic_optim': self.critic_optim.state_dict(),
                'obs_norm': self.obs_norm.state_dict(), 'goal_norm': self.goal_norm.state_dict(),
                'n_updates': self.n_updates}

    def load_state_dict(self, state: dict) -> None:
        from pick_place_rl.core.checkpoint import to_numpy_tree
        self.actor.load_state_dict(state['actor'])
        self.critic.load_state_dict(state['critic'])
        self.actor_target.load_state_dict(state['actor_target'])
        self.critic_target.load_state_dict(state['critic_target'])
        self.actor_optim.load_state_dict(state['actor_optim'])
        self.critic_optim.load_state_dict(state['critic_optim'])
        self.obs_norm.load_state_dict(to_numpy_tree(state['obs_norm']))
        self.goal_norm.load_state_dict(to_numpy_tree(state['goal_norm']))
        self.n_updates = int(state['n_updates'])
