"""DDPG + HER trainer: collect -> store -> update -> evaluate -> checkpoint, under a time budget.

``n_envs`` environments stepped together, by default in a worker process while the learner
updates (:class:`~pick_place_rl.train.env_pool.EnvPool`), else in-process (gymnasium
SyncVectorEnv). An epoch is ``n_cycles`` cycles of (one episode per env, ``n_batches``
gradient steps, a soft target update), then a deterministic evaluation on fixed seeds, a
checkpoint and a replay snapshot, both written atomically; a killed run resumed with
``resume=True`` loses at most the epoch in progress.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
import math
from pathlib import Path
import threading
import time

import gymnasium as gym
import numpy as np
import torch

from pick_place_rl.core.checkpoint import (
    atomic_write_json,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from pick_place_rl.core.config import field, to_dict
from pick_place_rl.core.cpu_features import resolve_bf16
from pick_place_rl.core.ddpg import DDPGAgent, DDPGParams
from pick_place_rl.core.her import HerSampler
from pick_place_rl.core.policy import KIND
from pick_place_rl.core.replay import EpisodeReplayBuffer
from pick_place_rl.core.rewards import sparse_reward
from pick_place_rl.core.seeding import seed_everything
from pick_place_rl.sim.registry import make_env
from pick_place_rl.train.env_pool import EnvPool
from pick_place_rl.train.progress import TrainLogger


@dataclass(frozen=True)
class DDPGHerConfig:
    """Configuration of the DDPG(+HER) trainer (CLI flags and trainer-node parameters)."""

    env_id: str = field('FetchPickAndPlace-v4', 'gymnasium environment id')
    seed: int = field(0, 'seed of envs, networks, exploration and evaluation')
    minutes: float = field(60.0, 'wall-clock budget; training stops after the epoch that '
                                 'crosses it (resumed runs count earlier time)')
    epochs: int = field(1000, 'upper bound on epochs, whichever comes first with minutes')
    out_dir: str = field('runs/ddpg_her', 'checkpoints, TensorBoard logs, curves, metrics')
    resume: bool = field(False, 'continue from out_dir/checkpoint.pt (weights, optimizers, '
                                'normalizers, replay, clock)')
    her: bool = field(True, 'relabel goals with HER; off = plain DDPG on the env reward')
    n_envs: int = field(16, 'environments stepped together; one episode each per cycle')
    n_cycles: int = field(25, 'collect/update cycles per epoch')
    n_batches: int = field(40, 'gradient steps per cycle')
    batch_size: int = field(1024, 'transitions per gradient step')
    buffer_size: int = field(1_000_000, 'replay capacity in transitions')
    replay_k: int = field(4, "HER: relabelled goals per real goal ('future' strategy)")
    noise_eps: float = field(0.2, 'Gaussian exploration noise std, fraction of max action')
    random_eps: float = field(0.3, 'probability of a uniformly random action')
    hidden: int = field(256, 'hidden units per layer (actor and critic)')
    layers: int = field(3, 'hidden layers (actor and critic)')
    lr_actor: float = field(1e-3, 'actor Adam learning rate')
    lr_critic: float = field(1e-3, 'critic Adam learning rate')
    gamma: float = field(0.98, 'discount')
    n_step: int = field(1, 'n-step returns (1 = the HER recipe); rewards of n steps under the '
                           '(relabelled) goal, then the bootstrapped value')
    tau: float = field(0.05, 'soft target update weight on the online networks')
    target_update_every: int = field(0, 'soft target update every N gradient steps; 0 = once '
                                        'per cycle (the HER recipe)')
    action_l2: float = field(1.0, 'L2 penalty on actions in the actor loss')
    clip_target_q: bool = field(True, 'clip targets to [-1/(1-gamma), 0] (sparse rewards)')
    warmup_episodes: int = field(0, 'random-action episodes before learning starts')
    n_eval_episodes: int = field(32, 'deterministic evaluation episodes per epoch')
    eval_seed: int = field(1_000_000, 'first seed of the evaluation episodes (fixed per epoch)')
    final_eval_episodes: int = field(100, 'deterministic episodes of the final evaluation')
    bf16: bool = field(True, 'bfloat16 autocast for hidden layers of the update (CPU); used '
                             'only where the CPU has native bfloat16, else float32 and a warning')
    torch_threads: int = field(1, 'torch intra-op threads')
    async_envs: bool = field(True, 'step the training envs in worker processes while the '
                                   'learner updates (overlaps simulation and learning)')
    env_workers: int = field(1, 'processes the training envs are spread over (async_envs); '
                                'one per spare core')
    worker_nice: int = field(10, 'niceness added to the env worker processes (async_envs): '
                                 'the learner is the critical path and keeps its core')
    tensorboard: bool = field(True, 'write TensorBoard scalars to out_dir/tb')
    progress: bool = field(True, 'show a progress bar')

    def __post_init__(self) -> None:
        """Refuse values that would only fail later, deep inside gymnasium or torch."""
        positive = ('n_envs', 'env_workers', 'n_cycles', 'batch_size', 'buffer_size', 'hidden',
                    'layers', 'n_step', 'n_eval_episodes', 'final_eval_episodes',
                    'torch_threads', 'epochs')
        bad = [f'{name}={getattr(self, name)} (must be >= 1)' for name in positive
               if getattr(self, name) < 1]
        checks = {'minutes': self.minutes > 0, 'worker_nice': 0 <= self.worker_nice <= 19,
                  'gamma': 0 < self.gamma < 1,
                  'tau': 0 < self.tau <= 1, 'replay_k': self.replay_k >= 0,
                  'n_batches': self.n_batches >= 0, 'noise_eps': self.noise_eps >= 0,
                  'random_eps': 0 <= self.random_eps <= 1,
                  'target_update_every': self.target_update_every >= 0,
                  'lr_actor': self.lr_actor > 0, 'lr_critic': self.lr_critic > 0}
        bad += [f'{name}={getattr(self, name)}' for name, ok in checks.items() if not ok]
        if self.her and self.replay_k == 0:
            bad.append('her=True needs replay_k >= 1')
        if bad:
            raise ValueError('invalid DDPG+HER config: ' + ', '.join(bad))


#: Named starting points; explicit flags override them.
PRESETS: dict[str, dict] = {
    # The classic single-worker HER recipe (Andrychowicz et al. 2017 / baselines her, 1 CPU):
    # 2 episodes, 40 updates of 256 per cycle.
    'baseline': dict(n_envs=2, n_cycles=50, n_batches=40, batch_size=256, bf16=False,
                     torch_threads=1, n_eval_episodes=10),
    # The defaults, this package's fast recipe: 16 envs (800 steps) per cycle and 40 updates
    # of 1024 in bfloat16, i.e. the update count per env step of the paper's 8-worker MPI run
    # (40 per 8 x 2 x 50 steps) at half its effective batch; envs step in worker processes
    # while the learner updates, so simulation and learning use both cores.
    'fast': dict(),
    # FetchReach needs no grasping and few samples: small batches, frequent evaluation.
    'reach': dict(env_id='FetchReach-v4', n_envs=2, n_cycles=10, n_batches=20, batch_size=256,
                  bf16=False, torch_threads=1, n_eval_episodes=16),
    # Pendulum-v1: plain DDPG, dense rewards, no HER, no target clipping.
    'pendulum': dict(env_id='Pendulum-v1', her=False, replay_k=0, clip_target_q=False,
                     n_envs=1, n_cycles=5, n_batches=200, batch_size=256, action_l2=0.0,
                     random_eps=0.0, noise_eps=0.1, gamma=0.99, tau=0.005, target_update_every=1,
                     warmup_episodes=5, n_eval_episodes=5, bf16=False, torch_threads=1),
}


def apply_preset(config: DDPGHerConfig, name: str) -> DDPGHerConfig:
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r}; choose from {sorted(PRESETS)}')
    return replace(config, **PRESETS[name])


def make_agent(config: DDPGHerConfig, env: gym.Env) -> DDPGAgent:
    space = env.observation_space
    act_space = env.action_space
    params = DDPGParams(hidden=config.hidden, layers=config.layers, lr_actor=config.lr_actor,
                        lr_critic=config.lr_critic, gamma=config.gamma, tau=config.tau,
                        action_l2=config.action_l2, clip_target_q=config.clip_target_q,
                        max_action=float(act_space.high.max()),
                        bf16=resolve_bf16(config.bf16, 'DDPG+HER trainer'))
    return DDPGAgent(space['observation'].shape[-1], space['desired_goal'].shape[-1],
                     act_space.shape[-1], params)


def rollout(env: gym.vector.VectorEnv, horizon: int, policy: Callable, seed: int | None = None,
            between: Callable[[int], None] | None = None,
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run one fixed-horizon episode in every sub-env. Returns episode arrays and stats.

    ``between(t)`` runs after the actions of step t are sent; with an :class:`EnvPool` the
    environments step in their worker processes meanwhile, so the learner's updates and the
    simulation overlap on separate cores.
    """
    overlap = hasattr(env, 'step_async')
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    ep = {'obs': [], 'ag': [], 'g': [], 'actions': [], 'rewards': []}
    returns = np.zeros(n)
    info: dict = {}
    for t in range(horizon):
        action = policy(obs['observation'], obs['desired_goal'])
        ep['obs'].append(obs['observation'])
        ep['ag'].append(obs['achieved_goal'])
        ep['g'].append(obs['desired_goal'])
        ep['actions'].append(action)
        if overlap:
            env.step_async(action)
            if between is not None:
                between(t)
            obs, reward, _, _, info = env.step_wait()
        else:
            obs, reward, _, _, info = env.step(action)
            if between is not None:
                between(t)
        ep['rewards'].append(reward)
        returns += reward
    ep['obs'].append(obs['observation'])
    ep['ag'].append(obs['achieved_goal'])
    arrays = {k: np.stack(v, axis=1).astype(np.float32) for k, v in ep.items()}
    success = np.asarray(info.get('is_success', np.full(n, np.nan)), np.float64)
    return arrays, {'return': returns, 'success': success}


def evaluate(env: gym.vector.VectorEnv, horizon: int, policy: Callable, n_episodes: int,
             first_seed: int) -> dict[str, float]:
    """Deterministic policy on episodes seeded ``first_seed + i``; success at the last step."""
    successes, returns = [], []
    n = env.num_envs
    for start in range(0, n_episodes, n):
        seeds = [first_seed + start + i for i in range(n)]
        _, stats = rollout(env, horizon, policy, seed=seeds)
        take = min(n, n_episodes - start)
        successes.extend(stats['success'][:take])
        returns.extend(stats['return'][:take])
    return {'success_rate': float(np.mean(successes)), 'return': float(np.mean(returns))}


class DDPGHerTrainer:
    """Owns envs, agent, replay and logger; :meth:`train` runs until the budget is spent."""

    def __init__(self, config: DDPGHerConfig) -> None:
        self.config = config
        self.out = Path(config.out_dir)
        torch.set_num_threads(config.torch_threads)
        self.rng = seed_everything(config.seed)
        self.eval_env = gym.vector.SyncVectorEnv(
            [lambda: make_env(config.env_id) for _ in range(min(config.n_envs,
                                                                  config.n_eval_episodes))])
        if config.async_envs:
            self.env = EnvPool(partial(make_env, config.env_id), config.n_envs,
                               config.env_workers, config.worker_nice)
        else:
            self.env = gym.vector.SyncVectorEnv(
                [partial(make_env, config.env_id) for _ in range(config.n_envs)])
        self.horizon = int(self.eval_env.envs[0].spec.max_episode_steps)
        self.agent = make_agent(config, self.eval_env.envs[0])
        self.buffer = EpisodeReplayBuffer(config.buffer_size, self.horizon, self.agent.obs_dim,
                                          self.agent.goal_dim, self.agent.act_dim,
                                          store_rewards=not config.her)
        self.sampler = HerSampler(sparse_reward if config.her else None,
                                  config.replay_k if config.her else 0, config.n_step,
                                  config.gamma)
        self.epoch = 0
        self.env_steps = 0
        self.elapsed_s = 0.0
        self.history: list[dict[str, float]] = []
        self.first_reset = True
        self.losses: dict[str, float] = {}
        # Hooks for a host such as the trainer node, called in the training thread: on_cycle()
        # after every collect/update cycle, on_epoch(row) after each epoch's checkpoint. Setting
        # ``stop`` ends training at the next cycle boundary (the epoch in progress is dropped,
        # as after a kill); train() still exports the actor and metrics.
        self.on_cycle: Callable[[], None] | None = None
        self.on_epoch: Callable[[dict], None] | None = None
        self.stop = threading.Event()
        if config.resume:
            self._resume()

    # checkpoints --------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / 'checkpoint.pt'

    def _spec(self) -> dict:
        return {**self.agent.spec, 'env_id': self.config.env_id}

    def save(self) -> None:
        train_state = {'epoch': self.epoch, 'env_steps': self.env_steps,
                       'elapsed_s': self.elapsed_s, 'history': self.history,
                       'rng': self.rng.bit_generator.state}
        self.buffer.save(self.out / 'replay.npz')
        save_checkpoint(self.checkpoint_path, KIND, to_dict(self.config) | {
            'max_action': self.agent.params.max_action}, self._spec(),
            {**self.agent.state_dict(), 'train': train_state})

    def export_actor(self, path: Path) -> None:
        """Inference-only file: actor weights + normalizers (what models/ ships)."""
        s = self.agent.state_dict()
        save_checkpoint(path, KIND, to_dict(self.config) | {
            'max_action': self.agent.params.max_action}, self._spec(),
            {'actor': s['actor'], 'obs_norm': s['obs_norm'], 'goal_norm': s['goal_norm']})

    def _resume(self) -> None:
        if not self.checkpoint_path.exists():
            raise CheckpointError(f'--resume: no checkpoint at {self.checkpoint_path}')
        payload = load_checkpoint(self.checkpoint_path, KIND, self._spec())
        self.agent.load_state_dict(payload['state'])
        train = payload['state']['train']
        self.epoch, self.env_steps = int(train['epoch']), int(train['env_steps'])
        self.elapsed_s = float(train['elapsed_s'])
        self.history = [dict(h) for h in train['history']]
        self.rng.bit_generator.state = train['rng']
        replay = self.out / 'replay.npz'
        if replay.exists():
            self.buffer.load(replay)

    # training -----------------------------------------------------------------------------
    def _explore(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        c = self.config
        return self.agent.act(obs, goal, self.rng, c.noise_eps, c.random_eps)

    def _random(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        m = self.agent.params.max_action
        return self.rng.uniform(-m, m, (obs.shape[0], self.agent.act_dim)).astype(np.float32)

    def _collect(self, policy: Callable, between: Callable[[int], None] | None = None) -> None:
        seed = None
        if self.first_reset:  # seed the env streams once; later resets continue them
            seed = [self.config.seed * 1000 + i + self.epoch * 100 for i in range(
                self.config.n_envs)]
            self.first_reset = False
        episodes, _ = rollout(self.env, self.horizon, policy, seed=seed, between=between)
        self.buffer.store(episodes)
        self.env_steps += self.config.n_envs * self.horizon
        # Goals the learner sees are desired goals and (relabelled) achieved goals.
        self.agent.obs_norm.update(episodes['obs'])
        self.agent.goal_norm.update(episodes['g'])
        self.agent.goal_norm.update(episodes['ag'])

    def _updates(self, count: int) -> None:
        """``count`` gradient steps on replayed data (none while the buffer is empty)."""
        c = self.config
        for _ in range(count if self.buffer.n_episodes else 0):
            batch = self.sampler.sample(self.buffer.data, self.buffer.n_episodes,
                                        c.batch_size, self.rng)
            self.losses = self.agent.update(batch)
            if c.target_update_every and self.agent.n_updates % c.target_update_every == 0:
                self.agent.update_targets()

    def _cycle(self) -> None:
        """Collect one episode per env while spreading ``n_batches`` updates over its steps.

        The updates use the replay as it was before this episode (as with collect-then-update
        they would see it one cycle later at most): off-policy learning does not mind, and it
        lets the simulation run in parallel with the updates.
        """
        c = self.config

        def between(t: int) -> None:
            self._updates((t + 1) * c.n_batches // self.horizon - t * c.n_batches // self.horizon)

        self._collect(self._explore, between)
        if not c.target_update_every:
            self.agent.update_targets()

    def deterministic_policy(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return self.agent.act(obs, goal)

    def train(self) -> dict:
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        logger = TrainLogger(self.out, c.minutes * 60.0, tensorboard=c.tensorboard,
                             progress=c.progress, initial_s=self.elapsed_s)
        if self.epoch == 0 and self.buffer.n_episodes == 0:
            start = time.perf_counter()
            while self.buffer.total_episodes < c.warmup_episodes:
                self._collect(self._random)
            self.elapsed_s += time.perf_counter() - start
        try:
            while (self.epoch < c.epochs and self.elapsed_s < c.minutes * 60.0
                   and not self.stop.is_set()):
                start = time.perf_counter()
                for _ in range(c.n_cycles):
                    self._cycle()
                    if self.on_cycle is not None:
                        self.on_cycle()
                    if self.stop.is_set():
                        break
                if self.stop.is_set():
                    break
                train_s = time.perf_counter() - start
                result = evaluate(self.eval_env, self.horizon, self.deterministic_policy,
                                  c.n_eval_episodes, c.eval_seed)
                self.elapsed_s += time.perf_counter() - start
                self.epoch += 1
                row = {'epoch': self.epoch, 'env_steps': self.env_steps,
                       'wall_s': round(self.elapsed_s, 2), 'train_s': round(train_s, 2),
                       **result, **self.losses}
                self.history.append(row)
                # The wall clock is everything the run costs: the checkpoint and replay written
                # each epoch count too (in the next epoch's wall_s; the budget check sees them).
                saved = time.perf_counter()
                self.save()
                self.elapsed_s += time.perf_counter() - saved
                logger.log(row)
                if self.on_epoch is not None:
                    self.on_epoch(row)
        finally:
            logger.close()
        return self.finish()

    def finish(self) -> dict:
        """Write the actor export, metrics JSON and success-vs-wall-clock PNG."""
        from pick_place_rl.train.plots import plot_curve
        self.export_actor(self.out / 'actor.pt')
        final = evaluate(self.eval_env, self.horizon, self.deterministic_policy,
                         self.config.final_eval_episodes, self.config.eval_seed)
        metrics = {'env_id': self.config.env_id, 'seed': self.config.seed,
                   'epochs': self.epoch, 'env_steps': self.env_steps,
                   'wall_s': round(self.elapsed_s, 1),
                   'final': {**final, 'episodes': self.config.final_eval_episodes},
                   'time_to': time_to_thresholds(self.history),
                   'config': to_dict(self.config), 'history': self.history}
        atomic_write_json(self.out / 'metrics.json', metrics)
        self.env.close()  # worker processes of the training envs
        plot_curve(self.history, self.out / 'curve.png', title=self.config.env_id)
        return metrics


def time_to_thresholds(history: list[dict], thresholds: tuple[float, ...] = (0.5, 0.9, 0.95),
                       ) -> dict[str, float | None]:
    """Wall-clock seconds at which evaluation success first reached each threshold."""
    out: dict[str, float | None] = {}
    for th in thresholds:
        hit = [h['wall_s'] for h in history if not math.isnan(h['success_rate'])
               and h['success_rate'] >= th]
        out[f'{th:g}'] = hit[0] if hit else None
    return out
