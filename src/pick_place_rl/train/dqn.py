"""DQN trainer for the grasping tasks and the joint-space reacher.

Same shape as the DDPG+HER trainer: a frozen config dataclass (CLI flags and trainer-node
parameters), a wall-clock budget, epochs of ``steps_per_epoch`` env steps with epsilon-greedy
collection and Double DQN updates, then a greedy evaluation on fixed seeds (on held-out objects
for the KUKA tasks), an atomic checkpoint + replay snapshot (``resume=True`` continues), a
TensorBoard/CSV row, ``qnet_best.pt`` (best evaluation so far), and at the end ``qnet.pt``
(final inference weights), ``metrics.json`` and
``curve.png``.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
import threading
import time

import gymnasium as gym
import numpy as np
import torch

from pick_place_rl.core.checkpoint import (
    atomic_write_json,
    atomic_write_npz,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    to_numpy_tree,
)
from pick_place_rl.core.config import field, to_dict
from pick_place_rl.core.cpu_features import resolve_bf16
from pick_place_rl.core.dqn import (
    augment_qmap_batch,
    DQNAgent,
    DQNParams,
    fold_n_step,
    LinearSchedule,
    random_shift_batch,
    TransitionReplay,
)
from pick_place_rl.core.dqn_nets import build_net, KIND_CONV, KIND_MLP, KIND_QMAP
from pick_place_rl.core.seeding import seed_everything
from pick_place_rl.sim.kuka_grasp_env import AUX_MASKS
from pick_place_rl.sim.registry import check_env_id
from pick_place_rl.train.ddpg_her import time_to_thresholds
from pick_place_rl.train.progress import TrainLogger

#: what a run writes to out_dir (printed by the CLI)
OUTPUTS = 'checkpoint.pt replay.npz qnet.pt qnet_best.pt metrics.json curve.png tb/'

#: env id -> network kind
ENV_NETS = {'KukaDiverseGrasp-v0': KIND_CONV, 'KukaPixelGrasp-v0': KIND_QMAP,
            'JointReacher-v0': KIND_MLP}


@dataclass(frozen=True)
class DQNConfig:
    """Configuration of the DQN trainer (CLI flags and trainer-node parameters)."""

    env_id: str = field('KukaDiverseGrasp-v0', 'environment: ' + ', '.join(ENV_NETS),
                        choices=tuple(ENV_NETS))
    seed: int = field(0, 'seed of envs, network, exploration and evaluation')
    minutes: float = field(60.0, 'time budget; training stops after the epoch that crosses it '
                                 '(resumed runs count earlier time)')
    budget_clock: str = field('wall', "what 'minutes' counts: wall clock, or this process's CPU "
                                      'time (a fair budget on a machine shared with other jobs)',
                              choices=('wall', 'cpu'))
    epochs: int = field(1000, 'upper bound on epochs, whichever comes first with minutes')
    out_dir: str = field('runs/dqn_grasp', 'checkpoints, TensorBoard logs, curves, metrics')
    resume: bool = field(False, 'continue from out_dir/checkpoint.pt (weights, optimizer, '
                                'replay, exploration step, clock)')
    train_split: str = field('train', 'KUKA tasks: object set to train on (train|test|all)')
    eval_split: str = field('test', 'KUKA tasks: object set to evaluate on (held-out: test)')
    n_objects: int = field(5, 'KUKA tasks: objects in the tray per episode')
    reward_type: str = field('dense', 'reacher only: sparse or dense reward',
                             choices=('sparse', 'dense'))
    steps_per_epoch: int = field(1000, 'env steps between evaluations and checkpoints')
    buffer_size: int = field(50_000, 'replay capacity in transitions')
    batch_size: int = field(64, 'transitions per gradient step')
    learning_starts: int = field(500, 'env steps of pure exploration before updates start')
    train_every: int = field(1, 'one gradient step every N env steps')
    lr: float = field(5e-4, 'Adam learning rate')
    gamma: float = field(0.9, 'discount; 0 = one-step (bandit) targets')
    n_step: int = field(1, 'n-step returns: rewards of the next n steps, then a bootstrap; '
                           '>= the episode length = Monte Carlo returns (no bootstrap, and no '
                           'next-state pass in the update)')
    double: bool = field(True, 'Double DQN targets (online net picks, target net values)')
    huber_delta: float = field(1.0, 'Huber loss threshold')
    tau: float = field(1.0, 'target update weight on the online net (1 = hard copy)')
    target_update_every: int = field(250, 'target update every N gradient steps')
    eps_start: float = field(1.0, 'initial exploration probability')
    eps_end: float = field(0.1, 'final exploration probability')
    eps_decay_steps: int = field(10_000, 'env steps over which epsilon decays linearly')
    width: int = field(32, 'conv channels of the first layer (KUKA nets)')
    hidden: int = field(128, 'hidden units (reacher MLP)')
    n_eval_episodes: int = field(20, 'greedy evaluation episodes per epoch')
    eval_seed: int = field(1_000_000, 'first seed of the evaluation episodes (fixed per epoch)')
    torch_threads: int = field(1, 'torch intra-op threads')
    async_env: bool = field(False, 'step the training env in a worker process while the '
                                   'learner updates (two cores: physics and updates overlap); '
                                   'needs the wall-clock budget')
    n_envs: int = field(1, 'training envs stepped together, one worker process each '
                           '(needs async_env when > 1): with the physics the critical path, '
                           'a second env uses the spare core')
    bf16: bool = field(False, 'classic task: bfloat16 autocast of the updates (CPU), about 2x '
                              'faster on CPUs with AVX512-BF16 or AMX; elsewhere float32 and a '
                              'warning (emulated bf16 is ~9x slower)')
    augment: bool = field(False, 'pixel-wise task: train on each sampled grasp under a random '
                                 'mirror/transpose of the image (yaw mapped to match); classic '
                                 'task: on frames shifted by up to shift_pad pixels')
    shift_pad: int = field(4, 'classic task with augment: largest random shift in pixels')
    aux_weight: float = field(0.0, 'classic task: weight of an auxiliary loss that regresses '
                                   "the env's aux_target (gripper and nearest-object "
                                   'positions) from the frame; 0 = off')
    aux_object_weight: float = field(1.0, 'classic task: weight, against the other auxiliary '
                                          'targets, of those that say where the objects are '
                                          '(nearest-object offset, object map); the loss stays '
                                          'a weighted mean')
    coord_conv: bool = field(False, "classic task: two input channels with each pixel's row "
                                    'and column (CoordConv), for nets that must say where')
    fovea: bool = field(False, 'classic task: the foveal Q-net (Q-values from a crop around '
                               'the gripper, which a small net finds in the frame); needs '
                               'aux_weight > 0, which trains that search')
    tensorboard: bool = field(True, 'write TensorBoard scalars to out_dir/tb')
    progress: bool = field(True, 'show a progress bar')


@dataclass(frozen=True)
class DQNPixelConfig(DQNConfig):
    """Pixel-wise grasping: one-step targets, the U-Net Q-map, exploration on object pixels."""

    env_id: str = field('KukaPixelGrasp-v0', 'environment: ' + ', '.join(ENV_NETS),
                        choices=tuple(ENV_NETS))
    out_dir: str = field('runs/dqn_pixel', 'checkpoints, TensorBoard logs, curves, metrics')
    gamma: float = field(0.0, 'discount; 0 = one-step (bandit) targets')
    steps_per_epoch: int = field(300, 'env steps between evaluations and checkpoints')
    learning_starts: int = field(100, 'env steps of pure exploration before updates start')
    batch_size: int = field(32, 'transitions per gradient step')
    eps_decay_steps: int = field(2000, 'env steps over which epsilon decays linearly')
    eps_end: float = field(0.05, 'final exploration probability')
    width: int = field(16, 'channels of the first U-Net level')
    n_eval_episodes: int = field(10, 'greedy evaluation episodes per epoch')
    augment: bool = field(True, 'train on each sampled grasp under a random mirror/transpose '
                                'of the image (yaw mapped to match): 8x the experience')


@dataclass(frozen=True)
class DQNReacherConfig(DQNConfig):
    """The joint-space reacher: a fast example and learning test."""

    env_id: str = field('JointReacher-v0', 'environment: ' + ', '.join(ENV_NETS),
                        choices=tuple(ENV_NETS))
    out_dir: str = field('runs/dqn_reacher', 'checkpoints, TensorBoard logs, curves, metrics')
    minutes: float = field(2.0, 'time budget; training stops after the epoch that crosses it '
                                '(resumed runs count earlier time)')
    steps_per_epoch: int = field(500, 'env steps between evaluations and checkpoints')
    learning_starts: int = field(100, 'env steps of pure exploration before updates start')
    eps_decay_steps: int = field(1000, 'env steps over which epsilon decays linearly')
    eps_end: float = field(0.05, 'final exploration probability')
    lr: float = field(3e-3, 'Adam learning rate')
    gamma: float = field(0.5, 'discount; 0 = one-step (bandit) targets')
    batch_size: int = field(128, 'transitions per gradient step')
    target_update_every: int = field(50, 'target update every N gradient steps')


def make_dqn_env(config: DQNConfig, split: str) -> gym.Env:
    """The task env; KUKA tasks get their object split, the reacher its reward type."""
    check_env_id(config.env_id)
    if config.env_id not in ENV_NETS:
        raise ValueError(f'the DQN trainer runs {sorted(ENV_NETS)}, not {config.env_id!r}')
    if ENV_NETS[config.env_id] == KIND_MLP:
        kwargs = {'reward_type': config.reward_type}
    else:
        kwargs = {'split': split, 'n_objects': config.n_objects}
    return gym.make(config.env_id, disable_env_checker=True, **kwargs).unwrapped


def net_spec(config: DQNConfig, env: gym.Env) -> dict:
    kind = ENV_NETS[config.env_id]
    obs_shape = env.observation_space.shape
    n_actions = int(env.action_space.n)
    if kind == KIND_CONV:
        spec = {'image_size': obs_shape[0], 'n_actions': n_actions, 'width': config.width}
        if config.aux_weight > 0.0:
            spec['aux_dim'], spec['aux_masks'] = env.aux_dim, AUX_MASKS
        if config.coord_conv:
            spec['coords'] = True
        if config.fovea:
            spec['fovea'] = True
        return spec
    if kind == KIND_QMAP:
        return {'image_size': obs_shape[1], 'in_channels': obs_shape[0],
                'n_yaw': env.config.n_yaw, 'width': config.width, 'n_actions': n_actions}
    return {'obs_dim': obs_shape[0], 'n_actions': n_actions, 'hidden': config.hidden}


class DQNTrainer:
    """Owns envs, agent, replay and logger; :meth:`train` runs until the budget is spent."""

    CYCLE_STEPS = 25

    def __init__(self, config: DQNConfig) -> None:
        self.config = config
        self.out = Path(config.out_dir)
        torch.set_num_threads(config.torch_threads)
        # A config error is raised before two PyBullet scenes are built for nothing.
        if config.bf16 and ENV_NETS.get(config.env_id, KIND_CONV) != KIND_CONV:
            raise ValueError(f'bf16 is implemented for the classic conv net only, not for '
                             f'{config.env_id} (its output layer would round Q-values)')
        if config.async_env and config.budget_clock == 'cpu':
            raise ValueError("async_env needs budget_clock 'wall': the CPU clock counts this "
                             "process only, not the env worker's physics")
        if config.aux_weight < 0.0 or (config.aux_weight > 0.0
                                       and ENV_NETS.get(config.env_id) != KIND_CONV):
            raise ValueError(f'aux_weight={config.aux_weight}: must be >= 0, and > 0 only on '
                             'the classic task (its env reports aux_target)')
        if config.aux_object_weight <= 0.0:
            raise ValueError(f'aux_object_weight must be > 0, got {config.aux_object_weight}')
        if config.coord_conv and ENV_NETS.get(config.env_id) != KIND_CONV:
            raise ValueError(f'coord_conv is for the classic conv net, not {config.env_id}')
        if config.fovea and (config.aux_weight <= 0.0 or config.coord_conv):
            raise ValueError('fovea needs aux_weight > 0 (the auxiliary loss teaches it where '
                             'the gripper is) and no coord_conv')
        if config.n_step < 1:
            raise ValueError(f'n_step must be >= 1, got {config.n_step}')
        if config.n_envs < 1 or (config.n_envs > 1 and not config.async_env):
            raise ValueError(f'n_envs={config.n_envs}: must be >= 1, and > 1 needs async_env '
                             '(in-process envs would only take turns)')
        self.rng = seed_everything(config.seed)
        # The training envs live either here or in worker processes, never in both; the
        # eval env (same class, other object split) describes the spaces.
        self.workers = [EnvWorker(partial(make_dqn_env, config, config.train_split))
                        for _ in range(config.n_envs)] if config.async_env else []
        self.env = None if self.workers else make_dqn_env(config, config.train_split)
        self.eval_env = make_dqn_env(config, config.eval_split)
        self.kind = ENV_NETS[config.env_id]
        self.spec = {**net_spec(config, self.eval_env), 'env_id': config.env_id}
        params = DQNParams(lr=config.lr, gamma=config.gamma, double=config.double,
                           huber_delta=config.huber_delta, tau=config.tau,
                           bf16=resolve_bf16(config.bf16, 'DQN trainer'),
                           aux_weight=config.aux_weight,
                           aux_target_weights=self._aux_target_weights())
        self.agent = DQNAgent(build_net(self.kind, self.spec), params)
        space = self.eval_env.observation_space
        # Float images are stored as float16: half the memory, ample for [0, 1] colours and
        # heights in metres.
        store = np.float16 if (space.dtype == np.float32 and len(space.shape) == 3) else \
            space.dtype
        self.aux_dim = int(self.spec.get('aux_dim', 0))
        self.replay = TransitionReplay(config.buffer_size, space.shape, store, self.aux_dim,
                                       discounts=config.n_step > 1)
        self.epsilon = LinearSchedule(config.eps_start, config.eps_end, config.eps_decay_steps)
        self.per_step_success = bool(getattr(self.eval_env, 'success_per_step', False))
        self.epoch = 0
        self.env_steps = 0
        self.episodes = 0
        self.episodes_started = 0  # seeds of new episodes count these (== episodes on resume)
        self.elapsed_s = 0.0
        self.cpu_s = 0.0
        self.history: list[dict] = []
        # The observation each training env is at; None = start a new episode there.
        self.obs: list[np.ndarray | None] = [None] * config.n_envs
        self.aux: list[np.ndarray | None] = [None] * config.n_envs  # aux_target of self.obs
        # Each env's last steps not yet in the replay (n-step returns need the steps after).
        self.pending: list[deque] = [deque() for _ in range(config.n_envs)]
        self.recent: list[float] = []
        # Hooks for a host such as the trainer node (same contract as the DDPG+HER trainer),
        # called in the training thread: on_cycle() every ``CYCLE_STEPS`` env steps,
        # on_epoch(row) after each epoch's checkpoint. Setting ``stop`` ends training at the
        # next cycle boundary (the epoch in progress is dropped, as after a kill); train()
        # still exports the Q-net and metrics.
        self.on_cycle: Callable[[], None] | None = None
        self.on_epoch: Callable[[dict], None] | None = None
        self.stop = threading.Event()
        if config.resume:
            self._resume()

    def _aux_target_weights(self) -> tuple[float, ...] | None:
        """Per-target weights of the auxiliary loss (mean 1), or None when all are equal.

        Why: the 49 object-map cells and the object offset are what a grasp needs, but the 288
        mask cells, easy to learn locally, dominate an equal-weight mean."""
        c = self.config
        if c.aux_weight <= 0.0 or c.aux_object_weight == 1.0:
            return None
        weights = np.ones(self.eval_env.aux_dim)
        parts = self.eval_env.aux_slices()
        for name in ('object_offset', 'object_map'):
            weights[parts[name]] = c.aux_object_weight
        return tuple(float(w) for w in weights * len(weights) / weights.sum())

    # checkpoints --------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / 'checkpoint.pt'

    def save(self) -> None:
        train_state = {'epoch': self.epoch, 'env_steps': self.env_steps,
                       'episodes': self.episodes, 'elapsed_s': self.elapsed_s,
                       'cpu_s': self.cpu_s,
                       'history': self.history, 'rng': self.rng.bit_generator.state}
        atomic_write_npz(self.out / 'replay.npz', **self.replay.state_dict())
        save_checkpoint(self.checkpoint_path, self.kind, to_dict(self.config), self.spec,
                        {'agent': self.agent.state_dict(), 'train': train_state})

    def export(self, path: Path) -> None:
        """Inference-only file: the online Q-net (what models/ ships)."""
        save_checkpoint(path, self.kind, to_dict(self.config), self.spec,
                        {'online': self.agent.online.state_dict()})

    export_actor = export  # the name the trainer node calls

    def _resume(self) -> None:
        if not self.checkpoint_path.exists():
            raise CheckpointError(f'--resume: no checkpoint at {self.checkpoint_path}')
        payload = load_checkpoint(self.checkpoint_path, self.kind, self.spec)
        self.agent.load_state_dict(payload['state']['agent'])
        train = payload['state']['train']
        self.epoch, self.env_steps = int(train['epoch']), int(train['env_steps'])
        self.episodes = int(train['episodes'])
        self.episodes_started = self.episodes
        self.elapsed_s = float(train['elapsed_s'])
        self.cpu_s = float(train['cpu_s'])
        self.history = [dict(h) for h in train['history']]
        self.rng.bit_generator.state = to_numpy_tree(train['rng'])
        replay = self.out / 'replay.npz'
        if replay.exists():
            with np.load(replay) as data:
                self.replay.load_state_dict({k: data[k] for k in data.files})

    # acting -------------------------------------------------------------------------------
    def random_action(self, obs: np.ndarray) -> int:
        """Uniform action; on the pixel task, a uniform grasp on a pixel that holds an object
        (height channel above 1 cm), since grasps on the empty tray teach nothing new."""
        if self.kind == KIND_QMAP:
            occupied = np.flatnonzero(obs[-1] > 0.01)
            if occupied.size:
                s2 = obs.shape[1] * obs.shape[2]
                yaw = int(self.rng.integers(self.spec['n_yaw']))
                return yaw * s2 + int(self.rng.choice(occupied))
        return int(self.rng.integers(self.spec['n_actions']))

    def greedy(self, obs: np.ndarray) -> int:
        return self.agent.act(obs)

    def _collect(self, n_steps: int) -> dict[str, float]:
        """About ``n_steps`` env steps (whole vector steps of ``n_envs``), learning as it goes."""
        c = self.config
        losses: dict[str, float] = {}
        n = len(self.obs)
        taken, next_cycle = 0, self.CYCLE_STEPS
        while taken < n_steps:
            if taken >= next_cycle:
                next_cycle += self.CYCLE_STEPS
                if self.on_cycle is not None:
                    self.on_cycle()
                if self.stop.is_set():
                    break
            actions = []
            for i in range(n):
                if self.obs[i] is None:
                    # Every episode has its own seed: a resumed run continues the sequence.
                    seed = int(c.seed * 1_000_003 + self.episodes_started)
                    self.episodes_started += 1
                    self.obs[i], info = (self.workers[i].reset(seed) if self.workers else
                                         self.env.reset(seed=seed))
                    self.aux[i] = info.get('aux_target')
                eps = self.epsilon(self.env_steps + i)
                if self.env_steps + i < c.learning_starts or self.rng.random() < eps:
                    actions.append(self.random_action(self.obs[i]))
                else:
                    actions.append(self.greedy(self.obs[i]))
            if self.workers:
                # The updates run while the workers simulate this step (they do not see the
                # transitions in flight: one step of lag, as with any asynchronous actor).
                for worker, action in zip(self.workers, actions):
                    worker.step_async(action)
                for i in range(n):
                    losses = self._learn(self.env_steps + i + 1, losses)
                results = [worker.step_wait() for worker in self.workers]
            else:
                results = [self.env.step(actions[0])]
            for i, (next_obs, reward, terminated, truncated, info) in enumerate(results):
                self._store(i, (self.obs[i], actions[i], reward, next_obs, terminated,
                                self.aux[i]), terminated or truncated)
                self.env_steps += 1
                if self.per_step_success:
                    self.recent.append(float(info.get('is_success', False)))
                if terminated or truncated:
                    self.episodes += 1
                    if not self.per_step_success:
                        self.recent.append(float(info.get('is_success', False)))
                    self.obs[i] = None
                else:
                    self.obs[i], self.aux[i] = next_obs, info.get('aux_target')
                if not self.workers:
                    losses = self._learn(self.env_steps, losses)
            taken += n
        return losses

    def _store(self, i: int, transition: tuple, episode_over: bool) -> None:
        """Queue env ``i``'s transition; replay the n-step transitions that are complete."""
        n, gamma = self.config.n_step, self.config.gamma
        pending = self.pending[i]
        pending.append(transition)
        while len(pending) >= n or (episode_over and pending):
            obs, action, ret, next_obs, done, discount, aux = fold_n_step(
                list(pending)[:n], gamma)
            self.replay.add(obs, action, ret, next_obs, done, aux,
                            discount if n > 1 else None)
            pending.popleft()

    def _learn(self, env_steps: int, losses: dict[str, float]) -> dict[str, float]:
        """One gradient step when ``env_steps`` (counting the step just taken) is due one."""
        c = self.config
        if env_steps < c.learning_starts or env_steps % c.train_every:
            return losses
        batch = self.replay.sample(c.batch_size, self.rng)
        if c.augment and self.kind == KIND_QMAP:
            batch = augment_qmap_batch(batch, self.spec['n_yaw'], self.rng)
        elif c.augment and self.kind == KIND_CONV:
            batch = random_shift_batch(batch, c.shift_pad, self.rng)
        losses = self.agent.update(batch)
        if self.agent.updates % c.target_update_every == 0:
            self.agent.update_target()
        return losses

    def evaluate(self, env: gym.Env, n_episodes: int, first_seed: int,
                 policy=None) -> dict[str, float]:
        """Greedy (or ``policy``) episodes seeded ``first_seed + i``.

        ``success_rate``: per grasp attempt on the pixel task, per episode elsewhere.
        """
        policy = policy or self.greedy
        successes, returns, attempts = 0.0, [], 0
        for i in range(n_episodes):
            obs, _ = env.reset(seed=first_seed + i)
            done, ret = False, 0.0
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy(obs))
                ret += reward
                done = terminated or truncated
                if self.per_step_success:
                    successes += float(info.get('is_success', False))
                    attempts += 1
            if not self.per_step_success:
                successes += float(info.get('is_success', False))
                attempts += 1
            returns.append(ret)
        return {'success_rate': successes / max(attempts, 1), 'return': float(np.mean(returns)),
                'attempts': attempts}

    # training -----------------------------------------------------------------------------
    def train(self) -> dict:
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        spent = (lambda: self.cpu_s) if c.budget_clock == 'cpu' else (lambda: self.elapsed_s)
        logger = TrainLogger(self.out, c.minutes * 60.0, tensorboard=c.tensorboard,
                             progress=c.progress, initial_s=spent())
        try:
            while (self.epoch < c.epochs and spent() < c.minutes * 60.0
                   and not self.stop.is_set()):
                start, cpu_start = time.perf_counter(), time.process_time()
                self.recent = []
                losses = self._collect(c.steps_per_epoch)
                if self.stop.is_set():
                    break
                train_s = time.perf_counter() - start
                result = self.evaluate(self.eval_env, c.n_eval_episodes, c.eval_seed)
                self.elapsed_s += time.perf_counter() - start
                self.cpu_s += time.process_time() - cpu_start
                self.epoch += 1
                row = {'epoch': self.epoch, 'env_steps': self.env_steps,
                       'wall_s': round(self.elapsed_s, 2), 'cpu_s': round(self.cpu_s, 2),
                       'train_s': round(train_s, 2), 'episodes': self.episodes,
                       'epsilon': round(self.epsilon(self.env_steps), 4),
                       'train_success': float(np.mean(self.recent)) if self.recent else 0.0,
                       **result, **losses}
                best = max((h['success_rate'] for h in self.history), default=-1.0)
                self.history.append(row)
                self.save()
                if row['success_rate'] > best:
                    self.export(self.out / 'qnet_best.pt')
                if self.on_epoch is not None:
                    self.on_epoch(row)
                logger.log(row)
        finally:
            logger.close()
            for worker in self.workers:
                worker.close()
        return self.finish()

    def finish(self) -> dict:
        """Write the Q-net export, metrics JSON and success-vs-wall-clock PNG."""
        from pick_place_rl.train.plots import plot_curve
        self.export(self.out / 'qnet.pt')
        metrics = {'env_id': self.config.env_id, 'kind': self.kind, 'seed': self.config.seed,
                   'epochs': self.epoch, 'env_steps': self.env_steps, 'episodes': self.episodes,
                   'wall_s': round(self.elapsed_s, 1), 'cpu_s': round(self.cpu_s, 1),
                   'final': self.history[-1] if self.history else {},
                   'best': max(self.history, key=lambda h: h['success_rate'], default={}),
                   'time_to': time_to_thresholds(self.history, (0.5, 0.6, 0.85, 0.9)),
                   'cpu_time_to': time_to_thresholds(
                       [{**h, 'wall_s': h['cpu_s']} for h in self.history], (0.5, 0.6, 0.85)),
                   'config': to_dict(self.config), 'history': self.history}
        atomic_write_json(self.out / 'metrics.json', metrics)
        title = self.config.env_id
        if self.kind != KIND_MLP:
            title += f' ({self.config.eval_split} objects)'
        plot_curve(self.history, self.out / 'curve.png', title=title)
        if self.config.budget_clock == 'cpu':
            plot_cpu_curve(self.history, self.out / 'curve_cpu.png', title)
        return metrics


class EnvWorker:
    """One env stepped in a worker process (gymnasium's AsyncVectorEnv of one, no autoreset).

    The trainer sends an action, runs its gradient step, then collects the result: on two
    cores the PyBullet physics and the update overlap instead of taking turns. Resets stay
    explicit so every episode keeps its own seed.
    """

    def __init__(self, env_fn: Callable[[], gym.Env]) -> None:
        # spawn, not fork: the parent already runs torch (OpenMP) threads.
        self.vec = gym.vector.AsyncVectorEnv(
            [env_fn], context='spawn', autoreset_mode=gym.vector.AutoresetMode.DISABLED)

    def reset(self, seed: int) -> tuple[np.ndarray, dict]:
        obs, info = self.vec.reset(seed=[seed])
        return obs[0], self._mine(info)

    def step_async(self, action: int) -> None:
        self.vec.step_async(np.array([action]))

    def step_wait(self) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.vec.step_wait()
        return (obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]),
                self._mine(info))

    @staticmethod
    def _mine(info: dict) -> dict:
        # A vector env's info holds arrays, with a '_key' mask of which envs set each key.
        return {k: v[0] for k, v in info.items()
                if not k.startswith('_') and bool(info.get('_' + k, [True])[0])}

    def close(self) -> None:
        self.vec.close()


def plot_cpu_curve(history: list[dict], path: Path, title: str) -> None:
    """Evaluation success against CPU minutes of the trainer (the budget on a shared machine)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot([h['cpu_s'] / 60.0 for h in history], [h['success_rate'] for h in history],
            marker='.')
    ax.set_xlabel('CPU time of the trainer process (min)')
    ax.set_ylabel('success rate (greedy, evaluation)')
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
