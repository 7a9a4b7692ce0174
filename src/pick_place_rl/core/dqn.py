"""DQN: transition replay, epsilon schedule, Double DQN targets, Huber loss, target network.

Mnih et al. 2015 (replay + target network), van Hasselt et al. 2016 (Double DQN: the online
net picks the next action, the target net values it). Terminal transitions (``done`` = the
episode *terminated*, not truncated by a time limit) do not bootstrap.
"""
from __future__ import annotations

from collections.abc import Sequence
import copy
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class DQNBatch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor       # int64 (B,)
    rewards: torch.Tensor       # float32 (B,)
    next_obs: torch.Tensor
    dones: torch.Tensor         # float32 (B,), 1 = terminated (no bootstrap)
    aux: torch.Tensor | None = None  # float32 (B, k): auxiliary regression targets of obs
    #: float32 (B,): discount of each bootstrap (gamma ** n of an n-step transition); None =
    #: one-step transitions, discounted by the agent's gamma
    discounts: torch.Tensor | None = None


class TransitionReplay:
    """Ring buffer of (obs, action, reward, next_obs, done); observations keep their dtype
    (uint8 images stay uint8, 4x smaller than float). With ``aux_dim`` > 0 each transition
    also keeps a float32 vector of auxiliary targets for ``obs``; with ``discounts`` the
    discount of its bootstrap (n-step transitions, see :func:`fold_n_step`)."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype=np.float32,
                 aux_dim: int = 0, discounts: bool = False) -> None:
        if capacity < 1:
            raise ValueError(f'replay capacity must be >= 1, got {capacity}')
        self.capacity = capacity
        self.aux_dim = aux_dim
        self.aux = np.zeros((capacity, aux_dim), np.float32)
        self.with_discounts = discounts
        self.discounts = np.zeros(capacity if discounts else 0, np.float32)
        self.obs = np.zeros((capacity, *obs_shape), obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), obs_dtype)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.pos = 0
        self.size = 0

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
            done: bool, aux: np.ndarray | None = None, discount: float | None = None) -> None:
        i = self.pos
        if self.with_discounts:
            if discount is None:
                raise ValueError('this replay keeps a discount per transition, got none')
            self.discounts[i] = discount
        if self.aux_dim:
            if aux is None or np.shape(aux) != (self.aux_dim,):
                raise ValueError(f'this replay keeps {self.aux_dim} auxiliary targets per '
                                 f'transition, got {None if aux is None else np.shape(aux)}')
            self.aux[i] = aux
        self.obs[i], self.next_obs[i] = obs, next_obs
        self.actions[i], self.rewards[i], self.dones[i] = action, reward, float(done)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> DQNBatch:
        if self.size == 0:
            raise ValueError('cannot sample from an empty replay buffer')
        idx = rng.integers(0, self.size, batch_size)
        return DQNBatch(torch.from_numpy(self.obs[idx]), torch.from_numpy(self.actions[idx]),
                        torch.from_numpy(self.rewards[idx]), torch.from_numpy(self.next_obs[idx]),
                        torch.from_numpy(self.dones[idx]),
                        torch.from_numpy(self.aux[idx]) if self.aux_dim else None,
                        torch.from_numpy(self.discounts[idx]) if self.with_discounts else None)

    def state_dict(self) -> dict[str, np.ndarray]:
        n = self.size
        state = {'obs': self.obs[:n], 'next_obs': self.next_obs[:n],
                 'actions': self.actions[:n], 'rewards': self.rewards[:n],
                 'dones': self.dones[:n], 'pos': np.array(self.pos)}
        if self.aux_dim:
            state['aux'] = self.aux[:n]
        if self.with_discounts:
            state['discounts'] = self.discounts[:n]
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        n = len(state['actions'])
        if n > self.capacity or state['obs'].shape[1:] != self.obs.shape[1:]:
            raise ValueError(f'replay snapshot of {n} x {state["obs"].shape[1:]} does not fit '
                             f'{self.capacity} x {self.obs.shape[1:]}')
        keys = ('obs', 'next_obs', 'actions', 'rewards', 'dones')
        if self.aux_dim:
            if state.get('aux', np.zeros((0, 0))).shape[1:] != (self.aux_dim,):
                raise ValueError(f'replay snapshot has no {self.aux_dim} auxiliary targets per '
                                 'transition (saved by a run without the auxiliary loss?)')
            keys += ('aux',)
        if self.with_discounts:
            if 'discounts' not in state:
                raise ValueError('replay snapshot has no per-transition discounts (saved by a '
                                 'run with one-step targets?)')
            keys += ('discounts',)
        for key in keys:
            getattr(self, key)[:n] = state[key]
        self.size = n
        self.pos = int(state['pos']) % self.capacity


@dataclass(frozen=True)
class LinearSchedule:
    """``start`` -> ``end`` linearly over ``duration`` steps, then ``end``."""

    start: float
    end: float
    duration: int

    def __call__(self, t: int) -> float:
        if t >= self.duration:
            return self.end
        frac = min(max(t / self.duration, 0.0), 1.0)
        return self.start + frac * (self.end - self.start)


def fold_n_step(window: Sequence[tuple], gamma: float) -> tuple:
    """Consecutive transitions ``(obs, action, reward, next_obs, terminated, ...)`` as one.

    Returns ``(obs, action, sum_k gamma**k r_k, last next_obs, terminated, gamma**len)`` with
    the extras of the first transition after ``obs`` and ``action`` kept in place. An n-step
    target reaches a reward n steps away in one update instead of n rounds of bootstrapping;
    with n at least the episode length it is the Monte Carlo return, and no bootstrap (no
    next-state pass) is needed at all.
    """
    if not window:
        raise ValueError('cannot fold an empty window of transitions')
    ret = sum(gamma ** k * float(t[2]) for k, t in enumerate(window))
    first, last = window[0], window[-1]
    return (first[0], first[1], ret, last[3], bool(last[4]), gamma ** len(window), *first[5:])


def td_targets(q_next_online: torch.Tensor, q_next_target: torch.Tensor,
               rewards: torch.Tensor, dones: torch.Tensor, gamma: float | torch.Tensor,
               double: bool = True) -> torch.Tensor:
    """Targets ``r + gamma * (1 - done) * Q_target(s', a')``; ``gamma`` is a float for one-step
    transitions or a (B,) tensor of each transition's discount (``gamma ** n``, n-step).

    Double DQN: ``a' = argmax Q_online(s', .)``; plain DQN: ``a' = argmax Q_target(s', .)``.
    """
    if double:
        best = q_next_online.argmax(dim=1, keepdim=True)
    else:
        best = q_next_target.argmax(dim=1, keepdim=True)
    bootstrap = q_next_target.gather(1, best).squeeze(1)
    return rewards + gamma * (1.0 - dones) * bootstrap


@dataclass(frozen=True)
class DQNParams:
    lr: float = 1e-3
    gamma: float = 0.9
    double: bool = True
    huber_delta: float = 1.0
    grad_clip: float = 10.0
    #: weight on the online net in the soft target update; 1.0 = hard copy
    tau: float = 1.0
    #: bfloat16 autocast of the update's forward/backward passes (CPU); the net's output layer
    #: should stay float32 (see :class:`~pick_place_rl.core.networks.FP32Linear`)
    bf16: bool = False
    #: weight of the auxiliary regression loss (nets with ``forward_aux``, batches with ``aux``)
    aux_weight: float = 0.0
    #: per-target weights inside the auxiliary loss, ``(aux_dim,)``; weights of mean 1 keep its
    #: scale (a weighted mean); None = all equal. Lets a few targets that matter (where the
    #: objects are) count for more than many that are easy (hundreds of mask cells)
    aux_target_weights: tuple[float, ...] | None = None


class DQNAgent:
    """Online and target Q-networks (any ``nn.Module`` mapping obs -> (B, n_actions))."""

    def __init__(self, net: nn.Module, params: DQNParams = DQNParams()) -> None:
        self.params = params
        self.online = net
        self.target = copy.deepcopy(net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=params.lr)
        self.updates = 0
        self._aux_w = None if params.aux_target_weights is None else \
            torch.tensor(params.aux_target_weights, dtype=torch.float32)

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of a batch of observations (numpy in, numpy out)."""
        self.online.eval()
        q = self.online(torch.as_tensor(obs))
        self.online.train()
        return q.numpy()

    def act(self, obs: np.ndarray, epsilon: float = 0.0,
            rng: np.random.Generator | None = None) -> int:
        """Epsilon-greedy action for one observation."""
        if epsilon > 0.0 and rng is not None and rng.random() < epsilon:
            return int(rng.integers(self.online.n_actions))
        return int(self.q_values(obs[None])[0].argmax())

    def update(self, batch: DQNBatch) -> dict[str, float]:
        """One gradient step; under ``bf16`` about 2x faster for the classic conv net on CPUs
        with AVX512-BF16 (master weights, Q outputs and the loss stay float32)."""
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.params.bf16):
            return self._update(batch)

    def _update(self, batch: DQNBatch) -> dict[str, float]:
        p = self.params
        with_aux = p.aux_weight > 0.0 and batch.aux is not None
        if with_aux:
            q_all, aux_pred = self.online.forward_aux(batch.obs)
        else:
            q_all = self.online(batch.obs)
        q = q_all.gather(1, batch.actions[:, None]).squeeze(1)
        gamma = p.gamma if batch.discounts is None else batch.discounts
        with torch.no_grad():
            if p.gamma > 0.0 and bool(torch.any(gamma * (1.0 - batch.dones) > 0.0)):
                next_target = self.target(batch.next_obs)
                next_online = self.online(batch.next_obs) if p.double else next_target
                y = td_targets(next_online, next_target, batch.rewards, batch.dones, gamma,
                               p.double)
            else:  # nothing bootstraps (bandit or Monte Carlo targets): no next-state pass
                y = batch.rewards
        loss = F.huber_loss(q, y, delta=p.huber_delta)
        info = {'loss': loss.item(), 'q_mean': q.detach().mean().item()}
        if with_aux:
            aux_loss = F.huber_loss(aux_pred.float(), batch.aux, delta=p.huber_delta,
                                    reduction='none')
            aux_loss = (aux_loss if self._aux_w is None else aux_loss * self._aux_w).mean()
            info['aux_loss'] = aux_loss.item()
            loss = loss + p.aux_weight * aux_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if p.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.online.parameters(), p.grad_clip)
        self.optimizer.step()
        self.updates += 1
        return info

    @torch.no_grad()
    def update_target(self) -> None:
        tau = self.params.tau
        for t, o in zip(self.target.parameters(), self.online.parameters()):
            t.mul_(1.0 - tau).add_(o, alpha=tau)
        for t, o in zip(self.target.buffers(), self.online.buffers()):
            t.copy_(o)

    def state_dict(self) -> dict:
        return {'online': self.online.state_dict(), 'target': self.target.state_dict(),
                'optimizer': self.optimizer.state_dict(), 'updates': self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state['online'])
        self.target.load_state_dict(state['target'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.updates = int(state['updates'])


def random_shift_batch(batch: DQNBatch, pad: int, rng: np.random.Generator) -> DQNBatch:
    """Each transition's frames moved by the same random offset of up to ``pad`` pixels.

    The classic task's conv net overfits its few thousand episodes (it tells its training
    frames apart, not held-out ones). Shifting a frame by a few pixels, edges replicated,
    keeps what decides a grasp (where the gripper is against the objects) and changes where
    the whole scene sits, the random-shift augmentation of DrQ (Kostrikov et al., 2020).
    ``obs`` and ``next_obs`` share the offset so the transition stays one scene. Frames are
    ``(B, H, W, C)``.
    """
    if pad < 1:
        return batch
    obs, next_obs = batch.obs.numpy(), batch.next_obs.numpy()
    b, h, w = obs.shape[:3]
    offsets = rng.integers(0, 2 * pad + 1, (b, 2))
    rows = (offsets[:, :1] + np.arange(h))[:, :, None]
    cols = (offsets[:, 1:] + np.arange(w))[:, None, :]
    which = np.arange(b)[:, None, None]
    widths = ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (obs.ndim - 3)

    def shift(x: np.ndarray) -> torch.Tensor:
        padded = np.pad(x, widths, mode='edge')
        return torch.from_numpy(np.ascontiguousarray(padded[which, rows, cols]))

    return batch._replace(obs=shift(obs), next_obs=shift(next_obs))


def augment_qmap_batch(batch: DQNBatch, n_yaw: int, rng: np.random.Generator) -> DQNBatch:
    """Each transition under a random symmetry of the square image (the 8 of the dihedral group).

    For top-down grasping with one-step targets a grasp's outcome depends on the scene around
    it, not on where the scene sits in the image: a mirrored or transposed image with the grasp
    pixel and its yaw mapped the same way is an equally valid experience (8x the data for
    free). Image rows run along world x and columns along y, so a yaw angle t (from +x towards
    +y) becomes ``pi/2 - t`` under a transpose and ``-t`` (= ``pi - t``, grasps are symmetric
    under half turns) under a flip of either axis. Actions are ``(yaw * S + row) * S + col``.
    """
    if n_yaw % 2:
        raise ValueError(f'yaw symmetries need an even number of yaw bins, got {n_yaw}')
    obs, next_obs = batch.obs.clone(), batch.next_obs.clone()
    b, _, s, s2 = obs.shape
    if s != s2:
        raise ValueError(f'image symmetries need a square image, got {s}x{s2}')
    a = batch.actions
    yaw, rest = a // (s * s), a % (s * s)
    row, col = rest // s, rest % s
    ops = torch.from_numpy(rng.integers(0, 2, (b, 3)))
    for i in range(b):
        transpose, flip_r, flip_c = (bool(v) for v in ops[i])
        for img in (obs, next_obs):
            x = img[i]
            if transpose:
                x = x.transpose(-1, -2)
            if flip_r:
                x = x.flip(-2)
            if flip_c:
                x = x.flip(-1)
            img[i] = x.clone()
        r, c, k = int(row[i]), int(col[i]), int(yaw[i])
        if transpose:
            r, c, k = c, r, (n_yaw // 2 - k) % n_yaw
        if flip_r:
            r, k = s - 1 - r, (n_yaw - k) % n_yaw
        if flip_c:
            c, k = s - 1 - c, (n_yaw - k) % n_yaw
        row[i], col[i], yaw[i] = r, c, k
    actions = (yaw * s + row) * s + col
    return batch._replace(obs=obs, actions=actions, next_obs=next_obs)
