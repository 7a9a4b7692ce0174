"""Where a DDPG+HER cycle's time goes: one gradient step (fp32 vs bf16 autocast, batch sizes)
and one environment step, on this machine.

    python bench/bench_ddpg_update.py

Prints one JSON line per measurement (median of repeated timings, milliseconds).
"""
from __future__ import annotations

from functools import partial
import json
import os
import statistics
import time

import numpy as np
import torch

from pick_place_rl.core.ddpg import DDPGAgent, DDPGParams
from pick_place_rl.core.her import GoalBatch
from pick_place_rl.sim.registry import make_env


def time_ms(fn, repeat: int = 30, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for bf16 in (False, True):
        agent = DDPGAgent(25, 3, 4, DDPGParams(bf16=bf16))
        for batch_size in (256, 1024):
            batch = GoalBatch(rng.normal(size=(batch_size, 25)).astype(np.float32),
                              rng.normal(size=(batch_size, 3)).astype(np.float32),
                              rng.uniform(-1, 1, (batch_size, 4)).astype(np.float32),
                              -np.ones(batch_size, np.float32),
                              rng.normal(size=(batch_size, 25)).astype(np.float32))
            ms = time_ms(partial(agent.update, batch))
            print(json.dumps({'what': 'ddpg_update', 'bf16': bf16, 'batch': batch_size,
                              'ms': round(ms, 2), 'us_per_sample': round(ms * 1e3 / batch_size,
                                                                         1)}))
    env = make_env('FetchPickAndPlace-v4')
    env.reset(seed=0)
    action = np.zeros(4, np.float32)

    def step() -> None:
        for _ in range(50):
            env.step(action)
        env.reset()
    print(json.dumps({'what': 'env_step', 'env': 'FetchPickAndPlace-v4',
                      'ms': round(time_ms(step, repeat=10, warmup=1) / 50, 3)}))
    print(json.dumps({'cpus': os.cpu_count(), 'loadavg_1m': round(os.getloadavg()[0], 2),
                      'torch': torch.__version__}))


if __name__ == '__main__':
    main()
