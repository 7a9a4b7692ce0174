"""EnvPool: the trainer's worker-process envs step exactly like a SyncVectorEnv and fail loudly."""
from functools import partial
import os
import signal

import gymnasium as gym
import numpy as np
import pytest

from pick_place_rl.sim.registry import make_env
from pick_place_rl.train.ddpg_her import DDPGHerConfig, DDPGHerTrainer
from pick_place_rl.train.env_pool import EnvPool


def _broken_env() -> gym.Env:
    raise ValueError('no such robot: test-arm')


def test_pool_matches_sync_vector_env():
    """3 envs over 2 workers (uneven split): same observations, rewards and successes."""
    make = partial(make_env, 'FetchPush-v4')
    pool = EnvPool(make, 3, n_workers=2)
    sync = gym.vector.SyncVectorEnv([make for _ in range(3)])
    try:
        seeds = [11, 12, 13]
        obs_p, _ = pool.reset(seed=seeds)
        obs_s, _ = sync.reset(seed=seeds)
        for key in obs_s:
            np.testing.assert_array_equal(obs_p[key], obs_s[key])
        rng = np.random.default_rng(0)
        for _ in range(5):
            action = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
            pool.step_async(action)
            obs_p, rew_p, term_p, trunc_p, info_p = pool.step_wait()
            obs_s, rew_s, term_s, trunc_s, info_s = sync.step(action)
            np.testing.assert_array_equal(obs_p['observation'], obs_s['observation'])
            np.testing.assert_array_equal(rew_p, rew_s)
            np.testing.assert_array_equal(trunc_p, trunc_s)
            np.testing.assert_array_equal(info_p['is_success'], info_s['is_success'])
    finally:
        pool.close()
        sync.close()


def test_failing_env_constructor_is_reported():
    with pytest.raises(RuntimeError, match='no such robot: test-arm'):
        EnvPool(_broken_env, 2, n_workers=1)


def test_killed_worker_is_reported_not_hung():
    pool = EnvPool(partial(make_env, 'FetchReach-v4'), 2, n_workers=2)
    try:
        pool.reset(seed=0)
        os.kill(pool._procs[1].pid, signal.SIGKILL)
        pool._procs[1].join(timeout=10)
        with pytest.raises(RuntimeError, match='env worker 1 died'):
            pool.step(np.zeros((2, 4), np.float32))
    finally:
        pool.close()


def test_trainer_runs_with_worker_envs(tmp_path):
    """The default path (async_envs): one epoch through EnvPool, updates between steps."""
    config = DDPGHerConfig(env_id='FetchReach-v4', n_envs=2, n_cycles=2, n_batches=4,
                           batch_size=64, n_eval_episodes=2, final_eval_episodes=2,
                           tensorboard=False, progress=False, hidden=32, layers=2, epochs=1,
                           out_dir=str(tmp_path), env_workers=2)
    trainer = DDPGHerTrainer(config)
    assert isinstance(trainer.env, EnvPool)
    metrics = trainer.train()
    assert metrics['env_steps'] == 2 * 2 * 50
    assert trainer.agent.n_updates > 0
