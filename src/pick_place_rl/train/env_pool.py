"""Training environments stepped in a few worker processes, several environments per worker.

gymnasium's AsyncVectorEnv runs one process per environment. With the trainer's 16 envs on
a 2-core machine that meant 16 wake-ups per step, each of which could land on the learner's
core and preempt its gradient step: profiled, an update took ~27 ms during training against
~17.5 ms with the workers idle, and epochs took 37-39 s for ~35 CPU-s of work. Here each
worker steps its share of the envs in a gymnasium SyncVectorEnv, so a step costs one message
per worker, and the workers run at a lower priority so the learner keeps its core.
"""
from __future__ import annotations

from collections.abc import Callable
import multiprocessing as mp
from multiprocessing.connection import Connection
import os
import traceback

import gymnasium as gym
import numpy as np


def _worker(conn: Connection, env_fn: Callable[[], gym.Env], count: int, nice: int) -> None:
    """Own ``count`` envs; answer ('reset', seeds) and ('step', actions) until ('close',)."""
    try:
        if nice:
            os.nice(nice)
        env = gym.vector.SyncVectorEnv([env_fn for _ in range(count)])
        conn.send(('ok', None))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(('error', traceback.format_exc()))
        return
    while True:
        try:
            command, arg = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if command == 'close':
            break
        try:
            if command == 'reset':
                result = env.reset(seed=arg)
            else:
                result = env.step(arg)
            conn.send(('ok', result))
        except Exception:  # noqa: BLE001 - reported to the parent, which raises it
            conn.send(('error', traceback.format_exc()))
    env.close()
    conn.close()


def _concat(parts: list) -> object:
    """Join per-worker results (arrays, dicts of arrays) along the env axis."""
    first = parts[0]
    if isinstance(first, dict):
        return {key: _concat([p[key] for p in parts]) for key in first
                if all(key in p for p in parts)}
    return np.concatenate(parts, axis=0)


class EnvPool:
    """``n_envs`` environments in ``n_workers`` spawned processes, with the VectorEnv calls the
    trainer uses: ``reset(seed)``, ``step_async``/``step_wait`` (so the learner can update in
    between) and ``step``. Episodes are reset by the caller (no autoreset bookkeeping needed:
    every rollout starts with ``reset``). A failing or dead worker raises RuntimeError.
    """

    def __init__(self, env_fn: Callable[[], gym.Env], n_envs: int, n_workers: int = 1,
                 nice: int = 0) -> None:
        if n_envs < 1 or n_workers < 1:
            raise ValueError(f'EnvPool needs n_envs >= 1 and n_workers >= 1, got {n_envs}, '
                             f'{n_workers}')
        self.num_envs = n_envs
        counts = [len(c) for c in np.array_split(np.arange(n_envs), min(n_workers, n_envs))]
        self._splits = np.cumsum(counts)[:-1]
        # spawn, not fork: the parent may already run torch/OpenMP or ROS threads.
        ctx = mp.get_context('spawn')
        self._conns: list[Connection] = []
        self._procs = []
        for count in counts:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, env_fn, count, nice), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._counts = counts
        self._gather()

    def _died(self, i: int) -> RuntimeError:
        exitcode = self._procs[i].exitcode if i < len(self._procs) else None
        self.close()
        return RuntimeError(f'env worker {i} died (exit code {exitcode})')

    def _send(self, i: int, message: tuple) -> None:
        try:
            self._conns[i].send(message)
        except (BrokenPipeError, ConnectionResetError):
            raise self._died(i) from None

    def _gather(self) -> list:
        results = []
        for i, conn in enumerate(self._conns):
            try:
                status, value = conn.recv()
            except (EOFError, ConnectionResetError):
                raise self._died(i) from None
            if status == 'error':
                self.close()
                raise RuntimeError(f'env worker {i} failed:\n{value}')
            results.append(value)
        return results

    def reset(self, seed: int | list[int] | None = None) -> tuple[dict, dict]:
        if isinstance(seed, int):
            seed = [seed + i for i in range(self.num_envs)]
        start = 0
        for i, count in enumerate(self._counts):
            self._send(i, ('reset', None if seed is None else list(seed[start:start + count])))
            start += count
        parts = self._gather()
        return _concat([p[0] for p in parts]), _concat([p[1] for p in parts])

    def step_async(self, actions: np.ndarray) -> None:
        for i, chunk in enumerate(np.split(np.asarray(actions), self._splits)):
            self._send(i, ('step', chunk))

    def step_wait(self) -> tuple:
        parts = self._gather()
        return tuple(_concat([p[k] for p in parts]) for k in range(5))

    def step(self, actions: np.ndarray) -> tuple:
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(('close', None))
            except OSError:  # BrokenPipeError included: that worker is gone already
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._conns, self._procs = [], []
