"""Where a DDPG+HER training epoch's wall clock goes, per way of stepping the training envs.

    python bench/bench_ddpg_epoch.py --vector pool --env-workers 1 --worker-nice 10
    python bench/bench_ddpg_epoch.py --vector async   # gymnasium AsyncVectorEnv, 1 env/process

Trains ``--epochs`` epochs of the default recipe (16 envs, 40 updates of 1024 per cycle) and
prints one JSON line: the wall clock and the seconds (and call counts) spent in the learner's
gradient steps, HER sampling, acting, sending actions (``step_async``) and waiting for the
envs (``step_wait``). An update that takes longer here than in ``bench_ddpg_update.py``
is being slowed by the env workers.
"""
from __future__ import annotations

import argparse
from collections import Counter
from functools import partial
import json
import os
import tempfile
import time

import gymnasium as gym

from pick_place_rl.core.ddpg import DDPGAgent
from pick_place_rl.core.her import HerSampler
from pick_place_rl.sim.registry import make_env
from pick_place_rl.train.ddpg_her import DDPGHerConfig, DDPGHerTrainer


def timed(totals: Counter, counts: Counter, key: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start
            counts[key] += 1
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--env', default='FetchPickAndPlace-v4')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--vector', choices=('pool', 'async'), default='pool',
                        help='pool: the trainer default (EnvPool); async: gymnasium '
                             'AsyncVectorEnv, one process per env')
    parser.add_argument('--env-workers', type=int, default=1)
    parser.add_argument('--worker-nice', type=int, default=10)
    args = parser.parse_args()
    totals: Counter = Counter()
    counts: Counter = Counter()
    DDPGAgent.update = timed(totals, counts, 'update', DDPGAgent.update)
    DDPGAgent.act = timed(totals, counts, 'act', DDPGAgent.act)
    HerSampler.sample = timed(totals, counts, 'her_sample', HerSampler.sample)
    with tempfile.TemporaryDirectory() as out:
        config = DDPGHerConfig(env_id=args.env, epochs=args.epochs, out_dir=out,
                               progress=False, tensorboard=False, final_eval_episodes=1,
                               env_workers=args.env_workers, worker_nice=args.worker_nice)
        trainer = DDPGHerTrainer(config)
        if args.vector == 'async':
            trainer.env.close()
            trainer.env = gym.vector.AsyncVectorEnv(
                [partial(make_env, args.env) for _ in range(config.n_envs)], context='spawn')
        env_cls = type(trainer.env)
        env_cls.step_async = timed(totals, counts, 'step_async', env_cls.step_async)
        env_cls.step_wait = timed(totals, counts, 'step_wait', env_cls.step_wait)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        metrics = trainer.train()
        wall = time.perf_counter() - start
    row = {'env': args.env, 'vector': args.vector, 'env_workers': args.env_workers,
           'worker_nice': args.worker_nice, 'epochs': args.epochs,
           'epoch_wall_s': [h['wall_s'] for h in metrics['history']], 'wall_s': round(wall, 1),
           'loadavg_1m': round(load, 2)}
    for key in sorted(totals):
        row[key] = {'s': round(totals[key], 1), 'calls': counts[key],
                    'ms_per_call': round(totals[key] * 1e3 / counts[key], 2)}
    print(json.dumps(row))


if __name__ == '__main__':
    main()
