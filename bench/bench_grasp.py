"""Benchmark of the DQN grasp nets on held-out objects, with the random floor in the same run.

For each task, the same episodes (seeds ``--seed`` .. ``--seed + episodes - 1`` of the test
object split) are played by:

* ``net``     the shipped Q-net, greedy;
* ``random``  uniformly random actions;
* ``random on objects`` (pixel task only) a random grasp on a pixel whose height says an object
  is there -- the floor a learned net must beat to show it learned *where* to grasp, not just
  *that* objects are not the tray;
* ``scripted (true object positions)`` (classic task, ``--scripted``) moves to the nearest
  object using the simulator's ground truth: a ceiling of what the MDP allows.

Success: per episode for the classic task (one grasp attempt each), per grasp attempt for the
pixel task. Also the grasp-net inference latency at the serving resolution (one image, batch 1,
``--threads`` torch threads), p50/p99 over ``--latency-samples`` calls.

``--profile N``: instead, where one trainer step's CPU time goes -- env reset, env step (random
actions) and one DQN update at the trainer's default batch size -- over N env steps.

Run: ``python bench/bench_grasp.py --task pixel --weights models/dqn_pixel/qnet.pt --episodes 200``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from pick_place_rl.core.dqn_nets import KIND_CONV, KIND_QMAP
from pick_place_rl.core.grasp_policy import GraspPolicy
from pick_place_rl.sim.kuka_grasp_env import (
    DIVERSE_ACTIONS,
    KukaDiverseGraspEnv,
    KukaPixelGraspEnv,
)

TASKS = {'classic': (KukaDiverseGraspEnv, KIND_CONV), 'pixel': (KukaPixelGraspEnv, KIND_QMAP)}


def play(env, policy, episodes: int, first_seed: int) -> dict[str, float]:
    successes, attempts = 0.0, 0
    per_step = getattr(env, 'success_per_step', False)
    start = time.perf_counter()
    for i in range(episodes):
        obs, _ = env.reset(seed=first_seed + i)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            done = terminated or truncated
            if per_step:
                successes += float(info['is_success'])
                attempts += 1
        if not per_step:
            successes += float(info['is_success'])
            attempts += 1
    rate = successes / max(attempts, 1)
    # 95% Wilson interval: the honest error bar of a success rate from a few hundred trials
    z, n = 1.96, max(attempts, 1)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {'success_rate': round(rate, 4), 'ci95': [round(centre - half, 4),
                                                     round(centre + half, 4)],
            'attempts': attempts, 'episodes': episodes,
            'wall_s': round(time.perf_counter() - start, 1)}


def nearest_object_policy(env: KukaDiverseGraspEnv):
    """A scripted ceiling for the classic task: it reads the true object positions (which the
    learner never sees) and takes the move that brings the gripper closest to the nearest
    object still in the tray, yaw kept at 0. What the MDP allows at its 6 cm step, not a
    bound on what a learned policy can do."""
    moves = env.config.xy_step * np.array([(dx, dy) for dx, dy, _ in DIVERSE_ACTIONS], float)

    def act(_obs: np.ndarray) -> int:
        here, goal = env.target[:2], env.nearest_object_xy()
        return int(np.argmin(np.linalg.norm(here + moves - goal, axis=1)))
    return act


def latency(policy: GraspPolicy, obs: np.ndarray, samples: int) -> dict[str, float]:
    for _ in range(10):
        policy.act(obs)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        policy.act(obs)
        times.append((time.perf_counter() - t0) * 1e3)
    return {'n': samples, 'p50_ms': round(float(np.percentile(times, 50)), 3),
            'p99_ms': round(float(np.percentile(times, 99)), 3),
            'max_ms': round(float(np.max(times)), 3)}


def profile(task: str, env, n_steps: int) -> dict[str, float]:
    """CPU milliseconds (this process) per env reset, env step and DQN update."""
    from pick_place_rl.core.dqn import DQNAgent, DQNParams, TransitionReplay
    from pick_place_rl.core.dqn_nets import build_net
    from pick_place_rl.train.dqn import DQNConfig, DQNPixelConfig, net_spec

    config = DQNPixelConfig() if task == 'pixel' else DQNConfig()
    rng = np.random.default_rng(0)
    resets, steps = [], []
    obs, _ = env.reset(seed=0)
    space = env.observation_space
    replay = TransitionReplay(n_steps, space.shape, space.dtype)
    for i in range(n_steps):
        t0 = time.process_time()
        next_obs, r, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
        steps.append(time.process_time() - t0)
        replay.add(obs, 0, r, next_obs, term)
        obs = next_obs
        if term or trunc:
            t0 = time.process_time()
            obs, _ = env.reset(seed=i + 1)
            resets.append(time.process_time() - t0)
    spec = net_spec(config, env)
    agent = DQNAgent(build_net(TASKS[task][1], spec), DQNParams(gamma=config.gamma))
    updates = []
    for _ in range(20):
        batch = replay.sample(config.batch_size, rng)
        t0 = time.process_time()
        agent.update(batch)
        updates.append(time.process_time() - t0)

    def ms(v: list[float]) -> float | None:
        return round(1e3 * float(np.mean(v)), 1) if v else None

    return {'env_step_cpu_ms': ms(steps), 'env_reset_cpu_ms': ms(resets),
            'update_cpu_ms': ms(updates[2:]), 'batch_size': config.batch_size,
            'env_steps': n_steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--task', choices=sorted(TASKS), required=True)
    ap.add_argument('--weights', help='qnet.pt exported by the DQN trainer')
    ap.add_argument('--episodes', type=int, default=200)
    ap.add_argument('--seed', type=int, default=2_000_000, help='first episode seed')
    ap.add_argument('--split', default='test', help='object set (held-out: test)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--latency-samples', type=int, default=1000)
    ap.add_argument('--skip-random', action='store_true', help='only the net')
    ap.add_argument('--scripted', action='store_true',
                    help='classic task: also the scripted policy that sees the true object '
                         'positions (a ceiling of the MDP)')
    ap.add_argument('--out', default=None, help='write the result JSON here too')
    ap.add_argument('--profile', type=int, default=0, metavar='N',
                    help='profile N env steps and DQN updates instead (no --weights needed)')
    args = ap.parse_args()
    if args.profile:
        torch.set_num_threads(args.threads)
        env = TASKS[args.task][0](split=args.split)
        print(json.dumps({'task': args.task, **profile(args.task, env, args.profile)}))
        env.close()
        return

    if not args.weights:
        ap.error('--weights is required (unless --profile)')
    torch.set_num_threads(args.threads)
    env_cls, kind = TASKS[args.task]
    policy = GraspPolicy(args.weights, kind=kind, threads=args.threads)
    env = env_cls(split=args.split)
    rng = np.random.default_rng(args.seed)
    result = {'task': args.task, 'weights': args.weights, 'split': args.split,
              'seeds': [args.seed, args.seed + args.episodes - 1],
              'host': {'cpus': os.cpu_count(), 'machine': platform.machine(),
                       'torch_threads': args.threads}}
    obs, _ = env.reset(seed=args.seed)
    if args.latency_samples > 0:
        result['latency'] = latency(policy, obs, args.latency_samples)
    result['net'] = play(env, policy.act, args.episodes, args.seed)
    if not args.skip_random:
        n = env.action_space.n
        result['random'] = play(env, lambda o: int(rng.integers(n)), args.episodes, args.seed)
        if args.task == 'pixel':
            s2 = obs.shape[1] * obs.shape[2]

            def on_objects(o: np.ndarray) -> int:
                occupied = np.flatnonzero(o[-1] > 0.01)
                if occupied.size == 0:
                    return int(rng.integers(n))
                return int(rng.integers(env.config.n_yaw)) * s2 + int(rng.choice(occupied))

            result['random on objects'] = play(env, on_objects, args.episodes, args.seed)
    if args.scripted and args.task == 'classic':
        result['scripted (true object positions)'] = play(env, nearest_object_policy(env),
                                                           args.episodes, args.seed)
    env.close()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
